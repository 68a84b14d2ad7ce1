package engine

import (
	"context"
	"testing"

	"github.com/flowforge/flowforge/policies"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/rego"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// policyTestInputs runs the served policy's own tests with every
// `with input as X` rewritten to record X (as Load does), and returns the
// inputs.
func policyTestInputs(t *testing.T) []ast.Object {
	t.Helper()
	b, err := readBundle(policies.Embedded())
	require.NoError(t, err)
	capture := &inputCapture{}
	_, err = runTests(context.Background(), b, nil, capture)
	require.NoError(t, err)
	return capture.inputs()
}

// TestViewGivesTheFullDecisionOnEveryPolicyTestInput evaluates both cached
// queries on every input the policy's own tests use, once on the whole
// input and once on the query's (masked) view: the decisions are the same.
// Then it checks the split of validation on the same inputs: the shape
// (cached, on its masked view) plus the identity rules (on the whole
// input) deny and warn exactly what data.flowforge.validate.deny and warn
// give on the whole input in one query. On the same inputs it checks the
// cache keys (viewkey_test.go).
func TestViewGivesTheFullDecisionOnEveryPolicyTestInput(t *testing.T) {
	p, err := load(context.Background(), policies.Embedded(), testedPolicies)
	require.NoError(t, err)
	inputs := policyTestInputs(t)
	require.Greater(t, len(inputs), 50, "the policy tests' inputs")
	ctx := context.Background()
	t.Run("view", func(t *testing.T) {
		for i, in := range inputs {
			for _, q := range p.servedQueries() {
				require.NotNil(t, q.cq.cache, "%s is cached", q.cq.name)
				full, fullErr := p.decision(ctx, q.q, in, q.decode)
				view, viewErr := p.decision(ctx, q.q, q.cq.view(in), q.decode)
				if fullErr != nil {
					assert.Error(t, viewErr, "input %d, %s: the full input fails, the view must too", i, q.cq.name)
					continue
				}
				require.NoError(t, viewErr, "input %d, %s", i, q.cq.name)
				assert.Equal(t, full, view, "input %d, %s: %v", i, q.cq.name, in)
			}
		}
	})
	t.Run("key", func(t *testing.T) { checkKeyOfMatchesView(t, p, inputs) })
	t.Run("native key", func(t *testing.T) { checkKeyOfNativeMatchesKeyOf(t, p, inputs) })
	t.Run("identity and shape", func(t *testing.T) {
		require.True(t, p.split, "the served policy splits validation")
		assert.Equal(t, identityQuery, p.identityText, "deny and warn are the unions validate.rego writes")
		whole, err := prepareWhole(p)
		require.NoError(t, err)
		compared := 0
		for i, in := range inputs {
			want, wantErr := p.decision(ctx, whole, in, decodeValidation)
			for _, pass := range []string{"miss", "hit"} {
				got, _, gotErr := p.validateValue(ctx, in, true)
				if wantErr != nil {
					assert.Error(t, gotErr, "input %d: the whole query fails, the split must too", i)
					continue
				}
				require.NoError(t, gotErr, "input %d", i)
				want := want.(*Validation)
				assert.Equal(t, want.Deny, got.Deny, "input %d (%s): deny of %v", i, pass, in)
				assert.Equal(t, want.Warn, got.Warn, "input %d (%s): warn of %v", i, pass, in)
				compared++
			}
		}
		require.Greater(t, compared, 100)
	})
	t.Run("compiled identity", func(t *testing.T) { checkCompiledIdentity(t, p, inputs) })
}

// checkCompiledIdentity evaluates the identity query on every input with
// both evaluators, the compiled one (irvm.go) and topdown: the same
// bindings, or an error from both.
func checkCompiledIdentity(t *testing.T, p *Policy, inputs []ast.Object) {
	t.Helper()
	evaluator, reason := p.IdentityEvaluator()
	require.Equal(t, "compiled", evaluator, "the served policy's identity query is compiled: %s", reason)
	ctx := context.Background()
	denied := 0
	for i, in := range inputs {
		require.NoError(t, p.sameIdentity(ctx, in), "input %d: %v", i, in)
		want, err := p.eval(ctx, p.identity, in)
		if err == nil && want["deny"].(*ast.Term).Value.(ast.Set).Len() > 0 {
			denied++
		}
	}
	// The inputs exercise the identity rules, not only their silence.
	require.Greater(t, denied, 20, "inputs the identity query denies")
}

// prepareWhole prepares validation as one query (deny and warn whole),
// the way a policy without the split is served.
func prepareWhole(p *Policy) (rego.PreparedEvalQuery, error) {
	return rego.New(
		rego.Query(validateQuery),
		rego.Compiler(p.compiler),
		rego.Store(p.store),
		rego.GenerateJSON(func(t *ast.Term, _ *rego.EvalContext) (any, error) { return t, nil }),
	).PrepareForEval(context.Background())
}
