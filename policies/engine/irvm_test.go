package engine

import (
	"context"
	"errors"
	"os"
	"strings"
	"testing"

	"github.com/flowforge/flowforge/policies"
	admissionv1 "k8s.io/api/admission/v1"
	authenticationv1 "k8s.io/api/authentication/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/bundle"
	"github.com/open-policy-agent/opa/v1/ir"
	"github.com/open-policy-agent/opa/v1/rego"
	"github.com/open-policy-agent/opa/v1/storage/inmem"
	"github.com/open-policy-agent/opa/v1/topdown"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// irFeatures exercises what Rego compiles to: else chains, functions with
// arguments, partial sets and objects, defaults, negation, every, with on
// input and on data, comprehensions of every kind, iteration over arrays,
// objects and sets, built-ins that fail, literal arrays (folded) and
// arrays built at run time, conflicts.
const irFeatures = `package t

grade(n) := "high" if n > 10
else := "mid" if n > 5
else := "low"

grades := [grade(x) | some x in input.numbers]

default allow := false

allow if input.user == "admin"

allow if {
	some g in input.groups
	g == "ops"
}

names contains n if {
	some c in input.containers
	n := c.name
}

by_name[c.name] := c.image if some c in input.containers

no_root if not input.root

all_small if every n in input.numbers { n < 100 }

as_admin := r if r := allow with input.user as "admin"

limit := data.cfg.limit

with_limit := r if r := limit with data.cfg.limit as 7

pairs := {[k, v] | some k, v in input.labels; startswith(k, "a")}

counts := {k: count(v) | some k, v in input.lists}

one := x if {
	some x in input.numbers
	x > 3
}

num := to_number(input.s)

label := object.get(input, ["meta", "labels", "app"], "none")

msg := sprintf("%s has %d", [input.user, count(input.numbers)])

union := {1, 2} | {x | some x in input.numbers}

has_ops if "ops" in input.groups

arr := array.concat(["a", "b"], [g | some g in input.groups])

matches := [s | some s in input.groups; regex.match("^o", s)]

nested contains [i, j] if {
	some i, c in input.containers
	some j, e in object.get(c, "env", [])
	e.name == "X"
}

set_iter contains upper(s) if some s in {x | some x in input.groups}

deny contains {"msg": sprintf("container %s", [c.name]), "field": "c"} if {
	some c in input.containers
	not c.image
}

old_names := n if n := names with input.containers as object.get(input, "old", [])
`

var irFeatureInputs = []string{
	`{}`,
	`null`,
	`{"user": "admin", "numbers": [1, 6, 12], "groups": ["ops", "dev"], "root": false}`,
	`{"user": "bob", "numbers": [4], "groups": ["dev"], "root": true, "s": "42", "meta": {"labels": {"app": "x"}}}`,
	`{"user": "eve", "numbers": [101, "7"], "s": "not a number", "labels": {"a1": 1, "b": 2, "a2": {"x": [1]}}, "lists": {"p": [1, 2], "q": []}}`,
	`{"containers": [{"name": "a", "image": "i", "env": [{"name": "X"}, {"name": "Y"}]}, {"name": "b", "env": [{"name": "X"}]}], "old": [{"name": "z"}]}`,
	`{"containers": [{"name": "a", "image": "i"}, {"name": "a", "image": "j"}]}`,
	`{"containers": "not a list", "groups": {"k": "ops"}, "numbers": {"a": 1}, "meta": {"labels": null}}`,
	`{"numbers": [5, 9], "lists": {"p": "abc"}, "labels": {"a": "b"}, "user": 3}`,
}

var irFeatureRules = []string{
	"grades", "allow", "names", "by_name", "no_root", "all_small", "as_admin", "limit", "with_limit",
	"pairs", "counts", "one", "num", "label", "msg", "union", "has_ops", "arr", "matches", "nested",
	"set_iter", "deny", "old_names",
}

// TestCompiledEvaluatorAgreesWithTopdown plans each rule of irFeatures
// alone and evaluates it on every input with both evaluators: the same
// value, both undefined, or both an error.
func TestCompiledEvaluatorAgreesWithTopdown(t *testing.T) {
	ctx := context.Background()
	module, err := ast.ParseModuleWithOpts("t.rego", irFeatures, ast.ParserOptions{RegoVersion: ast.RegoV1})
	require.NoError(t, err)
	data := map[string]any{"cfg": map[string]any{"limit": 3}}
	b := &bundle.Bundle{Data: data, Modules: []bundle.ModuleFile{{Path: "t.rego", URL: "t.rego", Raw: []byte(irFeatures), Parsed: module}}}
	defined, errored := 0, 0
	for _, rule := range irFeatureRules {
		t.Run(rule, func(t *testing.T) {
			prog, err := planQuery(ctx, b, []string{"t/" + rule})
			require.NoError(t, err)
			query, err := rego.New(rego.Query("x = data.t."+rule), rego.Module("t.rego", irFeatures),
				rego.Store(inmem.NewFromObject(data)), rego.SetRegoVersion(ast.RegoV1),
				rego.GenerateJSON(func(t *ast.Term, _ *rego.EvalContext) (any, error) { return t, nil })).PrepareForEval(ctx)
			require.NoError(t, err)
			for _, raw := range irFeatureInputs {
				input := ast.MustParseTerm(raw)
				rs, wantErr := query.Eval(ctx, rego.EvalParsedInput(input.Value))
				got, gotErr := prog.run(ctx, topdown.NewCancel(), input)
				if wantErr != nil {
					require.Error(t, gotErr, "input %s: topdown fails with %v", raw, wantErr)
					errored++
					continue
				}
				require.NoError(t, gotErr, "input %s", raw)
				if len(rs) == 0 {
					assert.Nil(t, got[0], "input %s: undefined in topdown", raw)
					continue
				}
				want := rs[0].Bindings["x"].(*ast.Term)
				require.NotNil(t, got[0], "input %s: topdown gives %v", raw, want)
				assert.True(t, want.Equal(got[0]), "input %s: topdown gives %v, the compiled evaluator %v", raw, want, got[0])
				defined++
			}
		})
	}
	require.Greater(t, defined, 100, "defined results compared")
	require.Positive(t, errored, "conflicts compared")
}

// TestCompiledEvaluatorRefusesWhatItDoesNotRun: a plan that calls a
// built-in the evaluator does not run is refused, naming it, and a policy
// whose identity query needs one is served by topdown.
func TestCompiledEvaluatorRefusesWhatItDoesNotRun(t *testing.T) {
	ctx := context.Background()
	for name, body := range map[string]string{
		"time.now_ns": `r := time.now_ns() if input.x`,
		"walk":        `r := [p | walk(input, [p, _])]`,
		"rand.intn":   `r := rand.intn("k", 10) if input.x`,
		"CallDynamicStmt": `r := data.t.f[input.name]

f.a := 1

f.b := 2`,
	} {
		t.Run(name, func(t *testing.T) {
			src := "package t\n\n" + body + "\n"
			module, err := ast.ParseModuleWithOpts("t.rego", src, ast.ParserOptions{RegoVersion: ast.RegoV1})
			require.NoError(t, err)
			b := &bundle.Bundle{Data: map[string]any{}, Modules: []bundle.ModuleFile{{Path: "t.rego", URL: "t.rego", Raw: []byte(src), Parsed: module}}}
			_, err = planQuery(ctx, b, []string{"t/r"})
			require.Error(t, err)
			require.ErrorIs(t, err, errIRUnsupported)
			require.Contains(t, err.Error(), name)
		})
	}
}

// TestIdentityFallsBackToTopdown: the served policy's identity query runs
// compiled; an edited policy whose identity rule calls a non-deterministic
// built-in loads, is served by topdown and says why.
func TestIdentityFallsBackToTopdown(t *testing.T) {
	p, err := load(context.Background(), policies.Embedded(), testedPolicies)
	require.NoError(t, err)
	evaluator, reason := p.IdentityEvaluator()
	require.Equal(t, "compiled", evaluator, reason)

	dir := t.TempDir()
	require.NoError(t, os.CopyFS(dir, policies.Embedded()))
	writePolicy(t, dir, map[string]string{"validate/identity/clock.rego": `package flowforge.validate

identity_warning contains {"msg": "late", "field": "metadata"} if {
	input.request.operation == "CREATE"
	time.now_ns() < 0
}
`})
	e, err := New(context.Background(), Options{Tested: testedPolicies, Dir: dir})
	require.NoError(t, err)
	p = e.Current()
	require.NoError(t, err)
	evaluator, reason = p.IdentityEvaluator()
	require.Equal(t, "topdown", evaluator)
	require.Contains(t, reason, "time.now_ns")
	require.Equal(t, "topdown", e.Status().IdentityEvaluator, "readiness reports the evaluator")
	// Validation still answers, through topdown.
	in := benchInput(t)
	v, err := p.Validate(context.Background(), in)
	require.NoError(t, err)
	require.NotNil(t, v)
}

// TestCompiledIdentityIsDroppedWhenItDisagrees: the load-time check holds
// the compiled evaluator to topdown on the policy's test inputs, and
// drops it at the first difference.
func TestCompiledIdentityIsDroppedWhenItDisagrees(t *testing.T) {
	ctx := context.Background()
	p, err := load(ctx, policies.Embedded(), testedPolicies)
	require.NoError(t, err)
	inputs := policyTestInputs(t)
	p.checkCompiledIdentity(ctx, inputs)
	evaluator, reason := p.IdentityEvaluator()
	require.Equal(t, "compiled", evaluator, "the served policy agrees with itself: %s", reason)

	// A program that denies every CREATE, in place of the real one.
	src := `package flowforge.validate

identity_deny contains {"msg": "no", "field": "x"} if input.request.operation == "CREATE"

identity_warn := set()
`
	module, err := ast.ParseModuleWithOpts("w.rego", src, ast.ParserOptions{RegoVersion: ast.RegoV1})
	require.NoError(t, err)
	wrong, err := planIdentity(ctx, &bundle.Bundle{Data: map[string]any{}, Modules: []bundle.ModuleFile{{Path: "w.rego", URL: "w.rego", Raw: []byte(src), Parsed: module}}})
	require.NoError(t, err)
	p.identityIR = wrong
	p.checkCompiledIdentity(ctx, inputs)
	evaluator, reason = p.IdentityEvaluator()
	require.Equal(t, "topdown", evaluator)
	require.Contains(t, reason, "differs from topdown")
}

// TestCompiledEvaluatorErrorsInsteadOfPanicking: a plan that breaks the
// evaluator's assumptions (an insert into an undefined local) is an
// error, and the evaluator serves the next evaluation.
func TestCompiledEvaluatorErrorsInsteadOfPanicking(t *testing.T) {
	policy := &ir.Policy{
		Static: &ir.Static{Strings: []*ir.StringConst{{Value: "result"}}},
		Plans: &ir.Plans{Plans: []*ir.Plan{{Name: "p", Blocks: []*ir.Block{{Stmts: []ir.Stmt{
			&ir.ObjectInsertStmt{Key: ir.Operand{Value: ir.StringIndex(0)}, Value: ir.Operand{Value: ir.Bool(true)}, Object: ir.Local(2)},
		}}}}}},
	}
	prog, err := newIRProgram(policy, []string{"p"}, ast.NewTerm(ast.NewObject()))
	require.NoError(t, err)
	for range 2 {
		_, err = prog.run(context.Background(), topdown.NewCancel(), ast.NewTerm(ast.NewObject()))
		require.Error(t, err)
		require.Contains(t, err.Error(), "compiled evaluation")
	}
}

// TestCompiledEvaluatorStopsWhenCancelled: a cancelled evaluation over a
// large input ends with an error.
func TestCompiledEvaluatorStopsWhenCancelled(t *testing.T) {
	ctx := context.Background()
	src := "package t\n\nr := count([x | some x in input.xs; some y in input.xs; x == y])\n"
	module, err := ast.ParseModuleWithOpts("t.rego", src, ast.ParserOptions{RegoVersion: ast.RegoV1})
	require.NoError(t, err)
	prog, err := planQuery(ctx, &bundle.Bundle{Data: map[string]any{}, Modules: []bundle.ModuleFile{{Path: "t.rego", URL: "t.rego", Raw: []byte(src), Parsed: module}}}, []string{"t/r"})
	require.NoError(t, err)
	xs := make([]*ast.Term, 3000)
	for i := range xs {
		xs[i] = ast.InternedTerm(i)
	}
	input := ast.NewTerm(ast.NewObject([2]*ast.Term{ast.StringTerm("xs"), ast.ArrayTerm(xs...)}))
	cancel := topdown.NewCancel()
	cancel.Cancel()
	_, err = prog.run(ctx, cancel, input)
	require.Error(t, err)
	require.True(t, strings.Contains(err.Error(), "cancelled") || errors.Is(err, context.Canceled), err.Error())
}

// FuzzCompiledIdentityEqualsTopdown: on any object, as a Job or a Pod,
// created or updated, by any requester, with or without claims, the
// compiled identity query answers what topdown answers.
func FuzzCompiledIdentityEqualsTopdown(f *testing.F) {
	job, err := os.ReadFile("testdata/bench-job.json")
	require.NoError(f, err)
	f.Add(string(job), "", "alice", uint8(0))
	f.Add(string(job), string(job), "system:serviceaccount:agents:backend", uint8(1))
	f.Add(`{"metadata":{"labels":{"app":"flowforge","flowforge.io/job-id":"j1","flowforge.io/user-id":"bob"}},"spec":{"template":{"spec":{"volumes":[{"name":"g","secret":{"secretName":"git-credentials-j2"}}]}}}}`, "", "bob", uint8(2))
	f.Add(`{"metadata":{"labels":{"app":"flowforge","flowforge.io/job-id":"j1"},"ownerReferences":[{"kind":"Job","uid":"u","controller":true}]},"spec":{"containers":[{"name":"c","envFrom":[{"secretRef":{"name":"git-credentials-x"}}]}]}}`, "", "system:serviceaccount:kube-system:job-controller", uint8(3))
	f.Add(`null`, `{}`, "", uint8(4))
	p, err := load(context.Background(), policies.Embedded(), testedPolicies)
	require.NoError(f, err)
	require.NotNil(f, p.identityIR, p.identityIRReason)
	f.Fuzz(func(t *testing.T, object, old, user string, mode uint8) {
		kind := metav1.GroupVersionKind{Group: "batch", Version: "v1", Kind: "Job"}
		if mode&1 == 1 {
			kind = metav1.GroupVersionKind{Version: "v1", Kind: "Pod"}
		}
		op := admissionv1.Create
		if old != "" {
			op = admissionv1.Update
		}
		in := Input{Request: &admissionv1.AdmissionRequest{
			UID: "u", Kind: kind, Namespace: "agents", Operation: op,
			UserInfo: authenticationv1.UserInfo{Username: user, Groups: []string{"devs"}},
			Object:   runtime.RawExtension{Raw: []byte(object)}, OldObject: runtime.RawExtension{Raw: []byte(old)},
		}, NamespaceLabels: map[string]string{"kubernetes.io/metadata.name": "agents", "flowforge.io/managed": "true"}}
		if mode&2 == 2 {
			in.Claims = &policies.Claims{JobID: []policies.ClaimHolder{{Name: "other", UID: "u", Source: "cluster"}}}
		}
		value, err := p.inputValue(in)
		if err != nil {
			return // not JSON: the handler refuses it before any policy
		}
		require.NoError(t, p.sameIdentity(context.Background(), value))
	})
}
