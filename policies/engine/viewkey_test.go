package engine

import (
	"testing"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// checkKeyOfMatchesView checks the key written straight from the input
// against the view it stands for, on the inputs (those of the policy's own
// tests, see TestViewGivesTheFullDecisionOnEveryPolicyTestInput): two
// inputs share a key exactly when their masked views are equal (by OPA's
// canonical text), and the view itself has the input's key.
func checkKeyOfMatchesView(t *testing.T, p *Policy, inputs []ast.Object) {
	for _, q := range []*cachedQuery{p.mutateQ, p.validateQ} {
		t.Run(q.name, func(t *testing.T) {
			byKey := map[cacheKey]string{}
			byView := map[string]cacheKey{}
			for i, in := range inputs {
				key, err := q.keyOf(in)
				require.NoError(t, err)
				view := q.view(in)
				text := view.String()
				if other, ok := byKey[key]; ok {
					assert.Equal(t, other, text, "input %d shares a key with a different view", i)
				}
				if other, ok := byView[text]; ok {
					assert.Equal(t, other, key, "input %d: an equal view has another key", i)
				}
				byKey[key], byView[text] = text, key
				again, err := q.keyOf(view)
				require.NoError(t, err)
				assert.Equal(t, key, again, "input %d: the view's key", i)
			}
			assert.Greater(t, len(byKey), 10, "distinct views")
		})
	}
}

// TestKeyOfEncoding checks the encoding on values the policy tests lack:
// sets, non-string keys, masks below arrays and under a view that is not
// an object, and strings that only look alike.
func TestKeyOfEncoding(t *testing.T) {
	masks, _, err := parseMasks(map[string]any{"object": []any{
		[]any{"metadata", "name"},
		[]any{"spec", "*", "*", "env", "*", "value"},
	}})
	require.NoError(t, err)
	q := &cachedQuery{name: "test", masks: masks, views: []viewPath{{"request", "object"}, {"request", "kind", "kind"}, {"namespace"}}}
	q.trie, q.inMasks = newViewTrie(q.views), inputMasks(masks)
	input := func(object string, extra ...[2]*ast.Term) ast.Object {
		obj := ast.MustParseTerm(object)
		req := ast.NewObject(ast.Item(ast.StringTerm("object"), obj), ast.Item(ast.StringTerm("kind"), ast.MustParseTerm(`{"kind": "Job", "group": "batch"}`)))
		in := ast.NewObject(ast.Item(ast.StringTerm("request"), ast.NewTerm(req)))
		for _, e := range extra {
			in.Insert(e[0], e[1])
		}
		return in
	}
	for name, tc := range map[string]struct {
		a, b ast.Object
		same bool
	}{
		"masked name":            {input(`{"metadata": {"name": "a"}}`), input(`{"metadata": {"name": "b"}}`), true},
		"masked name vs empty":   {input(`{"metadata": {"name": "a"}}`), input(`{"metadata": {"name": ""}}`), false},
		"masked env value":       {input(`{"spec": {"c": [{"env": [{"value": "x"}]}]}}`), input(`{"spec": {"c": [{"env": [{"value": "y"}]}]}}`), true},
		"unmasked env name":      {input(`{"spec": {"c": [{"env": [{"name": "x"}]}]}}`), input(`{"spec": {"c": [{"env": [{"name": "y"}]}]}}`), false},
		"number literal":         {input(`{"n": 1}`), input(`{"n": 2}`), false},
		"string vs number":       {input(`{"n": "1"}`), input(`{"n": 1}`), false},
		"key boundary":           {input(`{"ab": "c"}`), input(`{"a": "bc"}`), false},
		"array vs object":        {input(`{"a": []}`), input(`{"a": {}}`), false},
		"null vs false":          {input(`{"a": null}`), input(`{"a": false}`), false},
		"set":                    {input(`{"a": {1, 2}}`), input(`{"a": {2, 1}}`), true},
		"sets differ":            {input(`{"a": {1, 2}}`), input(`{"a": {1, 3}}`), false},
		"non-string key":         {input(`{"a": {1: 2}}`), input(`{"a": {"1": 2}}`), false},
		"outside the views":      {input(`{}`, ast.Item(ast.StringTerm("other"), ast.StringTerm("x"))), input(`{}`), true},
		"inside namespace":       {input(`{}`, ast.Item(ast.StringTerm("namespace"), ast.StringTerm("x"))), input(`{}`), false},
		"view not under objects": {input(`{}`, ast.Item(ast.StringTerm("namespace"), ast.MustParseTerm(`["x"]`))), input(`{}`, ast.Item(ast.StringTerm("namespace"), ast.MustParseTerm(`["y"]`))), false},
	} {
		t.Run(name, func(t *testing.T) {
			ka, err := q.keyOf(tc.a)
			require.NoError(t, err)
			kb, err := q.keyOf(tc.b)
			require.NoError(t, err)
			assert.Equal(t, tc.same, ka == kb)
			assert.Equal(t, tc.same, q.view(tc.a).Compare(q.view(tc.b)) == 0, "the views agree")
		})
	}
}

// checkKeyOfNativeMatchesKeyOf checks that the key written from Go values
// is the key of their AST value, on the inputs (as Go values), for both
// queries.
func checkKeyOfNativeMatchesKeyOf(t *testing.T, p *Policy, inputs []ast.Object) {
	for i, in := range inputs {
		native, err := ast.JSONWithOpt(in, ast.JSONOpt{})
		require.NoError(t, err)
		back, err := ast.InterfaceToValue(native)
		require.NoError(t, err)
		for _, q := range []*cachedQuery{p.mutateQ, p.validateQ} {
			want, err := q.keyOf(back.(ast.Object))
			require.NoError(t, err)
			got, err := q.keyOfNative(native.(map[string]any))
			require.NoError(t, err)
			require.Equal(t, want, got, "input %d, %s", i, q.name)
		}
	}
}
