package engine

import (
	"context"
	"encoding/json"
	"fmt"
	"io/fs"
	"testing"

	"github.com/flowforge/flowforge/policies"
	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/rego"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	admissionv1 "k8s.io/api/admission/v1"
)

const testDigest = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

func TestParseImage(t *testing.T) {
	tests := []struct {
		raw  string
		want ImageView
	}{
		{"ghcr.io/flowforge/claude-worker:1.0.0", ImageView{Valid: true, Domain: "ghcr.io", Path: "flowforge/claude-worker", Tag: "1.0.0"}},
		{"alpine", ImageView{Valid: true, Domain: "docker.io", Path: "library/alpine"}},
		{"flowforge/worker:1", ImageView{Valid: true, Domain: "docker.io", Path: "flowforge/worker", Tag: "1"}},
		{"registry.example.com:5000/w", ImageView{Valid: true, Domain: "registry.example.com:5000", Path: "w"}},
		{"ghcr.io/flowforge/w:1@" + testDigest, ImageView{Valid: true, Domain: "ghcr.io", Path: "flowforge/w", Tag: "1", Digest: testDigest}},
		{"ghcr.io/flowforge-evil/w:1", ImageView{Valid: true, Domain: "ghcr.io", Path: "flowforge-evil/w", Tag: "1"}},
		{"ghcr.io/flowforge/../x:1", ImageView{Error: "invalid reference format"}},
		{"ghcr.io/flowforge/W:1", ImageView{Error: "invalid reference format: repository name (flowforge/W) must be lowercase"}},
		{"ghcr.io/flowforge/w@sha256:0123", ImageView{Error: "invalid reference format"}},
		{"", ImageView{Error: "invalid reference format"}},
	}
	for _, tc := range tests {
		t.Run(tc.raw, func(t *testing.T) {
			assert.Equal(t, tc.want, ParseImage(tc.raw))
		})
	}
}

// TestFixtureImagesMatchTheParser keeps the parsed views the Rego tests use
// (lib/images_test.rego) equal to what the webhook sends.
func TestFixtureImagesMatchTheParser(t *testing.T) {
	src, err := fs.ReadFile(policies.Embedded(), "lib/images_test.rego")
	require.NoError(t, err)
	rs, err := rego.New(rego.Query("data.flowforge.lib.fixtures.images"), rego.Module("images_test.rego", string(src))).Eval(context.Background())
	require.NoError(t, err)
	require.Len(t, rs, 1)
	views, ok := rs[0].Expressions[0].Value.(map[string]any)
	require.True(t, ok)
	require.GreaterOrEqual(t, len(views), 20)
	for raw, got := range views {
		want, err := json.Marshal(ParseImage(raw))
		require.NoError(t, err)
		gotJSON, err := json.Marshal(got)
		require.NoError(t, err)
		assert.JSONEq(t, string(want), string(gotJSON), "fixture view of %q", raw)
	}
}

func TestImageViewsCoverEveryPodSpecAndContainerKind(t *testing.T) {
	parse := func(s string) ast.Value {
		v, err := rawValue([]byte(s))
		require.NoError(t, err)
		return v
	}
	job := parse(`{"spec":{"template":{"spec":{"initContainers":[{"image":"ghcr.io/flowforge/git:1"}],"containers":[{"image":"ghcr.io/flowforge/w:1"},{"image":7},{"name":"no-image"}]}}}}`)
	old := parse(`{"spec":{"containers":[{"image":"busybox"}],"ephemeralContainers":[{"image":"ghcr.io/../x"}]}}`)
	cron := parse(`{"spec":{"jobTemplate":{"spec":{"template":{"spec":{"containers":[{"image":"alpine:3"}]}}}}}}`)
	got, err := ast.JSON(imageViews(job, old, cron, ast.Null{}).Value)
	require.NoError(t, err)
	want := map[string]any{}
	for _, raw := range []string{"ghcr.io/flowforge/git:1", "ghcr.io/flowforge/w:1", "busybox", "ghcr.io/../x", "alpine:3"} {
		b, err := json.Marshal(ParseImage(raw))
		require.NoError(t, err)
		var v any
		require.NoError(t, json.Unmarshal(b, &v))
		want[raw] = v
	}
	assert.Equal(t, want, got, "every string image, parsed; a non-string image is left out (and denied)")
}

// TestPolicySeesParsedImages: the embedded policy denies a look-alike
// registry through the parsed view, and passes an allowed one.
func TestPolicySeesParsedImages(t *testing.T) {
	e, err := New(context.Background(), Options{Tested: testedPolicies})
	require.NoError(t, err)
	job := func(image string) string {
		return `{"apiVersion":"batch/v1","kind":"Job","metadata":{"name":"j","labels":{"app":"flowforge","job-id":"a","user-id":"alice"}},"spec":{"template":{"spec":{"containers":[{"name":"w","image":"` + image + `"}]}}}}`
	}
	imageDenials := func(image string) []Violation {
		v, err := e.Validate(context.Background(), Input{Request: jobRequest(admissionv1.Create, job(image), "")})
		require.NoError(t, err)
		var out []Violation
		for _, d := range v.Deny {
			if d.Field == "spec.template.spec.containers[0].image" {
				out = append(out, d)
			}
		}
		return out
	}
	evil := imageDenials("ghcr.io/flowforge-evil/w:1")
	require.Len(t, evil, 1)
	assert.Contains(t, evil[0].Msg, "is not from an allowed repository")
	dotdot := imageDenials("ghcr.io/flowforge/../x:1")
	require.Len(t, dotdot, 1)
	assert.Contains(t, dotdot[0].Msg, "is not a valid image reference: invalid reference format")
	assert.Empty(t, imageDenials("ghcr.io/flowforge/w:1"))
	assert.Empty(t, imageDenials("ghcr.io/flowforge/w@"+testDigest))
}

// TestImageTermsMemo: the memo gives the parse's own view, bounded.
func TestImageTermsMemo(t *testing.T) {
	m := &imageTerms{}
	for _, raw := range []string{"alpine", "ghcr.io/flowforge/claude-worker:1.4.0", "UPPER/case", ""} {
		want := ParseImage(raw).term()
		require.Zero(t, want.Value.Compare(m.term(raw).Value), raw)
		require.Same(t, m.term(raw), m.term(raw), "memoised: %s", raw)
		require.Zero(t, want.Value.Compare((*imageTerms)(nil).term(raw).Value), "nil memo: %s", raw)
	}
	for i := range maxImageTerms + 10 {
		m.term(fmt.Sprintf("registry.example/image-%d:1", i))
		require.LessOrEqual(t, len(m.terms), maxImageTerms)
	}
}
