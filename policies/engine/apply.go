package engine

import (
	"encoding/json"
	"fmt"
	"math/big"
	"sort"
	"strconv"
	"strings"
)

// Operations of the hardening document.
const (
	OpSet     = "set"
	OpDefault = "default"
	OpMerge   = "merge"
	OpUnion   = "union"
	OpAdd     = "add"
	// OpRemove deletes the key at the path where it is present; it carries
	// no value. Removing a key that is absent changes nothing.
	OpRemove = "remove"
	// OpCopy merges into the object at the path the entries of the object
	// at From (read from the object as admitted, before any op) whose keys
	// the value lists; keys From lacks are skipped. It lets a cached
	// decision propagate a Job's own values (its labels) without carrying
	// them: Apply turns it into a merge of the values it finds.
	OpCopy = "copy"
)

func (o Op) check() error {
	switch o.Op {
	case OpSet, OpDefault:
	case OpRemove:
		if o.Value != nil {
			return fmt.Errorf("setting %q: remove takes no value", o.Setting)
		}
		if len(o.Path) == 0 || !isKey(o.Path[len(o.Path)-1]) {
			return fmt.Errorf("setting %q: remove needs a path that ends in an object key", o.Setting)
		}
	case OpMerge:
		if _, ok := o.Value.(map[string]any); !ok {
			return fmt.Errorf("setting %q: merge needs an object value, got %T", o.Setting, o.Value)
		}
	case OpUnion:
		if _, ok := o.Value.([]any); !ok {
			return fmt.Errorf("setting %q: union needs an array value, got %T", o.Setting, o.Value)
		}
	case OpCopy:
		keys, ok := o.Value.([]any)
		if !ok {
			return fmt.Errorf("setting %q: copy needs an array of keys, got %T", o.Setting, o.Value)
		}
		for _, k := range keys {
			if _, ok := k.(string); !ok {
				return fmt.Errorf("setting %q: copy keys must be strings, got %T", o.Setting, k)
			}
		}
		if len(o.From) == 0 {
			return fmt.Errorf("setting %q: copy needs a from path", o.Setting)
		}
	case OpAdd:
		m, ok := o.Value.(map[string]any)
		if !ok || o.Key == "" {
			return fmt.Errorf("setting %q: add needs an object value and a key", o.Setting)
		}
		if _, ok := m[o.Key]; !ok {
			return fmt.Errorf("setting %q: add value lacks its key %q", o.Setting, o.Key)
		}
	default:
		return fmt.Errorf("setting %q: unknown op %q", o.Setting, o.Op)
	}
	if o.Setting == "" {
		return fmt.Errorf("an op at %s has no setting name", renderPath(o.Path))
	}
	return nil
}

// Apply writes the ops into obj, a JSON object decoded with
// json.Decoder.UseNumber, and returns the ops that changed it. Ops are
// applied in a fixed order (by path, then op), so the result does not
// depend on the order Rego produced them in. Two ops that set one path to
// different values are a policy error. Applying the same ops to the result
// changes nothing.
func Apply(obj map[string]any, ops []Op) ([]Op, error) {
	prepared, err := PrepareOps(ops)
	if err != nil {
		return nil, err
	}
	return prepared.Apply(obj)
}

// PreparedOps are ops checked and put in the order Apply applies them,
// which depends on the ops alone: a decision served to many objects is
// prepared once (see Mutation.Prepared).
type PreparedOps struct {
	sorted  []keyedOp
	hasCopy bool
}

// PrepareOps checks ops and orders them for Apply. A copy op is ordered
// and checked as the merge it becomes.
func PrepareOps(ops []Op) (*PreparedOps, error) {
	out := &PreparedOps{sorted: make([]keyedOp, len(ops))}
	for i, op := range ops {
		effective := op.Op
		if op.Op == OpCopy {
			if err := op.check(); err != nil {
				return nil, err
			}
			effective, out.hasCopy = OpMerge, true
		}
		out.sorted[i] = keyedOp{Op: op, key: renderPath(op.Path), effective: effective}
	}
	sort.SliceStable(out.sorted, func(i, j int) bool {
		if out.sorted[i].key != out.sorted[j].key {
			return out.sorted[i].key < out.sorted[j].key
		}
		return out.sorted[i].effective < out.sorted[j].effective
	})
	if err := checkConflicts(out.sorted); err != nil {
		return nil, err
	}
	return out, nil
}

// Apply writes the prepared ops into obj (see the function Apply).
func (p *PreparedOps) Apply(obj map[string]any) ([]Op, error) {
	var merges map[int]Op
	if p.hasCopy {
		// Every copy reads the object as admitted, before any op.
		merges = map[int]Op{}
		for i, op := range p.sorted {
			if op.Op.Op == OpCopy {
				merges[i] = resolveCopy(obj, op.Op)
			}
		}
	}
	applied := make([]Op, 0, len(p.sorted))
	for i, op := range p.sorted {
		o := op.Op
		if m, ok := merges[i]; ok {
			o = m
		}
		changed, err := applyOne(obj, o)
		if err != nil {
			return nil, fmt.Errorf("setting %q at %s: %w", o.Setting, op.key, err)
		}
		if changed {
			applied = append(applied, o)
		}
	}
	return applied, nil
}

// resolveCopy turns a copy op into the merge it stands for, with the
// values obj holds at its From path.
func resolveCopy(obj map[string]any, op Op) Op {
	var cur any = obj
	for _, seg := range op.From {
		cur, _ = get(cur, seg)
	}
	src, _ := cur.(map[string]any)
	value := map[string]any{}
	for _, k := range op.Value.([]any) {
		if v, ok := src[k.(string)]; ok {
			value[k.(string)] = deepCopy(v)
		}
	}
	return Op{Setting: op.Setting, Op: OpMerge, Path: op.Path, Value: value}
}

// keyedOp is an op with its rendered path, computed once for sorting.
type keyedOp struct {
	Op
	key string
	// effective is the op as applied: merge for a copy.
	effective string
}

// checkConflicts refuses two enforcing ops on one path with different
// values, and a path that one op removes while another writes it (or
// writes inside it).
func checkConflicts(sorted []keyedOp) error {
	for _, r := range sorted {
		if r.effective != OpRemove {
			continue
		}
		for _, o := range sorted {
			if o.effective != OpRemove && (o.key == r.key || strings.HasPrefix(o.key, r.key+".") || strings.HasPrefix(o.key, r.key+"[")) {
				return fmt.Errorf("policy conflict: setting %q removes %s, which setting %q writes", r.Setting, r.key, o.Setting)
			}
		}
	}
	for i := 1; i < len(sorted); i++ {
		a, b := sorted[i-1], sorted[i]
		if a.effective != b.effective || (a.effective != OpSet && a.effective != OpDefault) {
			continue
		}
		if a.key == b.key && !jsonEqual(a.Value, b.Value) {
			return fmt.Errorf("policy conflict: settings %q and %q both %s %s to different values", a.Setting, b.Setting, a.effective, a.key)
		}
	}
	return nil
}

func applyOne(obj map[string]any, op Op) (bool, error) {
	if op.Op == OpRemove {
		return removeKey(obj, op.Path)
	}
	parent, err := walk(obj, op.Path[:len(op.Path)-1])
	if err != nil {
		return false, err
	}
	last := op.Path[len(op.Path)-1]
	current, present := get(parent, last)
	if !present && !isKey(last) {
		return false, fmt.Errorf("index %v out of range", last)
	}
	switch op.Op {
	case OpSet:
		if present && jsonEqual(current, op.Value) {
			return false, nil
		}
		return true, put(parent, last, deepCopy(op.Value))
	case OpDefault:
		if present && current != nil {
			return false, nil
		}
		return true, put(parent, last, deepCopy(op.Value))
	case OpMerge:
		target, err := asMap(current, present)
		if err != nil {
			return false, err
		}
		changed := !present || current == nil
		keys := sortedKeys(op.Value.(map[string]any))
		for _, k := range keys {
			v := op.Value.(map[string]any)[k]
			if old, ok := target[k]; ok && jsonEqual(old, v) {
				continue
			}
			target[k], changed = deepCopy(v), true
		}
		if !changed {
			return false, nil
		}
		return true, put(parent, last, target)
	case OpUnion:
		target, err := asSlice(current, present)
		if err != nil {
			return false, err
		}
		changed := false
		for _, v := range op.Value.([]any) {
			if !containsEqual(target, v) {
				target, changed = append(target, deepCopy(v)), true
			}
		}
		if !changed {
			return false, nil
		}
		return true, put(parent, last, target)
	case OpAdd:
		target, err := asSlice(current, present)
		if err != nil {
			return false, err
		}
		want := op.Value.(map[string]any)[op.Key]
		for _, el := range target {
			if m, ok := el.(map[string]any); ok && jsonEqual(m[op.Key], want) {
				return false, nil
			}
		}
		return true, put(parent, last, append(target, deepCopy(op.Value)))
	}
	return false, fmt.Errorf("unknown op %q", op.Op)
}

// removeKey deletes the object key at path. Unlike the other ops it never
// creates anything: a path whose parent is absent or null is already
// without the key.
func removeKey(obj map[string]any, path []any) (bool, error) {
	var cur any = obj
	for i, seg := range path {
		here := renderPath(path[:i+1])
		switch c := cur.(type) {
		case map[string]any:
			key, ok := seg.(string)
			if !ok {
				return false, fmt.Errorf("%s: cannot index an object with %v", here, seg)
			}
			next, present := c[key]
			if i == len(path)-1 {
				if !present {
					return false, nil
				}
				delete(c, key)
				return true, nil
			}
			if !present || next == nil {
				return false, nil
			}
			cur = next
		case []any:
			idx, ok := seg.(int)
			if !ok || idx < 0 || idx >= len(c) {
				return false, fmt.Errorf("%s: index out of range", here)
			}
			cur = c[idx]
		default:
			return false, fmt.Errorf("%s is a %T, not an object or array", renderPath(path[:i]), cur)
		}
	}
	return false, nil
}

// walk follows path from obj, creating missing objects along the way. It
// never invents array elements.
func walk(obj map[string]any, path []any) (any, error) {
	var cur any = obj
	for i, seg := range path {
		next, present := get(cur, seg)
		if present && next != nil {
			if _, isMap := next.(map[string]any); !isMap {
				if _, isSlice := next.([]any); !isSlice {
					return nil, fmt.Errorf("%s is a %T, not an object or array", renderPath(path[:i+1]), next)
				}
			}
			cur = next
			continue
		}
		if !isKey(seg) {
			return nil, fmt.Errorf("%s: index out of range", renderPath(path[:i+1]))
		}
		if _, nextIsIndex := nextSeg(path, i); nextIsIndex {
			return nil, fmt.Errorf("%s: no array to index", renderPath(path[:i+1]))
		}
		created := map[string]any{}
		if err := put(cur, seg, created); err != nil {
			return nil, err
		}
		cur = created
	}
	return cur, nil
}

func nextSeg(path []any, i int) (any, bool) {
	if i+1 >= len(path) {
		return nil, false
	}
	_, isIndex := path[i+1].(int)
	return path[i+1], isIndex
}

func isKey(seg any) bool {
	_, ok := seg.(string)
	return ok
}

func get(container, seg any) (any, bool) {
	switch c := container.(type) {
	case map[string]any:
		key, ok := seg.(string)
		if !ok {
			return nil, false
		}
		v, ok := c[key]
		return v, ok
	case []any:
		i, ok := seg.(int)
		if !ok || i < 0 || i >= len(c) {
			return nil, false
		}
		return c[i], true
	}
	return nil, false
}

func put(container, seg, value any) error {
	switch c := container.(type) {
	case map[string]any:
		key, ok := seg.(string)
		if !ok {
			return fmt.Errorf("cannot index an object with %v", seg)
		}
		c[key] = value
		return nil
	case []any:
		i, ok := seg.(int)
		if !ok || i < 0 || i >= len(c) {
			return fmt.Errorf("index %v out of range", seg)
		}
		c[i] = value
		return nil
	}
	return fmt.Errorf("cannot set %v inside a %T", seg, container)
}

func asMap(v any, present bool) (map[string]any, error) {
	if !present || v == nil {
		return map[string]any{}, nil
	}
	m, ok := v.(map[string]any)
	if !ok {
		return nil, fmt.Errorf("expected an object, found %T", v)
	}
	return m, nil
}

func asSlice(v any, present bool) ([]any, error) {
	if !present || v == nil {
		return nil, nil
	}
	s, ok := v.([]any)
	if !ok {
		return nil, fmt.Errorf("expected an array, found %T", v)
	}
	return s, nil
}

func containsEqual(list []any, v any) bool {
	for _, el := range list {
		if jsonEqual(el, v) {
			return true
		}
	}
	return false
}

// jsonEqual compares JSON values; numbers compare by value, so 1, 1.0 and
// json.Number("1") are equal.
func jsonEqual(a, b any) bool {
	switch av := a.(type) {
	case map[string]any:
		bv, ok := b.(map[string]any)
		if !ok || len(av) != len(bv) {
			return false
		}
		for k, v := range av {
			w, ok := bv[k]
			if !ok || !jsonEqual(v, w) {
				return false
			}
		}
		return true
	case []any:
		bv, ok := b.([]any)
		if !ok || len(av) != len(bv) {
			return false
		}
		for i := range av {
			if !jsonEqual(av[i], bv[i]) {
				return false
			}
		}
		return true
	case json.Number, float64, int, int64:
		x, okA := toRat(a)
		y, okB := toRat(b)
		return okA && okB && x.Cmp(y) == 0
	default:
		return a == b
	}
}

func toRat(v any) (*big.Rat, bool) {
	var s string
	switch n := v.(type) {
	case json.Number:
		s = string(n)
	case float64:
		s = strconv.FormatFloat(n, 'g', -1, 64)
	case int:
		s = strconv.Itoa(n)
	case int64:
		s = strconv.FormatInt(n, 10)
	default:
		return nil, false
	}
	return new(big.Rat).SetString(s)
}

func deepCopy(v any) any {
	switch x := v.(type) {
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, w := range x {
			out[k] = deepCopy(w)
		}
		return out
	case []any:
		out := make([]any, len(x))
		for i, w := range x {
			out[i] = deepCopy(w)
		}
		return out
	default:
		return v
	}
}

func sortedKeys(m map[string]any) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// renderPath renders a JSON path the way kubectl renders field paths.
func renderPath(path []any) string {
	var b strings.Builder
	for i, seg := range path {
		switch s := seg.(type) {
		case int:
			fmt.Fprintf(&b, "[%d]", s)
		case string:
			if i > 0 {
				b.WriteByte('.')
			}
			b.WriteString(s)
		}
	}
	return b.String()
}
