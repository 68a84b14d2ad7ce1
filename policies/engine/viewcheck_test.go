package engine

import (
	"context"
	"os"
	"strings"
	"testing"

	"github.com/flowforge/flowforge/policies"

	"github.com/open-policy-agent/opa/ast"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// A shape rule that decides on a masked value through a helper
// (k8s.containers hands on whole containers, so the analysis sees no read
// of env values): with its test, the policy is refused at load, naming the
// query and the test input; without the test, nothing could tell.
const forbiddenModeRule = `package flowforge.validate

import data.flowforge.lib.k8s

violation contains {"msg": "MODE may not be forbidden", "field": "env"} if {
	some ctr in k8s.containers
	some env in object.get(ctr.container, "env", [])
	env.value == "forbidden"
}
`

const forbiddenModeTest = `package flowforge.validate.forbidden_mode_test

import data.flowforge.validate

job := {"request": {
	"kind": {"group": "batch", "version": "v1", "kind": "Job"},
	"operation": "CREATE",
	"namespace": "agents",
	"object": {
		"metadata": {"name": "j", "namespace": "agents", "labels": {"app": "flowforge"}},
		"spec": {"template": {"spec": {"containers": [{"name": "c", "env": [{"name": "MODE", "value": "forbidden"}]}]}}},
	},
}}

test_forbidden_mode_denied if {
	some v in validate.deny with input as job
	v.msg == "MODE may not be forbidden"
}
`

func TestMaskedValueThatDecidesIsRefusedAtLoad(t *testing.T) {
	dir := t.TempDir()
	require.NoError(t, os.CopyFS(dir, policies.Embedded()))
	writePolicy(t, dir, map[string]string{
		"validate/forbidden-mode/forbidden-mode.rego":      forbiddenModeRule,
		"validate/forbidden-mode/forbidden-mode_test.rego": forbiddenModeTest,
	})
	_, err := Load(context.Background(), os.DirFS(dir))
	var maskErr *MaskError
	require.ErrorAs(t, err, &maskErr)
	assert.Equal(t, "validate", maskErr.Query)
	assert.Equal(t, "Job CREATE j", maskErr.Input)
	assert.Contains(t, maskErr.Whole, "MODE may not be forbidden", "the whole input is denied")
	assert.NotContains(t, maskErr.Masked, "MODE may not be forbidden", "the masked view is not")
	assert.Contains(t, err.Error(), "take that path out of the masks")

	// Without the env value masks, the same policy loads and its cached
	// decision denies.
	data, err := os.ReadFile(dir + "/data.yaml")
	require.NoError(t, err)
	unmasked := removeLines(string(data), `env, "*", value]`)
	require.NotEqual(t, string(data), unmasked)
	writePolicy(t, dir, map[string]string{"data.yaml": unmasked})
	p, err := Load(context.Background(), os.DirFS(dir))
	require.NoError(t, err)
	require.NotNil(t, p.validateQ.cache, "validation is still cached")
}

func TestEmbeddedPolicyMasksPassTheirCheck(t *testing.T) {
	p, err := load(context.Background(), policies.Embedded(), testedPolicies)
	require.NoError(t, err)
	require.NotNil(t, p.mutateQ.masks, "the embedded policy masks identity values")
	inputs := policyTestInputs(t)
	require.Greater(t, len(inputs), 50)
	require.NoError(t, p.checkMasks(context.Background(), inputs))
}

func TestDescribeInput(t *testing.T) {
	assert.Equal(t, "an input without a request", describeInput(astObject(t, `{"x": 1}`)))
	assert.Equal(t, "Pod CONNECT", describeInput(astObject(t, `{"request": {"kind": {"kind": "Pod"}, "operation": "CONNECT"}}`)))
}

// removeLines drops the lines of s that contain sub.
func removeLines(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if !strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

func astObject(t *testing.T, s string) ast.Object {
	t.Helper()
	v, err := ast.ParseTerm(s)
	require.NoError(t, err)
	obj, ok := v.Value.(ast.Object)
	require.True(t, ok)
	return obj
}

func TestSameFiles(t *testing.T) {
	assert.True(t, sameFiles(policies.Embedded(), policies.Embedded()))
	dir := t.TempDir()
	require.NoError(t, os.CopyFS(dir, policies.Embedded()))
	assert.True(t, sameFiles(os.DirFS(dir), policies.Embedded()), "a copy of the embedded policy")
	writePolicy(t, dir, map[string]string{"..data/ignored": "x"})
	assert.True(t, sameFiles(os.DirFS(dir), policies.Embedded()), "a ConfigMap's bookkeeping is not policy")
	writePolicy(t, dir, map[string]string{"validate/extra.rego": "package flowforge.validate\n"})
	assert.False(t, sameFiles(os.DirFS(dir), policies.Embedded()), "an added file")
	require.NoError(t, os.Remove(dir+"/validate/extra.rego"))
	writePolicy(t, dir, map[string]string{"data.yaml": "flowforge: {}\n"})
	assert.False(t, sameFiles(os.DirFS(dir), policies.Embedded()), "a changed file")
}
