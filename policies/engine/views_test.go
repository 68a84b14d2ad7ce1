package engine

import (
	"testing"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestProject(t *testing.T) {
	in := ast.MustParseTerm(`{"request": {"uid": "u", "userInfo": {}, "object": {"a": 1}, "kind": "odd"}, "namespace": {"labels": {"x": "y"}, "name": "n"}}`).Value.(ast.Object)
	tests := []struct {
		name  string
		views []string
		want  string
	}{
		{"a subtree", []string{"request.object"}, `{"request": {"object": {"a": 1}}}`},
		{"an absent key keeps its object parent", []string{"request.userInfo.username"}, `{"request": {"userInfo": {}}}`},
		{"an absent parent", []string{"claims.jobID"}, `{}`},
		{"a non-object on the way is copied whole", []string{"request.kind.kind"}, `{"request": {"kind": "odd"}}`},
		{"several views share parents", []string{"request.object", "namespace.labels", "request.uid"}, `{"request": {"object": {"a": 1}, "uid": "u"}, "namespace": {"labels": {"x": "y"}}}`},
		{"a view under another adds nothing", []string{"request.object.a", "request.object"}, `{"request": {"object": {"a": 1}}}`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			raw := make([]any, len(tc.views))
			for i, v := range tc.views {
				raw[i] = v
			}
			views, err := parseViews("q", raw)
			require.NoError(t, err)
			got := project(in, views)
			assert.Equal(t, 0, got.Compare(ast.MustParseTerm(tc.want).Value), "got %v", got)
		})
	}
	assert.Equal(t, `{"namespace": {"labels": {"x": "y"}, "name": "n"}, "request": {"kind": "odd", "object": {"a": 1}, "uid": "u", "userInfo": {}}}`, in.String(), "the input is not changed")
}

func TestViewPathCovers(t *testing.T) {
	assert.True(t, viewPath{"request"}.covers(viewPath{"request", "object"}))
	assert.True(t, viewPath{"request", "object"}.covers(viewPath{"request", "object"}))
	assert.False(t, viewPath{"request", "object"}.covers(viewPath{"request"}))
	assert.False(t, viewPath{"request", "oldObject"}.covers(viewPath{"request", "object", "x"}))
	assert.Equal(t, "input", viewPath{}.String())
	assert.Equal(t, "input.request.object", viewPath{"request", "object"}.String())
}

func TestMaskView(t *testing.T) {
	masks := []any{
		[]any{"metadata", "name"},
		[]any{"metadata", "labels", "job-id"},
		[]any{"spec", "*", "*", "env", "*", "value"},
		[]any{"spec", "containers", "*", "image"},
	}
	root, paths, err := parseMasks(map[string]any{"object": masks})
	require.NoError(t, err)
	require.Len(t, paths, len(masks))
	tests := []struct {
		name       string
		object     string
		want       string
		changedAny bool
	}{
		{"a name", `{"metadata": {"name": "j-1", "namespace": "a"}}`, `{"metadata": {"name": "masked", "namespace": "a"}}`, true},
		{"an empty value stays empty", `{"metadata": {"name": "", "labels": {"job-id": ""}}}`, `{"metadata": {"name": "", "labels": {"job-id": ""}}}`, false},
		{"only strings are masked", `{"metadata": {"name": 7, "labels": {"job-id": {"a": "b"}}}}`, `{"metadata": {"name": 7, "labels": {"job-id": {"a": "b"}}}}`, false},
		{"other labels stay", `{"metadata": {"labels": {"job-id": "x", "app": "flowforge"}}}`, `{"metadata": {"labels": {"job-id": "masked", "app": "flowforge"}}}`, true},
		{
			"a wildcard over keys and elements, merged with an explicit path",
			`{"spec": {"containers": [{"image": "i", "env": [{"name": "A", "value": "1"}, {"name": "B"}]}], "initContainers": [{"image": "j", "env": [{"name": "C", "value": ""}]}]}}`,
			`{"spec": {"containers": [{"image": "masked", "env": [{"name": "A", "value": "masked"}, {"name": "B"}]}], "initContainers": [{"image": "j", "env": [{"name": "C", "value": ""}]}]}}`,
			true,
		},
		{"nothing to mask", `{"spec": {"containers": "odd"}}`, `{"spec": {"containers": "odd"}}`, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			obj := ast.MustParseTerm(tc.object).Value
			before := obj.String()
			got, changed := root.mask(obj)
			assert.Equal(t, tc.changedAny, changed)
			assert.Equal(t, 0, got.Compare(ast.MustParseTerm(tc.want).Value), "got %v", got)
			assert.Equal(t, before, obj.String(), "the input is not changed")
		})
	}

	t.Run("object and old object of a view", func(t *testing.T) {
		in := ast.MustParseTerm(`{"request": {"object": {"metadata": {"name": "a"}}, "oldObject": {"metadata": {"name": "b"}}, "name": "a"}}`).Value.(ast.Object)
		view := maskView(project(in, []viewPath{{"request"}}), root)
		assert.Equal(t, `{"request": {"name": "a", "object": {"metadata": {"name": "masked"}}, "oldObject": {"metadata": {"name": "masked"}}}}`, view.String())
		assert.Equal(t, `{"request": {"name": "a", "object": {"metadata": {"name": "a"}}, "oldObject": {"metadata": {"name": "b"}}}}`, in.String(), "the input is not changed")
		assert.Equal(t, in, maskView(in, nil), "no masks, no change")
	})
}

func TestParseMasksErrors(t *testing.T) {
	for name, raw := range map[string]any{
		"not an object":   []any{"metadata.name"},
		"no object list":  map[string]any{"object": "metadata.name"},
		"a path is a key": map[string]any{"object": []any{"metadata.name"}},
		"an empty path":   map[string]any{"object": []any{[]any{}}},
		"an empty key":    map[string]any{"object": []any{[]any{"metadata", ""}}},
	} {
		t.Run(name, func(t *testing.T) {
			_, _, err := parseMasks(raw)
			require.Error(t, err)
			assert.Contains(t, err.Error(), "data.flowforge.config.cache.masks")
		})
	}
	root, paths, err := parseMasks(map[string]any{"object": []any{}})
	require.NoError(t, err)
	assert.Nil(t, root)
	assert.Empty(t, paths)
}

func TestMaskedReadsAreRefused(t *testing.T) {
	a := queryAnalysis{reads: []inputRead{
		{path: viewPath{"request", "object"}, rule: "data.x.obj", loc: "x.rego:1"},
		{path: viewPath{"request", "object", "metadata", "labels"}, rule: "data.x.labels", loc: "x.rego:2"},
		{path: viewPath{"request", "oldObject", "spec", "containers", "0"}, rule: "data.x.c", loc: "x.rego:3"},
		{path: viewPath{"request", "object", "metadata", "name", "x"}, rule: "data.x.name", loc: "x.rego:4"},
	}}
	require.NoError(t, maskedReads("q", a, [][]string{{"metadata", "labels", "job-id"}}), "reads above a mask see it masked, which the differential tests check")
	err := maskedReads("q", a, [][]string{{"spec", "*", "*"}, {"metadata", "name"}})
	var viewErr *ViewError
	require.ErrorAs(t, err, &viewErr)
	assert.Equal(t, []string{
		"input.request.oldObject.spec.containers.0 read by data.x.c at x.rego:3 is masked (data.flowforge.config.cache.masks)",
		"input.request.object.metadata.name.x read by data.x.name at x.rego:4 is masked (data.flowforge.config.cache.masks)",
	}, viewErr.Reads)
}
