package engine

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/bundle"
	opacompile "github.com/open-policy-agent/opa/v1/compile"
	"github.com/open-policy-agent/opa/v1/ir"
	"github.com/open-policy-agent/opa/v1/rego"
)

// identityEntrypoints are identityQuery's two documents, in the order
// decodeValidation's bindings name them.
var identityEntrypoints = [...]struct{ binding, plan string }{
	{"deny", "flowforge/validate/identity_deny"},
	{"warn", "flowforge/validate/identity_warn"},
}

// planIdentity plans identityQuery for the compiled evaluator (irvm.go).
// An error says why the query stays with topdown; errIRUnsupported marks
// a plan that uses what the evaluator does not run.
func planIdentity(ctx context.Context, b *bundle.Bundle) (*irProgram, error) {
	entrypoints := make([]string, 0, len(identityEntrypoints))
	for _, e := range identityEntrypoints {
		entrypoints = append(entrypoints, e.plan)
	}
	prog, err := planQuery(ctx, b, entrypoints)
	if err != nil {
		return nil, fmt.Errorf("plan the identity query: %w", err)
	}
	return prog, nil
}

// planQuery plans the entrypoints ("flowforge/validate/identity_deny")
// of the bundle's modules, its tests left out, over its data.
func planQuery(ctx context.Context, b *bundle.Bundle, entrypoints []string) (*irProgram, error) {
	serving := *b
	serving.Modules = nil
	for _, m := range b.Modules {
		if !strings.HasSuffix(m.Path, "_test.rego") {
			serving.Modules = append(serving.Modules, m)
		}
	}
	c := opacompile.New().WithTarget(opacompile.TargetPlan).WithBundle(&serving).
		WithEntrypoints(entrypoints...).WithRegoVersion(ast.RegoV1)
	if err := c.Build(ctx); err != nil {
		return nil, err
	}
	out := c.Bundle()
	if out == nil || len(out.PlanModules) != 1 {
		return nil, errors.New("no plan")
	}
	var policy ir.Policy
	if err := json.Unmarshal(out.PlanModules[0].Raw, &policy); err != nil {
		return nil, fmt.Errorf("read the plan: %w", err)
	}
	data, err := ast.InterfaceToValue(b.Data)
	if err != nil {
		return nil, fmt.Errorf("policy data: %w", err)
	}
	return newIRProgram(&policy, entrypoints, ast.NewTerm(data))
}

// planIdentity gives the policy the compiled evaluator of its identity
// query when the evaluator runs everything the plan uses; otherwise
// topdown serves the query, and IdentityEvaluator says why. Planning
// takes about half a second, so a process that keeps a TestedPolicies
// plans each revision once.
func (p *Policy) planIdentity(ctx context.Context, b *bundle.Bundle, tested *TestedPolicies) {
	if p.identityText != identityQuery {
		p.identityIRReason = "a rule adds to deny or warn directly: the identity query is not identity_deny and identity_warn alone"
		return
	}
	if planned, ok := tested.plan(p.Revision); ok {
		p.identityIR, p.identityIRReason = planned.prog, planned.reason
		return
	}
	prog, err := planIdentity(ctx, b)
	planned := identityPlan{prog: prog}
	if err != nil {
		planned.reason = err.Error()
	}
	tested.recordPlan(p.Revision, planned)
	p.identityIR, p.identityIRReason = planned.prog, planned.reason
}

// evalIdentityIR evaluates identityQuery with the compiled evaluator,
// giving the bindings the query would.
func (p *Policy) evalIdentityIR(ctx context.Context, value ast.Value) (rego.Vars, error) {
	cancel, stop := contextCancel(ctx)
	defer stop()
	results, err := p.identityIR.run(ctx, cancel, ast.NewTerm(value))
	if err != nil {
		return nil, fmt.Errorf("evaluate policy %s: %w", p.Revision, err)
	}
	vars := make(rego.Vars, len(identityEntrypoints))
	for i, e := range identityEntrypoints {
		if results[i] == nil {
			return nil, fmt.Errorf("evaluate policy %s: data.%s is undefined", p.Revision, strings.ReplaceAll(e.plan, "/", "."))
		}
		vars[e.binding] = results[i]
	}
	return vars, nil
}

// checkCompiledIdentity evaluates the identity query on every input with
// both evaluators. At the first input where they differ (a value, or one
// failing where the other does not) the policy drops the compiled
// evaluator and topdown serves the query: the reason names the input.
// The embedded policy is checked by its unit tests instead.
func (p *Policy) checkCompiledIdentity(ctx context.Context, inputs []ast.Object) {
	if p.identityIR == nil {
		return
	}
	for i, in := range inputs {
		if err := p.sameIdentity(ctx, in); err != nil {
			p.identityIR = nil
			p.identityIRReason = fmt.Sprintf("the compiled evaluator differs from topdown on policy test input %d: %v", i, err)
			return
		}
	}
}

// sameIdentity compares the two evaluators on one input.
func (p *Policy) sameIdentity(ctx context.Context, in ast.Object) error {
	want, wantErr := p.eval(ctx, p.identity, in)
	got, gotErr := p.evalIdentityIR(ctx, in)
	switch {
	case wantErr != nil && gotErr != nil:
		return nil
	case wantErr != nil:
		return fmt.Errorf("topdown fails (%w), the compiled evaluator does not", wantErr)
	case gotErr != nil:
		return fmt.Errorf("the compiled evaluator fails: %w", gotErr)
	}
	for _, e := range identityEntrypoints {
		w, _ := want[e.binding].(*ast.Term)
		g, _ := got[e.binding].(*ast.Term)
		if w == nil || g == nil || !w.Equal(g) {
			return fmt.Errorf("%s: topdown gives %v, the compiled evaluator %v", e.binding, w, g)
		}
	}
	return nil
}
