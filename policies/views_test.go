package policies

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
