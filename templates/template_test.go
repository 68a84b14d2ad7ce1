package templates

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/flowforge/flowforge/contract"
)

const goodTemplate = `name: %s
container:
  image: ghcr.io/flowforge/claude-worker:2.0.0
  command: [/usr/local/bin/flowforge-worker]
  args: [plan]
defaultTimeout: 20m
`

func writeTemplate(t *testing.T, dir, name, body string) {
	t.Helper()
	require.NoError(t, os.WriteFile(filepath.Join(dir, name+".yaml"), []byte(body), 0o644))
}

func TestEmbeddedTemplates(t *testing.T) {
	r := newRenderer(t, RendererOptions{})
	assert.Equal(t, []string{"claude-code", "claude-code-review"}, r.Templates())
	tmpl, err := r.Template("")
	require.NoError(t, err)
	assert.Equal(t, "claude-code", tmpl.Name, "empty names the default")
	assert.Equal(t, "worker", tmpl.Container.Name)
	assert.True(t, strings.HasPrefix(tmpl.Container.Image, "ghcr.io/flowforge/claude-worker:"))

	tmpl.Container.Args[0] = "changed"
	again, err := r.Template("claude-code")
	require.NoError(t, err)
	assert.Equal(t, "run", again.Container.Args[0], "Template returns a copy")

	_, err = r.Template("nope")
	require.ErrorContains(t, err, `unknown template "nope" (known: claude-code, claude-code-review)`)
}

func TestTemplateDirectory(t *testing.T) {
	dir := t.TempDir()
	writeTemplate(t, dir, "planner", strings.ReplaceAll(goodTemplate, "%s", "planner"))
	writeTemplate(t, dir, "claude-code", strings.ReplaceAll(goodTemplate, "%s", "claude-code"))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "README.md"), []byte("not a template"), 0o644))

	r := newRenderer(t, RendererOptions{Dir: dir, DefaultTemplate: "planner"})
	assert.Equal(t, []string{"claude-code", "claude-code-review", "planner"}, r.Templates())

	out, err := r.Render(minimalRequest())
	require.NoError(t, err)
	assert.Equal(t, "planner", out.Request.Template, "the configured default template")
	assert.Equal(t, 20*time.Minute, out.Request.Timeout)
	assert.Equal(t, "medium", out.Request.Profile, "the renderer's default profile")
	assert.Equal(t, []string{"plan"}, out.Job.Spec.Template.Spec.Containers[0].Args)

	req := minimalRequest()
	req.Template = "claude-code"
	out, err = r.Render(req)
	require.NoError(t, err)
	assert.Equal(t, "ghcr.io/flowforge/claude-worker:2.0.0", out.Job.Spec.Template.Spec.Containers[0].Image,
		"a directory template replaces the embedded one of the same name")
}

func TestBadTemplatesAreRefused(t *testing.T) {
	base := strings.ReplaceAll(goodTemplate, "%s", "bad")
	for _, tc := range []struct {
		name string
		body string
		want string
	}{
		{"empty", "", "empty"},
		{"unknown field", base + "resources: {cpu: 1}\n", "field resources not found"},
		{"name not the file name", strings.Replace(base, "name: bad", "name: other", 1), `must equal the file name "bad"`},
		{"no image", strings.Replace(base, "  image: ghcr.io/flowforge/claude-worker:2.0.0\n", "", 1), "container.image: is required"},
		{"latest", strings.Replace(base, ":2.0.0", ":latest", 1), "not pinned"},
		{"untagged", strings.Replace(base, ":2.0.0", "", 1), "not pinned"},
		{"bad digest", strings.Replace(base, ":2.0.0", "@sha256:abc", 1), "malformed digest"},
		{"foreign registry", strings.Replace(base, "ghcr.io/flowforge/", "docker.io/library/", 1), "not from an allowed registry"},
		{"no command", strings.Replace(base, "  command: [/usr/local/bin/flowforge-worker]\n", "", 1), "command is required"},
		{"shell script", strings.Replace(base, "[/usr/local/bin/flowforge-worker]", "[/bin/sh, -c]", 1), "use exec form"},
		{"shell script in args", strings.Replace(strings.Replace(base, "[/usr/local/bin/flowforge-worker]", "[bash]", 1), "[plan]", `[-ec, "run $TASK"]`, 1), "use exec form"},
		{"task on the command line", strings.Replace(base, "[plan]", `[plan, "--task=$(TASK)"]`, 1), "$(TASK)"},
		{"reserved env", strings.Replace(base, "  args: [plan]\n", "  args: [plan]\n"+"  env: [{name: BRANCH, value: x}]\n", 1), "BRANCH is set by FlowForge"},
		{"bad env name", strings.Replace(base, "  args: [plan]\n", "  args: [plan]\n"+"  env: [{name: 1X, value: x}]\n", 1), "C identifier"},
		{"duplicate env", strings.Replace(base, "  args: [plan]\n", "  args: [plan]\n"+"  env: [{name: X, value: a}, {name: X, value: b}]\n", 1), "set twice"},
		{"unknown profile", base + "defaultProfile: xl\n", `defaultProfile "xl"`},
		{"timeout too long", strings.Replace(base, "20m", "5h", 1), "above the maximum"},
		{"reserved pod annotation", base + "podAnnotations: {flowforge.io/x: y}\n", "reserved"},
		{"bad container name", strings.Replace(base, "container:\n", "container:\n  name: Worker_1\n", 1), "container.name"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			writeTemplate(t, dir, "bad", tc.body)
			_, err := NewRenderer(RendererOptions{Dir: dir})
			require.Error(t, err)
			assert.Contains(t, err.Error(), tc.want)
			if tc.name != "empty" && tc.name != "unknown field" && tc.name != "name not the file name" {
				assert.Contains(t, err.Error(), `template "bad"`)
			}
		})
	}
}

func TestRendererOptionsAreChecked(t *testing.T) {
	for _, tc := range []struct {
		name string
		opts RendererOptions
		want string
	}{
		{"missing default template", RendererOptions{DefaultTemplate: "nope"}, `default template "nope" is not defined`},
		{"min above max", RendererOptions{MinTimeout: time.Hour, MaxTimeout: time.Minute}, "minimum timeout"},
		{"default timeout out of bounds", RendererOptions{DefaultTimeout: 10 * time.Hour}, "default timeout"},
		{"default profile unknown", RendererOptions{DefaultProfile: "xl"}, `default profile "xl"`},
		{"missing directory", RendererOptions{Dir: "/nonexistent/flowforge"}, "/nonexistent/flowforge"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := NewRenderer(tc.opts)
			require.Error(t, err)
			assert.Contains(t, err.Error(), tc.want)
		})
	}
}

func TestContractHelpers(t *testing.T) {
	assert.Equal(t, "claude-job-x", contract.JobName("x"))
	assert.Equal(t, "claude-job-x-task", contract.TaskConfigMapName("x"))
	assert.Equal(t, "git-credentials-x", contract.GitCredentialsSecretName("x"))
	for _, name := range contract.ReservedEnv() {
		assert.True(t, contract.IsReservedEnv(name), name)
	}
	assert.False(t, contract.IsReservedEnv("HOME"))
}
