package engine

import (
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"

	"github.com/open-policy-agent/opa/v1/ast"
)

// A view is one input path a query may read ("request.object"). The policy
// declares the views of each query in data.flowforge.config.cache.views;
// the decision cache keys a query's decision on exactly those paths of the
// input, and a miss evaluates the query on them alone (see cache.go).
//
// At load, every reference the compiled policy makes to input (from the
// rules a query can reach) must lie under one of the query's views, or the
// policy is refused with an error naming the reference and the rule. A
// query that calls a non-deterministic builtin, or walk over input, is not
// cached at all: it is evaluated on the whole input every time.

// viewPath is a parsed view: the keys from the input's root.
type viewPath []string

func (v viewPath) String() string {
	if len(v) == 0 {
		return "input"
	}
	return "input." + strings.Join(v, ".")
}

// covers reports whether the read r lies under the view v (v is r or a
// prefix of it).
func (v viewPath) covers(r viewPath) bool {
	if len(v) > len(r) {
		return false
	}
	for i := range v {
		if v[i] != r[i] {
			return false
		}
	}
	return true
}

// inputRead is one place the policy reads input: the path it reads (the
// longest constant prefix of the reference) and the rule that reads it.
type inputRead struct {
	path viewPath
	rule string
	loc  string
}

// queryAnalysis is what load learnt about one query.
type queryAnalysis struct {
	// reads are the distinct input paths the reachable rules read.
	reads []inputRead
	// uncacheable, if not empty, is why the query is never cached.
	uncacheable string
}

// ViewError is returned when a policy reads input outside the views
// declared for a query: the decision cache would serve one Job another
// Job's decision.
type ViewError struct {
	Query string
	Reads []string
}

func (e *ViewError) Error() string {
	return fmt.Sprintf("policy query %s reads input outside its declared views (data.flowforge.config.cache.views.%s): %s; declare the path there, or read only what the views cover",
		e.Query, e.Query, strings.Join(e.Reads, "; "))
}

// parseViews reads the declared views of a query ("request.object", ...).
func parseViews(query string, raw any) ([]viewPath, error) {
	list, ok := raw.([]any)
	if !ok {
		return nil, fmt.Errorf("data.flowforge.config.cache.views.%s: expected a list of input paths, got %T", query, raw)
	}
	out := make([]viewPath, 0, len(list))
	for i, item := range list {
		s, ok := item.(string)
		if !ok || s == "" {
			return nil, fmt.Errorf("data.flowforge.config.cache.views.%s[%d]: expected a path such as request.object, got %v", query, i, item)
		}
		parts := strings.Split(strings.TrimPrefix(s, "input."), ".")
		for _, p := range parts {
			if p == "" {
				return nil, fmt.Errorf("data.flowforge.config.cache.views.%s[%d]: %q has an empty key", query, i, s)
			}
		}
		out = append(out, parts)
	}
	// A view under another adds nothing (and project relies on no view
	// lying under another).
	kept := make([]viewPath, 0, len(out))
	for i, v := range out {
		covered := false
		for j, w := range out {
			if i != j && w.covers(v) && (len(w) < len(v) || j < i) {
				covered = true
				break
			}
		}
		if !covered {
			kept = append(kept, v)
		}
	}
	return kept, nil
}

// analyzeQuery finds the input reads of every rule reachable from the
// query's root documents, and whether the query may be cached.
func analyzeQuery(c *ast.Compiler, roots []ast.Ref) (queryAnalysis, error) {
	var out queryAnalysis
	seen := map[*ast.Rule]bool{}
	var queue []*ast.Rule
	for _, root := range roots {
		rules := c.GetRules(root)
		if len(rules) == 0 {
			return out, fmt.Errorf("no rules for %v", root)
		}
		queue = append(queue, rules...)
	}
	reads := map[string]inputRead{}
	for len(queue) > 0 {
		r := queue[0]
		queue = queue[1:]
		if seen[r] {
			continue
		}
		seen[r] = true
		for x := r; x != nil; x = x.Else {
			name := x.Path().String()
			loc := ""
			if x.Location != nil {
				loc = fmt.Sprintf("%s:%d", x.Location.File, x.Location.Row)
			}
			rr := ruleReads(x)
			for _, p := range rr.paths {
				key := p.String()
				if _, ok := reads[key]; !ok {
					reads[key] = inputRead{path: p, rule: name, loc: loc}
				}
			}
			if rr.uncacheable != "" && out.uncacheable == "" {
				out.uncacheable = fmt.Sprintf("%s (rule %s at %s)", rr.uncacheable, name, loc)
			}
		}
		for dep := range c.Graph.Dependencies(r) {
			if d, ok := dep.(*ast.Rule); ok && !seen[d] {
				queue = append(queue, d)
			}
		}
	}
	keys := make([]string, 0, len(reads))
	for k := range reads {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		out.reads = append(out.reads, reads[k])
	}
	return out, nil
}

// checkViews refuses reads outside the declared views.
func checkViews(query string, a queryAnalysis, views []viewPath) error {
	var outside []string
	for _, r := range a.reads {
		covered := false
		for _, v := range views {
			if v.covers(r.path) {
				covered = true
				break
			}
		}
		if !covered {
			outside = append(outside, fmt.Sprintf("%s read by %s at %s", r.path, r.rule, r.loc))
		}
	}
	if len(outside) > 0 {
		return &ViewError{Query: query, Reads: outside}
	}
	return nil
}

type reads struct {
	paths       []viewPath
	uncacheable string
}

var (
	objectGet = ast.Ref{ast.VarTerm("object"), ast.InternedTerm("get")}
	walkRef   = ast.Ref{ast.VarTerm("walk")}
)

// ruleReads collects the input paths one rule (head and body) reads. A
// reference input.a.b[x] reads input.a.b; object.get(input.a, ["b", "c"],
// d) reads input.a.b.c. Anything else that names input (input itself as a
// value, input[x]) reads the whole input. The compiler moves references
// out of call arguments into unifications with generated variables
// (__local1__ = input; object.get(__local1__, ...)): such a variable reads
// what its uses read.
func ruleReads(r *ast.Rule) reads {
	var out reads
	aliases := map[ast.Var]viewPath{}
	// definitions are the unifications that define aliases: they read
	// nothing by themselves. (The compiler shares terms between a rule's
	// head and body, so they are skipped by expression, not by term.)
	definitions := map[*ast.Expr]bool{}
	ast.NewGenericVisitor(func(x any) bool {
		e, ok := x.(*ast.Expr)
		if !ok || !e.IsEquality() {
			return false
		}
		a, b := e.Operand(0), e.Operand(1)
		for _, pair := range [][2]*ast.Term{{a, b}, {b, a}} {
			v, isVar := pair[0].Value.(ast.Var)
			if !isVar || !v.IsGenerated() {
				continue
			}
			if p, ok := inputPath(pair[1], nil); ok {
				aliases[v] = p
				definitions[e] = true
				return false
			}
		}
		return false
	}).Walk(r)
	var vis *ast.GenericVisitor
	vis = ast.NewGenericVisitor(func(x any) bool {
		switch t := x.(type) {
		case *ast.Expr:
			if definitions[t] {
				return true
			}
			if !t.IsCall() {
				return false
			}
			op := t.Operator()
			args := t.Operands()
			switch {
			case op.Equal(objectGet) && len(args) >= 2:
				if base, ok := inputPath(args[0], aliases); ok {
					if keys, ok := constantKeys(args[1]); ok {
						out.paths = append(out.paths, append(slices.Clone(base), keys...))
						for _, a := range args[1:] {
							vis.Walk(a)
						}
						vis.Walk(t.With)
						return true
					}
				}
			case op.Equal(walkRef) && len(args) > 0:
				if _, ok := inputPath(args[0], aliases); ok {
					out.uncacheable = "walk over input"
				}
			default:
				if b, ok := ast.BuiltinMap[op.String()]; ok && b.Nondeterministic && out.uncacheable == "" {
					out.uncacheable = "non-deterministic builtin " + b.Name
				}
			}
			return false
		case *ast.Term:
			if p, ok := inputPath(t, aliases); ok {
				out.paths = append(out.paths, p)
				// The reference's own operands (input.images[x]) may read
				// input too.
				if ref, isRef := t.Value.(ast.Ref); isRef {
					for _, seg := range ref[1:] {
						if !isConstantKey(seg) {
							vis.Walk(seg)
						}
					}
				}
				return true
			}
		}
		return false
	})
	vis.Walk(r)
	return out
}

// inputPath returns the constant path of a term that is input, a
// reference into it, or a generated variable aliasing one of those
// (aliases): the keys up to the first one that is not a constant string.
func inputPath(t *ast.Term, aliases map[ast.Var]viewPath) (viewPath, bool) {
	switch v := t.Value.(type) {
	case ast.Var:
		if v.Equal(ast.InputRootDocument.Value) {
			return viewPath{}, true
		}
		if p, ok := aliases[v]; ok {
			return slices.Clone(p), true
		}
	case ast.Ref:
		var path viewPath
		switch head := v[0].Value.(type) {
		case ast.Var:
			if head.Equal(ast.InputRootDocument.Value) {
				path = viewPath{}
			} else if p, ok := aliases[head]; ok {
				path = slices.Clone(p)
			} else {
				return nil, false
			}
		default:
			return nil, false
		}
		for _, seg := range v[1:] {
			s, ok := seg.Value.(ast.String)
			if !ok {
				break
			}
			path = append(path, string(s))
		}
		return path, true
	}
	return nil, false
}

func isConstantKey(t *ast.Term) bool {
	_, ok := t.Value.(ast.String)
	return ok
}

// constantKeys reads object.get's key argument: a constant string, or
// the constant prefix of an array of keys (object.get(x, ["a", k], d)
// reads nothing of x outside x.a).
func constantKeys(t *ast.Term) ([]string, bool) {
	switch v := t.Value.(type) {
	case ast.String:
		return []string{string(v)}, true
	case *ast.Array:
		keys := make([]string, 0, v.Len())
		for i := range v.Len() {
			s, ok := v.Elem(i).Value.(ast.String)
			if !ok {
				break
			}
			keys = append(keys, string(s))
		}
		return keys, true
	}
	return nil, false
}

// project returns the part of the input the views cover. For each view it
// copies the value at the view's path, and along the way keeps what a
// reference or object.get can observe of each prefix: a prefix that is an
// object stays an object (with only the views' keys), and one that is not
// (a string, an array, null) is copied whole. A path the input lacks is
// left out, exactly as Rego finds it undefined.
func project(in ast.Object, views []viewPath) ast.Object {
	out := ast.NewObject()
	for _, v := range views {
		var cur ast.Value = in
		dst := out
		for i, key := range v {
			obj, isObj := cur.(ast.Object)
			if !isObj {
				break
			}
			t := obj.Get(ast.StringTerm(key))
			if t == nil {
				break
			}
			k := ast.StringTerm(key)
			child, childIsObj := t.Value.(ast.Object)
			if i == len(v)-1 || !childIsObj {
				dst.Insert(k, t)
				break
			}
			next := dst.Get(k)
			var into ast.Object
			if next != nil {
				into, _ = next.Value.(ast.Object)
			}
			if into == nil {
				into = ast.NewObject()
				dst.Insert(k, ast.NewTerm(into))
			}
			cur, dst = child, into
		}
	}
	return out
}

// errNoViews is returned when the policy data declares no views.
var errNoViews = errors.New("data.flowforge.config.cache.views: missing; declare the input paths each query reads (see docs/policies.md)")

// Masks. A view still holds values that name one Job and no other: its
// name, its job-id label, its tasks and secret names. The shape rules look
// at where such values are and whether they are empty, never at what they
// say (the identity rules, evaluated on every request, compare them). The
// policy lists their paths in data.flowforge.config.cache.masks, relative
// to the admitted object; the engine replaces every non-empty string at
// those paths, in request.object and request.oldObject, by maskedValue
// before it hashes the view and before a miss evaluates it. Distinct Jobs
// of one template then share one view, one key and one decision. A mask
// segment "*" stands for every key of an object and every element of an
// array.

// maskedValue replaces a masked non-empty string.
const maskedValue = "masked"

// maskedRoots are the views' paths the masks are relative to.
var maskedRoots = [][]*ast.Term{
	{ast.InternedTerm("request"), ast.InternedTerm("object")},
	{ast.InternedTerm("request"), ast.InternedTerm("oldObject")},
}

// maskNode is a trie of mask paths. An explicit child already holds what
// the "*" child holds (build merges it in), so a key follows exactly one
// child.
type maskNode struct {
	leaf     bool
	children map[string]*maskNode
	star     *maskNode
	// keys are the children's keys as terms, built once.
	keys []*ast.Term
}

// internKeys builds the key terms of n and its descendants.
func (n *maskNode) internKeys() {
	n.keys = n.keys[:0]
	for key, c := range n.children {
		n.keys = append(n.keys, ast.StringTerm(key))
		c.internKeys()
	}
	if n.star != nil {
		n.star.internKeys()
	}
}

// parseMasks reads data.flowforge.config.cache.masks.object: a list of
// paths, each a list of keys.
func parseMasks(raw any) (*maskNode, [][]string, error) {
	if raw == nil {
		return nil, nil, nil
	}
	cfg, ok := raw.(map[string]any)
	if !ok {
		return nil, nil, fmt.Errorf("data.flowforge.config.cache.masks: expected an object with an object list, got %T", raw)
	}
	list, ok := cfg["object"].([]any)
	if !ok {
		return nil, nil, fmt.Errorf("data.flowforge.config.cache.masks.object: expected a list of paths, got %T", cfg["object"])
	}
	var paths [][]string
	for i, item := range list {
		segs, ok := item.([]any)
		if !ok || len(segs) == 0 {
			return nil, nil, fmt.Errorf("data.flowforge.config.cache.masks.object[%d]: expected a non-empty list of keys such as [metadata, name], got %v", i, item)
		}
		path := make([]string, 0, len(segs))
		for _, s := range segs {
			str, ok := s.(string)
			if !ok || str == "" {
				return nil, nil, fmt.Errorf("data.flowforge.config.cache.masks.object[%d]: keys must be non-empty strings, got %v", i, s)
			}
			path = append(path, str)
		}
		paths = append(paths, path)
	}
	if len(paths) == 0 {
		return nil, nil, nil
	}
	root := &maskNode{}
	for _, p := range paths {
		root.add(p)
	}
	root.mergeStars()
	root.internKeys()
	return root, paths, nil
}

func (n *maskNode) add(path []string) {
	if len(path) == 0 {
		n.leaf = true
		return
	}
	var next *maskNode
	if path[0] == "*" {
		if n.star == nil {
			n.star = &maskNode{}
		}
		next = n.star
	} else {
		if n.children == nil {
			n.children = map[string]*maskNode{}
		}
		if next = n.children[path[0]]; next == nil {
			next = &maskNode{}
			n.children[path[0]] = next
		}
	}
	next.add(path[1:])
}

// mergeStars copies each "*" subtree into its explicit siblings.
func (n *maskNode) mergeStars() {
	if n.star != nil {
		n.star.mergeStars()
		for _, c := range n.children {
			c.mergeWith(n.star)
		}
	}
	for _, c := range n.children {
		c.mergeStars()
	}
}

func (n *maskNode) mergeWith(o *maskNode) {
	n.leaf = n.leaf || o.leaf
	if o.star != nil {
		if n.star == nil {
			n.star = &maskNode{}
		}
		n.star.mergeWith(o.star)
	}
	for k, oc := range o.children {
		if n.children == nil {
			n.children = map[string]*maskNode{}
		}
		c := n.children[k]
		if c == nil {
			c = &maskNode{}
			n.children[k] = c
		}
		c.mergeWith(oc)
	}
}

// mask returns v with the strings under n replaced, sharing every part
// it does not change. changed reports whether anything was replaced.
func (n *maskNode) mask(v ast.Value) (ast.Value, bool) {
	if n.leaf {
		if s, ok := v.(ast.String); ok && s != "" {
			return ast.String(maskedValue), s != maskedValue
		}
	}
	switch x := v.(type) {
	case ast.Object:
		var replaced map[string]*ast.Term
		replace := func(k *ast.Term, child *maskNode, t *ast.Term) {
			if child == nil {
				return
			}
			if nv, changed := child.mask(t.Value); changed {
				if replaced == nil {
					replaced = map[string]*ast.Term{}
				}
				replaced[string(k.Value.(ast.String))] = ast.NewTerm(nv)
			}
		}
		if n.star == nil {
			for _, k := range n.keys {
				if t := x.Get(k); t != nil {
					replace(k, n.children[string(k.Value.(ast.String))], t)
				}
			}
		} else {
			x.Foreach(func(k, t *ast.Term) {
				s, ok := k.Value.(ast.String)
				if !ok {
					return
				}
				child := n.children[string(s)]
				if child == nil {
					child = n.star
				}
				replace(k, child, t)
			})
		}
		if replaced == nil {
			return v, false
		}
		out := ast.NewObject()
		x.Foreach(func(k, t *ast.Term) {
			if s, ok := k.Value.(ast.String); ok {
				if nt, ok := replaced[string(s)]; ok {
					out.Insert(k, nt)
					return
				}
			}
			out.Insert(k, t)
		})
		return out, true
	case *ast.Array:
		if n.star == nil {
			return v, false
		}
		var elems []*ast.Term
		for i := range x.Len() {
			t := x.Elem(i)
			if nv, changed := n.star.mask(t.Value); changed {
				if elems == nil {
					elems = make([]*ast.Term, x.Len())
					for j := range x.Len() {
						elems[j] = x.Elem(j)
					}
				}
				elems[i] = ast.NewTerm(nv)
			}
		}
		if elems == nil {
			return v, false
		}
		return ast.NewArray(elems...), true
	}
	return v, false
}

// maskView masks the objects of a view (see maskedRoots). It never changes
// the view's values, which may be the input's own: the objects along a
// root that holds a masked value are copied.
func maskView(view ast.Object, masks *maskNode) ast.Object {
	if masks == nil {
		return view
	}
	for _, root := range maskedRoots {
		if nv, changed := maskUnder(view, root, masks); changed {
			view = nv
		}
	}
	return view
}

// maskUnder masks the value at path below obj, copying obj and the objects
// between when anything changes.
func maskUnder(obj ast.Object, path []*ast.Term, masks *maskNode) (ast.Object, bool) {
	key := path[0]
	t := obj.Get(key)
	if t == nil {
		return obj, false
	}
	var nv ast.Value
	var changed bool
	if len(path) == 1 {
		nv, changed = masks.mask(t.Value)
	} else if child, ok := t.Value.(ast.Object); ok {
		nv, changed = maskUnder(child, path[1:], masks)
	}
	if !changed {
		return obj, false
	}
	out := ast.NewObject()
	obj.Foreach(func(k, v *ast.Term) {
		if k.Equal(key) {
			out.Insert(k, ast.NewTerm(nv))
			return
		}
		out.Insert(k, v)
	})
	return out, true
}

// maskedReads refuses a query's direct reads of a masked path: a rule
// that reads input.request.object.metadata.name would see maskedValue.
func maskedReads(query string, a queryAnalysis, masks [][]string) error {
	var bad []string
	for _, r := range a.reads {
		for _, rootTerms := range maskedRoots {
			root := make([]string, len(rootTerms))
			for i, t := range rootTerms {
				root[i] = string(t.Value.(ast.String))
			}
			if len(r.path) < len(root) || !slices.Equal([]string(r.path[:len(root)]), root) {
				continue
			}
			rel := r.path[len(root):]
			for _, m := range masks {
				if len(rel) >= len(m) && matchMask(m, rel[:len(m)]) {
					bad = append(bad, fmt.Sprintf("%s read by %s at %s is masked (data.flowforge.config.cache.masks)", r.path, r.rule, r.loc))
				}
			}
		}
	}
	if len(bad) > 0 {
		return &ViewError{Query: query, Reads: bad}
	}
	return nil
}

func matchMask(mask, path []string) bool {
	for i := range mask {
		if mask[i] != "*" && mask[i] != path[i] {
			return false
		}
	}
	return true
}
