package policies

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/rego"
	admissionv1 "k8s.io/api/admission/v1"
)

// Input is what a policy sees: the admission request and the labels of
// the request's namespace. Building it never calls the network.
type Input struct {
	Request         *admissionv1.AdmissionRequest
	NamespaceLabels map[string]string
}

// Op is one setting of the hardening document (see mutate/mutate.rego).
type Op struct {
	Setting string `json:"setting"`
	Op      string `json:"op"`
	Path    []any  `json:"path"`
	Value   any    `json:"value"`
	Key     string `json:"key,omitempty"`
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
}

// Validation is a policy's verdict on one object.
type Validation struct {
	Revision string
	Deny     []Violation
	Warn     []Violation
}

// Mutate evaluates data.flowforge.mutate for the input.
func (p *Policy) Mutate(ctx context.Context, in Input) (*Mutation, error) {
	bindings, err := p.eval(ctx, p.mutate, in)
	if err != nil {
		return nil, err
	}
	ops, err := decodeOps(bindings["patch"])
	if err != nil {
		return nil, err
	}
	warnings, err := decodeStrings(bindings["warn"])
	if err != nil {
		return nil, fmt.Errorf("policy mutate.warn: %w", err)
	}
	return &Mutation{Revision: p.Revision, Ops: ops, Warnings: warnings}, nil
}

// Validate evaluates data.flowforge.validate for the input.
func (p *Policy) Validate(ctx context.Context, in Input) (*Validation, error) {
	bindings, err := p.eval(ctx, p.validate, in)
	if err != nil {
		return nil, err
	}
	deny, err := decodeViolations(bindings["deny"])
	if err != nil {
		return nil, fmt.Errorf("policy validate.deny: %w", err)
	}
	warn, err := decodeViolations(bindings["warn"])
	if err != nil {
		return nil, fmt.Errorf("policy validate.warn: %w", err)
	}
	return &Validation{Revision: p.Revision, Deny: deny, Warn: warn}, nil
}

func (p *Policy) eval(ctx context.Context, q rego.PreparedEvalQuery, in Input) (rego.Vars, error) {
	value, err := p.inputValue(in)
	if err != nil {
		return nil, err
	}
	rs, err := q.Eval(ctx, rego.EvalParsedInput(value))
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
func (p *Policy) inputValue(in Input) (ast.Value, error) {
	req := in.Request
	if req == nil {
		return nil, errors.New("policy input: no admission request")
	}
	object, err := rawValue(req.Object.Raw)
	if err != nil {
		return nil, fmt.Errorf("policy input: object: %w", err)
	}
	oldObject, err := rawValue(req.OldObject.Raw)
	if err != nil {
		return nil, fmt.Errorf("policy input: oldObject: %w", err)
	}
	groups := make([]*ast.Term, 0, len(req.UserInfo.Groups))
	for _, g := range req.UserInfo.Groups {
		groups = append(groups, ast.StringTerm(g))
	}
	labels := make([][2]*ast.Term, 0, len(in.NamespaceLabels))
	for k, v := range in.NamespaceLabels {
		labels = append(labels, [2]*ast.Term{ast.StringTerm(k), ast.StringTerm(v)})
	}
	dryRun := req.DryRun != nil && *req.DryRun
	request := ast.NewObject(
		ast.Item(ast.StringTerm("uid"), ast.StringTerm(string(req.UID))),
		ast.Item(ast.StringTerm("kind"), ast.ObjectTerm(
			ast.Item(ast.StringTerm("group"), ast.StringTerm(req.Kind.Group)),
			ast.Item(ast.StringTerm("version"), ast.StringTerm(req.Kind.Version)),
			ast.Item(ast.StringTerm("kind"), ast.StringTerm(req.Kind.Kind)),
		)),
		ast.Item(ast.StringTerm("resource"), ast.StringTerm(req.Resource.Resource)),
		ast.Item(ast.StringTerm("subResource"), ast.StringTerm(req.SubResource)),
		ast.Item(ast.StringTerm("namespace"), ast.StringTerm(req.Namespace)),
		ast.Item(ast.StringTerm("name"), ast.StringTerm(req.Name)),
		ast.Item(ast.StringTerm("operation"), ast.StringTerm(string(req.Operation))),
		ast.Item(ast.StringTerm("userInfo"), ast.ObjectTerm(
			ast.Item(ast.StringTerm("username"), ast.StringTerm(req.UserInfo.Username)),
			ast.Item(ast.StringTerm("groups"), ast.ArrayTerm(groups...)),
		)),
		ast.Item(ast.StringTerm("dryRun"), ast.BooleanTerm(dryRun)),
		ast.Item(ast.StringTerm("object"), ast.NewTerm(object)),
		ast.Item(ast.StringTerm("oldObject"), ast.NewTerm(oldObject)),
	)
	return ast.NewObject(
		ast.Item(ast.StringTerm("request"), ast.NewTerm(request)),
		ast.Item(ast.StringTerm("namespace"), ast.ObjectTerm(
			ast.Item(ast.StringTerm("name"), ast.StringTerm(req.Namespace)),
			ast.Item(ast.StringTerm("labels"), ast.ObjectTerm(labels...)),
		)),
		ast.Item(ast.StringTerm("policy"), ast.ObjectTerm(
			ast.Item(ast.StringTerm("revision"), ast.StringTerm(p.Revision)),
		)),
	), nil
}

func rawValue(raw []byte) (ast.Value, error) {
	if len(bytes.TrimSpace(raw)) == 0 {
		return ast.Null{}, nil
	}
	return ast.ValueFromReader(bytes.NewReader(raw))
}

func decodeOps(v any) ([]Op, error) {
	items, ok := v.([]any)
	if !ok {
		return nil, fmt.Errorf("policy mutate.patch: expected a set, got %T", v)
	}
	ops := make([]Op, 0, len(items))
	for _, item := range items {
		m, ok := item.(map[string]any)
		if !ok {
			return nil, fmt.Errorf("policy mutate.patch: expected objects, got %T", item)
		}
		op := Op{Value: m["value"]}
		op.Setting, _ = m["setting"].(string)
		op.Op, _ = m["op"].(string)
		op.Key, _ = m["key"].(string)
		path, ok := m["path"].([]any)
		if !ok || len(path) == 0 {
			return nil, fmt.Errorf("policy mutate.patch: setting %q has no path", op.Setting)
		}
		for _, seg := range path {
			switch s := seg.(type) {
			case string:
				op.Path = append(op.Path, s)
			case json.Number:
				i, err := s.Int64()
				if err != nil || i < 0 {
					return nil, fmt.Errorf("policy mutate.patch: setting %q: bad index %v", op.Setting, s)
				}
				op.Path = append(op.Path, int(i))
			default:
				return nil, fmt.Errorf("policy mutate.patch: setting %q: path segment %v is neither a key nor an index", op.Setting, seg)
			}
		}
		if err := op.check(); err != nil {
			return nil, fmt.Errorf("policy mutate.patch: %w", err)
		}
		ops = append(ops, op)
	}
	return ops, nil
}

func decodeStrings(v any) ([]string, error) {
	items, ok := v.([]any)
	if !ok {
		return nil, fmt.Errorf("expected a set of strings, got %T", v)
	}
	out := make([]string, 0, len(items))
	for _, item := range items {
		s, ok := item.(string)
		if !ok {
			return nil, fmt.Errorf("expected strings, got %T", item)
		}
		out = append(out, s)
	}
	sort.Strings(out)
	return out, nil
}

func decodeViolations(v any) ([]Violation, error) {
	items, ok := v.([]any)
	if !ok {
		return nil, fmt.Errorf("expected a set of {msg, field}, got %T", v)
	}
	out := make([]Violation, 0, len(items))
	for _, item := range items {
		m, ok := item.(map[string]any)
		if !ok {
			return nil, fmt.Errorf("expected {msg, field} objects, got %T", item)
		}
		msg, _ := m["msg"].(string)
		field, _ := m["field"].(string)
		if msg == "" || field == "" {
			return nil, fmt.Errorf("violation %v lacks a msg or a field", m)
		}
		out = append(out, Violation{Msg: msg, Field: field})
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Field != out[j].Field {
			return out[i].Field < out[j].Field
		}
		return out[i].Msg < out[j].Msg
	})
	return out, nil
}
