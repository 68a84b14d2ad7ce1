package engine

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"sync"
	"sync/atomic"

	"github.com/flowforge/flowforge/policies"
	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/rego"
	"github.com/open-policy-agent/opa/v1/topdown"
	admissionv1 "k8s.io/api/admission/v1"
)

// Input is what a policy sees: the admission request and the labels of
// the request's namespace. Building it never calls the network.
type Input struct {
	Request         *admissionv1.AdmissionRequest
	NamespaceLabels map[string]string
	// Object, if set, is Request.Object already decoded (with
	// json.Decoder.UseNumber); the engine then does not parse it again.
	Object map[string]any
	// ObjectExact reports that Object came from ParseJSONObject's exact
	// parse of Request.Object.Raw (see decoded.go).
	ObjectExact bool
	// Parsed, if set, is Request.Object.Raw already parsed (ParseObject);
	// the engine then does not parse it again.
	Parsed *Object
	// Claims, if set, are facts about other objects that the handler
	// gathered from its local caches before evaluation (input.claims).
	Claims *policies.Claims
}

// Op is one setting of the hardening document (see mutate/mutate.rego).
type Op struct {
	Setting string `json:"setting"`
	Op      string `json:"op"`
	Path    []any  `json:"path"`
	Value   any    `json:"value"`
	Key     string `json:"key,omitempty"`
	// From is the source path of a copy op.
	From []any `json:"from,omitempty"`
}

// Violation is one denial or warning: what is wrong, and where.
type Violation struct {
	Msg   string `json:"msg"`
	Field string `json:"field"`
}

// String renders the violation as kubectl renders a field error.
func (v Violation) String() string { return v.Field + ": " + v.Msg }

// Mutation is the hardening a policy decided for one object.
type Mutation struct {
	Revision string
	Ops      []Op
	Warnings []string
	// verified and prepared are shared by every request served the same
	// cached decision (see Verified and Prepared).
	verified *atomic.Bool
	prepared *preparedOps
	// decodeMark: whether the decision vouches for the object's strict
	// decoding (see decoded.go).
	decodeMark
}

// preparedOps holds a decision's ops prepared once.
type preparedOps struct {
	once sync.Once
	ops  *PreparedOps
	err  error
}

// Prepared returns the decision's ops checked and ordered for applying
// (see PrepareOps), prepared once for every request served the same
// cached decision. It is of the ops as the decision returned them.
func (m *Mutation) Prepared() (*PreparedOps, error) {
	if m.prepared == nil {
		return PrepareOps(m.Ops)
	}
	m.prepared.once.Do(func() { m.prepared.ops, m.prepared.err = PrepareOps(m.Ops) })
	return m.prepared.ops, m.prepared.err
}

// Verified reports whether these ops, applied to an object of the same
// view, already gave an object that decodes as its kind. Objects of one
// view differ only in masked strings, so the same ops give them the same
// structure and types: the handler checks the first and trusts the rest.
func (m *Mutation) Verified() bool { return m.verified != nil && m.verified.Load() }

// MarkVerified records that the ops gave a valid object.
func (m *Mutation) MarkVerified() {
	if m.verified != nil {
		m.verified.Store(true)
	}
}

// Validation is a policy's verdict on one object.
type Validation struct {
	Revision string
	Deny     []Violation
	Warn     []Violation
	// decoded, on a cached decision only, records that an object of its
	// view decoded strictly (see decoded.go); callers get Validations
	// without it and read it through Object.DecodeVouched.
	decoded *atomic.Bool
}

// Mutate evaluates data.flowforge.mutate for the input, from the decision
// cache when the policy already decided for the same view.
func (p *Policy) Mutate(ctx context.Context, in Input) (*Mutation, error) {
	m, _, err := p.mutateWith(ctx, in, true)
	return m, err
}

// Validate evaluates data.flowforge.validate for the input, from the
// decision cache when the policy already decided for the same view.
func (p *Policy) Validate(ctx context.Context, in Input) (*Validation, error) {
	v, _, err := p.validateWith(ctx, in, true)
	return v, err
}

// Lookup is how a decision was reached.
type Lookup string

// Lookups.
const (
	LookupHit      Lookup = "hit"
	LookupMiss     Lookup = "miss"
	LookupUncached Lookup = "uncached"
)

func (p *Policy) mutateWith(ctx context.Context, in Input, useCache bool) (*Mutation, Lookup, error) {
	d, how, err := p.decide(ctx, p.mutate, p.mutateQ, in, useCache, decodeMutation)
	if err != nil {
		return nil, how, err
	}
	m := d.(*Mutation)
	// The cached decision is shared: callers get their own slices.
	mark := decodeMark{decoded: m.decoded, vouch: how != LookupUncached && p.mutateQ.vouchable(in)}
	return &Mutation{Revision: p.Revision, Ops: slices.Clone(m.Ops), Warnings: slices.Clone(m.Warnings), verified: m.verified, prepared: m.prepared, decodeMark: mark}, how, nil
}

func (p *Policy) validateWith(ctx context.Context, in Input, useCache bool) (*Validation, Lookup, error) {
	value, err := p.inputValue(in)
	if err != nil {
		return nil, LookupUncached, err
	}
	v, decoded, how, err := p.validateDecision(ctx, value, useCache)
	if err == nil && in.Parsed != nil {
		in.Parsed.mark = decodeMark{decoded: decoded, vouch: how != LookupUncached && p.validateQ.vouchable(in)}
	}
	return v, how, err
}

func (p *Policy) validateValue(ctx context.Context, value ast.Object, useCache bool) (*Validation, Lookup, error) {
	v, _, how, err := p.validateDecision(ctx, value, useCache)
	return v, how, err
}

// validateDecision is validateValue, also returning the decision's
// decoded mark (see decoded.go).
func (p *Policy) validateDecision(ctx context.Context, value ast.Object, useCache bool) (*Validation, *atomic.Bool, Lookup, error) {
	d, how, err := p.decideValue(ctx, p.validate, p.validateQ, value, useCache, decodeValidation)
	if err != nil {
		return nil, nil, how, err
	}
	v := d.(*Validation)
	if !p.split {
		return &Validation{Revision: p.Revision, Deny: slices.Clone(v.Deny), Warn: slices.Clone(v.Warn)}, v.decoded, how, nil
	}
	// The identity rules: evaluated on every request, never cached.
	bindings, err := p.evalIdentity(ctx, value)
	if err != nil {
		return nil, nil, how, err
	}
	id, err := decodeValidation(bindings)
	if err != nil {
		return nil, nil, how, err
	}
	iv := id.(*Validation)
	return &Validation{Revision: p.Revision, Deny: unionViolations(v.Deny, iv.Deny), Warn: unionViolations(v.Warn, iv.Warn)}, v.decoded, how, nil
}

// evalIdentity evaluates the identity query, with the compiled evaluator
// when the policy has one.
func (p *Policy) evalIdentity(ctx context.Context, value ast.Object) (rego.Vars, error) {
	if p.identityIR != nil {
		return p.evalIdentityIR(ctx, value)
	}
	return p.eval(ctx, p.identity, value)
}

// IdentityEvaluator names what evaluates the identity query: "compiled"
// (OPA's plan, run by irvm.go) or "topdown", with the reason.
func (p *Policy) IdentityEvaluator() (string, string) {
	if p.identityIR != nil {
		return "compiled", ""
	}
	return "topdown", p.identityIRReason
}

// unionViolations merges two sorted lists of violations into a new sorted
// list without duplicates (deny is a set in Rego).
func unionViolations(a, b []Violation) []Violation {
	out := make([]Violation, 0, len(a)+len(b))
	out = append(out, a...)
	out = append(out, b...)
	sortViolations(out)
	return slices.Compact(out)
}

func sortViolations(v []Violation) {
	sort.Slice(v, func(i, j int) bool {
		if v[i].Field != v[j].Field {
			return v[i].Field < v[j].Field
		}
		return v[i].Msg < v[j].Msg
	})
}

func decodeMutation(bindings rego.Vars) (any, error) {
	ops, err := decodeOps(bindings["patch"])
	if err != nil {
		return nil, err
	}
	warnings, err := decodeStrings(bindings["warn"])
	if err != nil {
		return nil, fmt.Errorf("policy mutate.warn: %w", err)
	}
	return &Mutation{Ops: ops, Warnings: warnings, verified: new(atomic.Bool), prepared: &preparedOps{}, decodeMark: decodeMark{decoded: new(atomic.Bool)}}, nil
}

func decodeValidation(bindings rego.Vars) (any, error) {
	deny, err := decodeViolations(bindings["deny"])
	if err != nil {
		return nil, fmt.Errorf("policy validate.deny: %w", err)
	}
	warn, err := decodeViolations(bindings["warn"])
	if err != nil {
		return nil, fmt.Errorf("policy validate.warn: %w", err)
	}
	return &Validation{Deny: deny, Warn: warn, decoded: new(atomic.Bool)}, nil
}

// decide evaluates a query for the input. With the query's cache, the
// decision is keyed on the query's view of the input, and a miss evaluates
// the query on that view alone: the load-time check (views.go) guarantees
// the policy reads nothing else, so the decision is the one the whole
// input would give. Errors are never cached.
func (p *Policy) decide(ctx context.Context, q rego.PreparedEvalQuery, cq *cachedQuery, in Input, useCache bool, decode func(rego.Vars) (any, error)) (any, Lookup, error) {
	if useCache && cq != nil && cq.cache != nil && !cq.readsImages {
		return p.decideNative(ctx, q, cq, in, decode)
	}
	value, err := p.input(in, cq == nil || cq.readsImages)
	if err != nil {
		return nil, LookupUncached, err
	}
	return p.decideValue(ctx, q, cq, value, useCache, decode)
}

// decideNative is decideValue keyed on the input as Go values: a hit
// converts nothing to AST, and only a miss builds the view it evaluates.
func (p *Policy) decideNative(ctx context.Context, q rego.PreparedEvalQuery, cq *cachedQuery, in Input, decode func(rego.Vars) (any, error)) (any, Lookup, error) {
	native, err := p.nativeInput(in)
	if err != nil {
		return nil, LookupUncached, err
	}
	key, err := cq.keyOfNative(native)
	if err != nil {
		return nil, LookupMiss, err
	}
	if d, ok := cq.cache.get(key); ok {
		return d, LookupHit, nil
	}
	v, err := ast.InterfaceToValue(native)
	if err != nil {
		return nil, LookupMiss, fmt.Errorf("policy input: object: %w", err)
	}
	bindings, err := p.eval(ctx, q, cq.view(v.(ast.Object)))
	if err != nil {
		return nil, LookupMiss, err
	}
	d, err := decode(bindings)
	if err != nil {
		return nil, LookupMiss, err
	}
	cq.cache.put(key, d)
	return d, LookupMiss, nil
}

func (p *Policy) decideValue(ctx context.Context, q rego.PreparedEvalQuery, cq *cachedQuery, value ast.Object, useCache bool, decode func(rego.Vars) (any, error)) (any, Lookup, error) {
	if !useCache || cq == nil || cq.cache == nil {
		bindings, err := p.eval(ctx, q, value)
		if err != nil {
			return nil, LookupUncached, err
		}
		d, err := decode(bindings)
		return d, LookupUncached, err
	}
	key, err := cq.keyOf(value)
	if err != nil {
		return nil, LookupMiss, err
	}
	if d, ok := cq.cache.get(key); ok {
		return d, LookupHit, nil
	}
	bindings, err := p.eval(ctx, q, cq.view(value))
	if err != nil {
		return nil, LookupMiss, err
	}
	d, err := decode(bindings)
	if err != nil {
		return nil, LookupMiss, err
	}
	cq.cache.put(key, d)
	return d, LookupMiss, nil
}

// CacheStats describes the decision caches of both queries.
func (p *Policy) CacheStats() map[string]CacheStats {
	out := map[string]CacheStats{}
	if p.mutateQ != nil {
		out["mutate"] = p.mutateQ.stats()
	}
	if p.validateQ != nil {
		out["validate"] = p.validateQ.stats()
	}
	return out
}

// contextCancel is a topdown.Cancel that ctx triggers when it ends,
// without rego's per-evaluation watcher goroutine; stop releases it.
func contextCancel(ctx context.Context) (cancel topdown.Cancel, stop func() bool) {
	cancel = topdown.NewCancel()
	return cancel, context.AfterFunc(ctx, cancel.Cancel)
}

func (p *Policy) eval(ctx context.Context, q rego.PreparedEvalQuery, value ast.Value) (rego.Vars, error) {
	cancel, stop := contextCancel(ctx)
	defer stop()
	rs, err := q.Eval(ctx, rego.EvalParsedInput(value), rego.EvalExternalCancel(cancel))
	if err != nil {
		return nil, fmt.Errorf("evaluate policy %s: %w", p.Revision, err)
	}
	if len(rs) != 1 {
		return nil, fmt.Errorf("evaluate policy %s: expected one result, got %d (is the package missing?)", p.Revision, len(rs))
	}
	return rs[0].Bindings, nil
}

// inputValue builds the policy input as an AST value directly: the raw
// objects are parsed once, without a round trip through Go maps.
func (p *Policy) inputValue(in Input) (ast.Object, error) { return p.input(in, true) }

// input builds the policy input; images (input.images) only when the
// query may read them, as parsing every image costs.
func (p *Policy) input(in Input, images bool) (ast.Object, error) {
	native, err := p.nativeInput(in)
	if err != nil {
		return nil, err
	}
	v, err := ast.InterfaceToValue(native)
	if err != nil {
		return nil, fmt.Errorf("policy input: object: %w", err)
	}
	out := v.(ast.Object)
	if images {
		// Every container image, parsed (see ImageView).
		out.Insert(ast.StringTerm("images"), p.images.views(getPath(out, []string{"request", "object"}), getPath(out, []string{"request", "oldObject"})))
	}
	return out, nil
}

// nativeInput builds the policy input, without input.images, as Go values
// (what ast.InterfaceToValue converts): the object is in.Object as it is,
// or the request's raw object parsed to AST; the old object and the
// claims are AST values. A cache hit keys on it (keyOfNative) without
// converting the object.
func (p *Policy) nativeInput(in Input) (map[string]any, error) {
	req := in.Request
	if req == nil {
		return nil, errors.New("policy input: no admission request")
	}
	var object any
	switch {
	case in.Parsed != nil:
		object = in.Parsed.value
	case in.Object != nil:
		object = in.Object
	default:
		raw, err := rawValue(req.Object.Raw)
		if err != nil {
			return nil, fmt.Errorf("policy input: object: %w", err)
		}
		object = raw
	}
	oldObject, err := rawValue(req.OldObject.Raw)
	if err != nil {
		return nil, fmt.Errorf("policy input: oldObject: %w", err)
	}
	groups := make([]any, 0, len(req.UserInfo.Groups))
	for _, g := range req.UserInfo.Groups {
		groups = append(groups, g)
	}
	labels := in.NamespaceLabels
	if labels == nil {
		labels = map[string]string{}
	}
	out := map[string]any{
		"request": map[string]any{
			"uid":         string(req.UID),
			"kind":        map[string]any{"group": req.Kind.Group, "version": req.Kind.Version, "kind": req.Kind.Kind},
			"resource":    req.Resource.Resource,
			"subResource": req.SubResource,
			"namespace":   req.Namespace,
			"name":        req.Name,
			"operation":   string(req.Operation),
			"userInfo":    map[string]any{"username": req.UserInfo.Username, "groups": groups},
			"dryRun":      req.DryRun != nil && *req.DryRun,
			"object":      object,
			"oldObject":   oldObject,
		},
		"namespace": map[string]any{"name": req.Namespace, "labels": labels},
		"policy":    map[string]any{"revision": p.Revision},
	}
	if in.Claims != nil {
		out["claims"] = claimsValue(in.Claims)
	}
	return out, nil
}

func rawValue(raw []byte) (ast.Value, error) {
	if len(bytes.TrimSpace(raw)) == 0 {
		return ast.Null{}, nil
	}
	return parseJSONValue(raw)
}

// term returns the AST term of a result binding.
func term(v any) (*ast.Term, error) {
	t, ok := v.(*ast.Term)
	if !ok {
		return nil, fmt.Errorf("unexpected result type %T", v)
	}
	return t, nil
}

func decodeOps(v any) ([]Op, error) {
	t, err := term(v)
	if err != nil {
		return nil, fmt.Errorf("policy mutate.patch: %w", err)
	}
	set, ok := t.Value.(ast.Set)
	if !ok {
		return nil, fmt.Errorf("policy mutate.patch: expected a set, got %v", ast.ValueName(t.Value))
	}
	ops := make([]Op, 0, set.Len())
	var decodeErr error
	set.Foreach(func(item *ast.Term) {
		if decodeErr != nil {
			return
		}
		op, err := decodeOp(item)
		if err != nil {
			decodeErr = fmt.Errorf("policy mutate.patch: %w", err)
			return
		}
		ops = append(ops, op)
	})
	return ops, decodeErr
}

func decodeOp(item *ast.Term) (Op, error) {
	obj, ok := item.Value.(ast.Object)
	if !ok {
		return Op{}, fmt.Errorf("expected objects, got %v", ast.ValueName(item.Value))
	}
	str := func(key string) string {
		if t := obj.Get(ast.InternedTerm(key)); t != nil {
			if s, ok := t.Value.(ast.String); ok {
				return string(s)
			}
		}
		return ""
	}
	op := Op{Setting: str("setting"), Op: str("op"), Key: str("key")}
	if t := obj.Get(ast.InternedTerm("value")); t != nil {
		v, err := ast.JSONWithOpt(t.Value, ast.JSONOpt{})
		if err != nil {
			return Op{}, fmt.Errorf("setting %q: value: %w", op.Setting, err)
		}
		op.Value = v
	}
	path, ok := objectArray(obj, "path")
	if !ok || path.Len() == 0 {
		return Op{}, fmt.Errorf("setting %q has no path", op.Setting)
	}
	var err error
	if op.Path, err = decodePath(op.Setting, path); err != nil {
		return Op{}, err
	}
	if from, ok := objectArray(obj, "from"); ok {
		if op.From, err = decodePath(op.Setting, from); err != nil {
			return Op{}, err
		}
	}
	if err := op.check(); err != nil {
		return Op{}, err
	}
	return op, nil
}

// decodePath reads a path of object keys and array indexes.
func decodePath(setting string, path *ast.Array) ([]any, error) {
	out := make([]any, 0, path.Len())
	var pathErr error
	path.Foreach(func(seg *ast.Term) {
		if pathErr != nil {
			return
		}
		switch s := seg.Value.(type) {
		case ast.String:
			out = append(out, string(s))
		case ast.Number:
			i, ok := s.Int()
			if !ok || i < 0 {
				pathErr = fmt.Errorf("setting %q: bad index %v", setting, s)
				return
			}
			out = append(out, i)
		default:
			pathErr = fmt.Errorf("setting %q: path segment %v is neither a key nor an index", setting, seg)
		}
	})
	return out, pathErr
}

func objectArray(obj ast.Object, key string) (*ast.Array, bool) {
	t := obj.Get(ast.InternedTerm(key))
	if t == nil {
		return nil, false
	}
	a, ok := t.Value.(*ast.Array)
	return a, ok
}

func decodeStrings(v any) ([]string, error) {
	t, err := term(v)
	if err != nil {
		return nil, err
	}
	set, ok := t.Value.(ast.Set)
	if !ok {
		return nil, fmt.Errorf("expected a set of strings, got %v", ast.ValueName(t.Value))
	}
	out := make([]string, 0, set.Len())
	var bad error
	set.Foreach(func(item *ast.Term) {
		s, ok := item.Value.(ast.String)
		if !ok {
			bad = fmt.Errorf("expected strings, got %v", ast.ValueName(item.Value))
			return
		}
		out = append(out, string(s))
	})
	sort.Strings(out)
	return out, bad
}

func decodeViolations(v any) ([]Violation, error) {
	t, err := term(v)
	if err != nil {
		return nil, err
	}
	set, ok := t.Value.(ast.Set)
	if !ok {
		return nil, fmt.Errorf("expected a set of {msg, field}, got %v", ast.ValueName(t.Value))
	}
	out := make([]Violation, 0, set.Len())
	var bad error
	set.Foreach(func(item *ast.Term) {
		obj, ok := item.Value.(ast.Object)
		if !ok {
			bad = fmt.Errorf("expected {msg, field} objects, got %v", ast.ValueName(item.Value))
			return
		}
		var msg, field string
		if t := obj.Get(ast.InternedTerm("msg")); t != nil {
			if s, ok := t.Value.(ast.String); ok {
				msg = string(s)
			}
		}
		if t := obj.Get(ast.InternedTerm("field")); t != nil {
			if s, ok := t.Value.(ast.String); ok {
				field = string(s)
			}
		}
		if msg == "" || field == "" {
			bad = fmt.Errorf("violation %v lacks a msg or a field", item)
			return
		}
		out = append(out, Violation{Msg: msg, Field: field})
	})
	if bad != nil {
		return nil, bad
	}
	sortViolations(out)
	return out, nil
}
