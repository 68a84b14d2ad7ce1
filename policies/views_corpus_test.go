package policies

import (
	"context"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/rego"
	"github.com/open-policy-agent/opa/v1/storage/inmem"
	"github.com/open-policy-agent/opa/v1/tester"
	"github.com/open-policy-agent/opa/v1/types"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// captureBuiltin records every input a policy test evaluates with.
const captureBuiltin = "flowforge_test_capture"

// policyTestInputs runs the served policy's own tests with every
// `with input as X` rewritten to record X, and returns the inputs.
func policyTestInputs(t *testing.T) []ast.Object {
	t.Helper()
	b, err := readBundle(Embedded())
	require.NoError(t, err)
	var mu sync.Mutex
	seen := map[string]ast.Object{}
	modules := map[string]*ast.Module{}
	rewritten := 0
	for _, m := range b.Modules {
		mod := m.Parsed.Copy()
		if strings.HasSuffix(m.Path, "_test.rego") {
			ast.WalkExprs(mod, func(e *ast.Expr) bool {
				for _, w := range e.With {
					if w.Target.Equal(ast.InputRootDocument) || w.Target.Value.Compare(ast.InputRootRef) == 0 {
						w.Value = ast.CallTerm(ast.RefTerm(ast.VarTerm(captureBuiltin)), w.Value)
						rewritten++
					}
				}
				return false
			})
		}
		modules[m.Path] = mod
	}
	require.NotZero(t, rewritten)
	decl := &ast.Builtin{Name: captureBuiltin, Decl: types.NewFunction(types.Args(types.A), types.A)}
	capture := &tester.Builtin{Decl: decl, Func: rego.Function1(&rego.Function{Name: captureBuiltin, Decl: decl.Decl},
		func(_ rego.BuiltinContext, in *ast.Term) (*ast.Term, error) {
			if obj, ok := in.Value.(ast.Object); ok {
				mu.Lock()
				seen[obj.String()] = obj
				mu.Unlock()
			}
			return in, nil
		})}
	ch, err := tester.NewRunner().
		SetModules(modules).
		SetStore(inmem.NewFromObject(b.Data)).
		SetDefaultRegoVersion(ast.RegoV1).
		AddCustomBuiltins([]*tester.Builtin{capture}).
		SetTimeout(testTimeout).
		RunTests(context.Background(), nil)
	require.NoError(t, err)
	for r := range ch {
		require.False(t, r.Fail || r.Error != nil, "%s.%s: %v", r.Package, r.Name, r.Error)
	}
	keys := make([]string, 0, len(seen))
	for k := range seen {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	out := make([]ast.Object, 0, len(keys))
	for _, k := range keys {
		out = append(out, seen[k])
	}
	return out
}

// TestViewGivesTheFullDecisionOnEveryPolicyTestInput evaluates both served
// queries on every input the policy's own tests use, once on the whole
// input and once on the query's view: the decisions are the same.
func TestViewGivesTheFullDecisionOnEveryPolicyTestInput(t *testing.T) {
	p, err := Load(context.Background(), Embedded())
	require.NoError(t, err)
	inputs := policyTestInputs(t)
	require.Greater(t, len(inputs), 50, "the policy tests' inputs")
	ctx := context.Background()
	queries := []struct {
		q      rego.PreparedEvalQuery
		cq     *cachedQuery
		decode func(rego.Vars) (any, error)
	}{
		{p.mutate, p.mutateQ, decodeMutation},
		{p.validate, p.validateQ, decodeValidation},
	}
	for i, in := range inputs {
		for _, q := range queries {
			require.NotNil(t, q.cq.cache, "%s is cached", q.cq.name)
			full, fullErr := evalDecision(ctx, p, q.q, in, q.decode)
			view, viewErr := evalDecision(ctx, p, q.q, project(in, q.cq.views), q.decode)
			if fullErr != nil {
				assert.Error(t, viewErr, "input %d, %s: the full input fails, the view must too", i, q.cq.name)
				continue
			}
			require.NoError(t, viewErr, "input %d, %s", i, q.cq.name)
			assert.Equal(t, full, view, "input %d, %s: %v", i, q.cq.name, in)
		}
	}
}

func evalDecision(ctx context.Context, p *Policy, q rego.PreparedEvalQuery, in ast.Value, decode func(rego.Vars) (any, error)) (any, error) {
	bindings, err := p.eval(ctx, q, in)
	if err != nil {
		return nil, err
	}
	d, err := decode(bindings)
	if m, ok := d.(*Mutation); ok {
		sort.Slice(m.Ops, func(i, j int) bool {
			return renderPath(m.Ops[i].Path)+m.Ops[i].Op < renderPath(m.Ops[j].Path)+m.Ops[j].Op
		})
	}
	return d, err
}
