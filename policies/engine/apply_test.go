package engine

import (
	"bytes"
	"encoding/json"
	"testing"

	"github.com/open-policy-agent/opa/v1/ast"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func decode(t *testing.T, s string) map[string]any {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader([]byte(s)))
	dec.UseNumber()
	var m map[string]any
	require.NoError(t, dec.Decode(&m))
	return m
}

func encode(t *testing.T, m map[string]any) string {
	t.Helper()
	b, err := json.Marshal(m)
	require.NoError(t, err)
	return string(b)
}

func TestApply(t *testing.T) {
	tests := []struct {
		name    string
		obj     string
		ops     []Op
		want    string
		applied int
	}{
		{
			name: "set creates missing objects", obj: `{}`,
			ops:  []Op{{Setting: "s", Op: OpSet, Path: []any{"a", "b"}, Value: "x"}},
			want: `{"a":{"b":"x"}}`, applied: 1,
		},
		{
			name: "set overrides a different value", obj: `{"a":{"b":"y"}}`,
			ops:  []Op{{Setting: "s", Op: OpSet, Path: []any{"a", "b"}, Value: "x"}},
			want: `{"a":{"b":"x"}}`, applied: 1,
		},
		{
			name: "set with an equal number is a no-op", obj: `{"n":1.0}`,
			ops:  []Op{{Setting: "s", Op: OpSet, Path: []any{"n"}, Value: json.Number("1")}},
			want: `{"n":1.0}`, applied: 0,
		},
		{
			name: "default keeps the user's value", obj: `{"a":{"b":false}}`,
			ops:  []Op{{Setting: "d", Op: OpDefault, Path: []any{"a", "b"}, Value: true}},
			want: `{"a":{"b":false}}`, applied: 0,
		},
		{
			name: "default fills null", obj: `{"a":null}`,
			ops:  []Op{{Setting: "d", Op: OpDefault, Path: []any{"a"}, Value: json.Number("3")}},
			want: `{"a":3}`, applied: 1,
		},
		{
			name: "default inside an array element", obj: `{"c":[{"name":"x"},{"name":"y"}]}`,
			ops:  []Op{{Setting: "d", Op: OpDefault, Path: []any{"c", 1, "sc", "p"}, Value: false}},
			want: `{"c":[{"name":"x"},{"name":"y","sc":{"p":false}}]}`, applied: 1,
		},
		{
			name: "merge keeps other keys, policy wins on conflicts", obj: `{"ns":{"zone":"a","pool":"user"}}`,
			ops:  []Op{{Setting: "m", Op: OpMerge, Path: []any{"ns"}, Value: map[string]any{"pool": "gvisor"}}},
			want: `{"ns":{"pool":"gvisor","zone":"a"}}`, applied: 1,
		},
		{
			name: "merge into nothing", obj: `{}`,
			ops:  []Op{{Setting: "m", Op: OpMerge, Path: []any{"ns"}, Value: map[string]any{}}},
			want: `{"ns":{}}`, applied: 1,
		},
		{
			name: "merge already satisfied", obj: `{"ns":{"pool":"gvisor"}}`,
			ops:  []Op{{Setting: "m", Op: OpMerge, Path: []any{"ns"}, Value: map[string]any{"pool": "gvisor"}}},
			want: `{"ns":{"pool":"gvisor"}}`, applied: 0,
		},
		{
			name: "union appends what is missing", obj: `{"t":[{"key":"a"}]}`,
			ops:  []Op{{Setting: "u", Op: OpUnion, Path: []any{"t"}, Value: []any{map[string]any{"key": "a"}, map[string]any{"key": "b"}}}},
			want: `{"t":[{"key":"a"},{"key":"b"}]}`, applied: 1,
		},
		{
			name: "union already satisfied", obj: `{"d":["ALL","NET_RAW"]}`,
			ops:  []Op{{Setting: "u", Op: OpUnion, Path: []any{"d"}, Value: []any{"ALL"}}},
			want: `{"d":["ALL","NET_RAW"]}`, applied: 0,
		},
		{
			name: "add by key", obj: `{"v":[{"name":"a","x":1}]}`,
			ops: []Op{
				{Setting: "a1", Op: OpAdd, Path: []any{"v"}, Key: "name", Value: map[string]any{"name": "a", "x": json.Number("2")}},
				{Setting: "a2", Op: OpAdd, Path: []any{"v"}, Key: "name", Value: map[string]any{"name": "b"}},
			},
			want: `{"v":[{"name":"a","x":1},{"name":"b"}]}`, applied: 1,
		},
		{
			name: "remove deletes a present key", obj: `{"spec":{"ttl":5,"x":1}}`,
			ops:  []Op{{Setting: "r", Op: OpRemove, Path: []any{"spec", "ttl"}}},
			want: `{"spec":{"x":1}}`, applied: 1,
		},
		{
			name: "remove of an absent key is a no-op", obj: `{"spec":{"x":1}}`,
			ops:  []Op{{Setting: "r", Op: OpRemove, Path: []any{"spec", "ttl"}}},
			want: `{"spec":{"x":1}}`, applied: 0,
		},
		{
			name: "remove under an absent or null parent creates nothing", obj: `{"a":null}`,
			ops: []Op{
				{Setting: "r1", Op: OpRemove, Path: []any{"a", "b"}},
				{Setting: "r2", Op: OpRemove, Path: []any{"missing", "b", "c"}},
			},
			want: `{"a":null}`, applied: 0,
		},
		{
			name: "remove inside an array element", obj: `{"c":[{"name":"x","p":true}]}`,
			ops:  []Op{{Setting: "r", Op: OpRemove, Path: []any{"c", 0, "p"}}},
			want: `{"c":[{"name":"x"}]}`, applied: 1,
		},
		{
			name: "remove next to a set elsewhere", obj: `{"spec":{"ttl":5}}`,
			ops: []Op{
				{Setting: "r", Op: OpRemove, Path: []any{"spec", "ttl"}},
				{Setting: "s", Op: OpSet, Path: []any{"metadata", "annotations", "ttl"}, Value: "5"},
			},
			want: `{"metadata":{"annotations":{"ttl":"5"}},"spec":{}}`, applied: 2,
		},
		{
			name: "copy merges the listed keys the source has", obj: `{"metadata":{"labels":{"app":"f","job-id":"j-1","other":"o"}},"spec":{"template":{"metadata":{"labels":{"mine":"m"}}}}}`,
			ops:  []Op{{Setting: "c", Op: OpCopy, From: []any{"metadata", "labels"}, Path: []any{"spec", "template", "metadata", "labels"}, Value: []any{"app", "job-id", "absent"}}},
			want: `{"metadata":{"labels":{"app":"f","job-id":"j-1","other":"o"}},"spec":{"template":{"metadata":{"labels":{"mine":"m","app":"f","job-id":"j-1"}}}}}`, applied: 1,
		},
		{
			name: "copy from an absent source is a merge of nothing", obj: `{}`,
			ops:  []Op{{Setting: "c", Op: OpCopy, From: []any{"metadata", "labels"}, Path: []any{"t"}, Value: []any{"a"}}},
			want: `{"t":{}}`, applied: 1,
		},
		{
			name: "identical duplicates are fine", obj: `{}`,
			ops: []Op{
				{Setting: "one", Op: OpSet, Path: []any{"a"}, Value: "x"},
				{Setting: "two", Op: OpSet, Path: []any{"a"}, Value: "x"},
			},
			want: `{"a":"x"}`, applied: 1,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			obj := decode(t, tc.obj)
			applied, err := Apply(obj, tc.ops)
			require.NoError(t, err)
			assert.JSONEq(t, tc.want, encode(t, obj))
			assert.Len(t, applied, tc.applied)
			again, err := Apply(obj, tc.ops)
			require.NoError(t, err)
			assert.Empty(t, again, "applying twice changes nothing")
		})
	}
}

// TestCopyReadsTheObjectAsAdmitted: a copy takes the values Rego saw in
// the input, not what another op of the same decision wrote.
func TestCopyReadsTheObjectAsAdmitted(t *testing.T) {
	obj := decode(t, `{"metadata":{"labels":{"a":"old"}}}`)
	applied, err := Apply(obj, []Op{
		{Setting: "s", Op: OpSet, Path: []any{"metadata", "labels", "a"}, Value: "new"},
		{Setting: "c", Op: OpCopy, From: []any{"metadata", "labels"}, Path: []any{"t"}, Value: []any{"a"}},
	})
	require.NoError(t, err)
	assert.JSONEq(t, `{"metadata":{"labels":{"a":"new"}},"t":{"a":"old"}}`, encode(t, obj))
	assert.Equal(t, []Op{
		{Setting: "s", Op: OpSet, Path: []any{"metadata", "labels", "a"}, Value: "new"},
		{Setting: "c", Op: OpMerge, Path: []any{"t"}, Value: map[string]any{"a": "old"}},
	}, applied, "the applied copy is the merge it stood for")
}

func TestApplyErrors(t *testing.T) {
	tests := []struct {
		name string
		obj  string
		ops  []Op
		want string
	}{
		{name: "conflicting sets", obj: `{}`, ops: []Op{
			{Setting: "one", Op: OpSet, Path: []any{"a"}, Value: "x"},
			{Setting: "two", Op: OpSet, Path: []any{"a"}, Value: "y"},
		}, want: "policy conflict"},
		{name: "index out of range", obj: `{"c":[]}`, ops: []Op{{Setting: "s", Op: OpSet, Path: []any{"c", 0, "x"}, Value: 1}}, want: "out of range"},
		{name: "last index out of range", obj: `{"c":[]}`, ops: []Op{{Setting: "s", Op: OpSet, Path: []any{"c", 2}, Value: 1}}, want: "out of range"},
		{name: "no array to index", obj: `{}`, ops: []Op{{Setting: "s", Op: OpSet, Path: []any{"c", 0}, Value: 1}}, want: "index 0 out of range"},
		{name: "no array to index into", obj: `{}`, ops: []Op{{Setting: "s", Op: OpSet, Path: []any{"c", 0, "x"}, Value: 1}}, want: "no array to index"},
		{name: "walking through a scalar", obj: `{"a":"s"}`, ops: []Op{{Setting: "s", Op: OpSet, Path: []any{"a", "b"}, Value: 1}}, want: "not an object or array"},
		{name: "merge into a scalar", obj: `{"a":1}`, ops: []Op{{Setting: "m", Op: OpMerge, Path: []any{"a"}, Value: map[string]any{}}}, want: "expected an object"},
		{name: "union into an object", obj: `{"a":{}}`, ops: []Op{{Setting: "u", Op: OpUnion, Path: []any{"a"}, Value: []any{}}}, want: "expected an array"},
		{name: "add into an object", obj: `{"a":{}}`, ops: []Op{{Setting: "a", Op: OpAdd, Path: []any{"a"}, Key: "k", Value: map[string]any{"k": 1}}}, want: "expected an array"},
		{name: "string key on an array", obj: `{"a":[]}`, ops: []Op{{Setting: "s", Op: OpSet, Path: []any{"a", "x"}, Value: 1}}, want: "index x out of range"},
		{name: "remove and set one path", obj: `{}`, ops: []Op{
			{Setting: "r", Op: OpRemove, Path: []any{"a"}},
			{Setting: "s", Op: OpSet, Path: []any{"a"}, Value: 1},
		}, want: "policy conflict"},
		{name: "remove a parent of a set", obj: `{}`, ops: []Op{
			{Setting: "r", Op: OpRemove, Path: []any{"a"}},
			{Setting: "s", Op: OpSet, Path: []any{"a", "b"}, Value: 1},
		}, want: `removes a, which setting "s" writes`},
		{name: "remove through an index out of range", obj: `{"c":[]}`, ops: []Op{{Setting: "r", Op: OpRemove, Path: []any{"c", 0, "x"}}}, want: "out of range"},
		{name: "remove through a scalar", obj: `{"a":"s"}`, ops: []Op{{Setting: "r", Op: OpRemove, Path: []any{"a", "b"}}}, want: "not an object or array"},
		{name: "remove with an index on an object", obj: `{"a":{}}`, ops: []Op{{Setting: "r", Op: OpRemove, Path: []any{"a", 0, "b"}}}, want: "cannot index an object"},
		{name: "copy without keys", obj: `{}`, ops: []Op{{Setting: "c", Op: OpCopy, From: []any{"a"}, Path: []any{"b"}, Value: "k"}}, want: "copy needs an array of keys"},
		{name: "copy into a scalar", obj: `{"b":1}`, ops: []Op{{Setting: "c", Op: OpCopy, From: []any{"a"}, Path: []any{"b"}, Value: []any{"k"}}}, want: "expected an object"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Apply(decode(t, tc.obj), tc.ops)
			require.Error(t, err)
			assert.Contains(t, err.Error(), tc.want)
		})
	}
}

func TestOpCheck(t *testing.T) {
	bad := []Op{
		{Setting: "", Op: OpSet, Path: []any{"a"}},
		{Setting: "m", Op: OpMerge, Path: []any{"a"}, Value: "x"},
		{Setting: "u", Op: OpUnion, Path: []any{"a"}, Value: "x"},
		{Setting: "a", Op: OpAdd, Path: []any{"a"}, Value: map[string]any{"k": 1}},
		{Setting: "a", Op: OpAdd, Path: []any{"a"}, Key: "name", Value: map[string]any{"k": 1}},
		{Setting: "x", Op: "explode", Path: []any{"a"}},
		{Setting: "r", Op: OpRemove, Path: []any{"a"}, Value: "x"},
		{Setting: "r", Op: OpRemove, Path: []any{"a", 0}},
		{Setting: "c", Op: OpCopy, Path: []any{"a"}, From: []any{"b"}, Value: "x"},
		{Setting: "c", Op: OpCopy, Path: []any{"a"}, From: []any{"b"}, Value: []any{1}},
		{Setting: "c", Op: OpCopy, Path: []any{"a"}, Value: []any{"k"}},
	}
	for _, op := range bad {
		assert.Error(t, op.check(), "%+v", op)
	}
	require.NoError(t, Op{Setting: "r", Op: OpRemove, Path: []any{"spec", "ttl"}}.check())
}

// asTerm turns a Go value into the AST term a query would bind.
func asTerm(t *testing.T, v any) *ast.Term {
	t.Helper()
	val, err := ast.InterfaceToValue(v)
	require.NoError(t, err)
	if arr, ok := val.(*ast.Array); ok {
		// Rego sets arrive as sets.
		set := ast.NewSet()
		arr.Foreach(func(x *ast.Term) { set.Add(x) })
		return ast.NewTerm(set)
	}
	return ast.NewTerm(val)
}

func TestDecodeOps(t *testing.T) {
	ops, err := decodeOps(asTerm(t, []any{map[string]any{"setting": "s", "op": "set", "path": []any{"a", json.Number("2")}, "value": true}}))
	require.NoError(t, err)
	assert.Equal(t, []Op{{Setting: "s", Op: "set", Path: []any{"a", 2}, Value: true}}, ops)
	ops, err = decodeOps(asTerm(t, []any{map[string]any{"setting": "c", "op": "copy", "from": []any{"metadata", "labels"}, "path": []any{"t"}, "value": []any{"app"}}}))
	require.NoError(t, err)
	assert.Equal(t, []Op{{Setting: "c", Op: "copy", From: []any{"metadata", "labels"}, Path: []any{"t"}, Value: []any{"app"}}}, ops)

	for _, bad := range []any{
		"not a set",
		[]any{"not an object"},
		[]any{map[string]any{"setting": "s", "op": "set"}},
		[]any{map[string]any{"setting": "s", "op": "set", "path": []any{json.Number("-1")}}},
		[]any{map[string]any{"setting": "s", "op": "set", "path": []any{true}}},
		[]any{map[string]any{"setting": "s", "op": "nope", "path": []any{"a"}}},
		[]any{map[string]any{"setting": "c", "op": "copy", "from": []any{true}, "path": []any{"a"}, "value": []any{"k"}}},
	} {
		_, err := decodeOps(asTerm(t, bad))
		assert.Error(t, err, "%v", bad)
	}
	_, err = decodeOps("not a term")
	assert.Error(t, err)
	_, err = decodeStrings(asTerm(t, []any{json.Number("1")}))
	assert.Error(t, err)
	_, err = decodeStrings(asTerm(t, "x"))
	assert.Error(t, err)
	_, err = decodeViolations(asTerm(t, []any{map[string]any{"msg": "m"}}))
	assert.ErrorContains(t, err, "lacks a msg or a field")
	_, err = decodeViolations(asTerm(t, []any{"x"}))
	assert.Error(t, err)
	_, err = decodeViolations(asTerm(t, json.Number("1")))
	assert.Error(t, err)
	_, err = decodeViolations(1)
	assert.Error(t, err)
}

func TestRenderPath(t *testing.T) {
	assert.Equal(t, "spec.template.spec.containers[0].securityContext", renderPath([]any{"spec", "template", "spec", "containers", 0, "securityContext"}))
}

// TestPreparedOpsServeManyObjects: ops prepared once apply to each object
// as Apply applies them, copies reading each object's own values; a
// conflict is found when preparing; a Mutation prepares its ops once.
func TestPreparedOpsServeManyObjects(t *testing.T) {
	ops := []Op{
		{Setting: "c", Op: OpCopy, From: []any{"metadata", "labels"}, Path: []any{"t"}, Value: []any{"job-id"}},
		{Setting: "s", Op: OpSet, Path: []any{"metadata", "labels", "job-id"}, Value: "overwritten"},
		{Setting: "d", Op: OpDefault, Path: []any{"spec", "n"}, Value: json.Number("3")},
	}
	prepared, err := PrepareOps(ops)
	require.NoError(t, err)
	for _, id := range []string{"a", "b"} {
		raw := `{"metadata":{"labels":{"job-id":"` + id + `"}}}`
		want, got := decode(t, raw), decode(t, raw)
		wantApplied, err := Apply(want, ops)
		require.NoError(t, err)
		gotApplied, err := prepared.Apply(got)
		require.NoError(t, err)
		assert.Equal(t, wantApplied, gotApplied)
		assert.Equal(t, encode(t, want), encode(t, got))
		assert.JSONEq(t, `{"metadata":{"labels":{"job-id":"overwritten"}},"t":{"job-id":"`+id+`"},"spec":{"n":3}}`, encode(t, got))
	}

	_, err = PrepareOps([]Op{
		{Setting: "a", Op: OpSet, Path: []any{"x"}, Value: "1"},
		{Setting: "b", Op: OpSet, Path: []any{"x"}, Value: "2"},
	})
	require.ErrorContains(t, err, "policy conflict")
	_, err = PrepareOps([]Op{
		{Setting: "r", Op: OpRemove, Path: []any{"x"}},
		{Setting: "c", Op: OpCopy, From: []any{"y"}, Path: []any{"x", "z"}, Value: []any{"k"}},
	})
	require.ErrorContains(t, err, `removes x, which setting "c" writes`, "a copy writes as its merge")

	m := &Mutation{Ops: ops, prepared: &preparedOps{}}
	first, err := m.Prepared()
	require.NoError(t, err)
	second, err := m.Prepared()
	require.NoError(t, err)
	assert.Same(t, first, second, "prepared once")
	unshared, err := (&Mutation{Ops: ops}).Prepared()
	require.NoError(t, err)
	assert.Equal(t, first, unshared)
}
