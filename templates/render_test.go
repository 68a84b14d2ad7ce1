package templates

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	yaml3 "gopkg.in/yaml.v3"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/yaml"

	"github.com/flowforge/flowforge/contract"
	"github.com/flowforge/flowforge/policies"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

func newRenderer(t *testing.T, opts RendererOptions) *Renderer {
	t.Helper()
	r, err := NewRenderer(opts)
	require.NoError(t, err)
	return r
}

func minimalRequest() Request {
	return Request{
		ID:            "abc123",
		UserID:        "u-42",
		Repository:    "acme/widgets",
		RepositoryURL: "https://github.com/acme/widgets.git",
		Branch:        "main",
		Task:          "Fix the failing test in widgets_test.go.",
	}
}

// renderYAML renders a request as the multi-document YAML a golden file holds.
func renderYAML(t *testing.T, r *Renderer, req Request) []byte {
	t.Helper()
	out, err := r.Render(req)
	require.NoError(t, err)
	var buf bytes.Buffer
	job, err := yaml.Marshal(out.Job)
	require.NoError(t, err)
	buf.Write(job)
	if out.TaskConfigMap != nil {
		cm, err := yaml.Marshal(out.TaskConfigMap)
		require.NoError(t, err)
		buf.WriteString("---\n")
		buf.Write(cm)
	}
	return buf.Bytes()
}

func TestRenderGolden(t *testing.T) {
	r := newRenderer(t, RendererOptions{})
	full := minimalRequest()
	full.ID = "full-1"
	full.Branch = "feature/login-$fix"
	full.RepositoryURL = "git@github.com:acme/widgets.git"
	full.Task = "Rename $(JOB_ID) to $$id; then run `make test` && echo done"
	full.Timeout = 90 * time.Minute
	full.Profile = "large"
	full.NodeSelector = map[string]string{"topology.kubernetes.io/zone": "eu-west-1a"}
	full.Env = map[string]string{"LOG_LEVEL": "debug", "CLAUDE_CODE_OUTPUT_FORMAT": "text"}
	full.PodAnnotations = map[string]string{"sim.flowforge.io/duration": "2s"}

	large := minimalRequest()
	large.ID = "large-1"
	large.Task = strings.Repeat("Refactor the payment module step by step.\n", 1000) // 42 KB

	review := minimalRequest()
	review.ID = "review-1"
	review.Template = "claude-code-review"

	for name, req := range map[string]Request{
		"minimal":    minimalRequest(),
		"full":       full,
		"large-task": large,
		"review":     review,
	} {
		t.Run(name, func(t *testing.T) {
			got := renderYAML(t, r, req)
			path := filepath.Join("testdata", name+".golden.yaml")
			if *update {
				require.NoError(t, os.WriteFile(path, got, 0o644))
			}
			want, err := os.ReadFile(path)
			require.NoError(t, err, "run `go test ./templates/ -update` to create the golden files")
			assert.Equal(t, string(want), string(got), "rendering changed; if intended, run `go test ./templates/ -update`")
		})
	}
}

func TestRenderContract(t *testing.T) {
	r := newRenderer(t, RendererOptions{})
	out, err := r.Render(minimalRequest())
	require.NoError(t, err)
	job := out.Job
	wantLabels := map[string]string{"app": "flowforge", "component": "worker", "job-id": "abc123", "user-id": "u-42"}
	assert.Equal(t, "claude-job-abc123", job.Name)
	assert.Empty(t, job.Namespace, "the client chooses the namespace")
	assert.Equal(t, wantLabels, job.Labels)
	assert.Equal(t, wantLabels, job.Spec.Template.Labels)
	assert.Equal(t, "3600", job.Annotations[contract.AnnotationTimeout], "the template's default timeout, in seconds")
	assert.Equal(t, "medium", job.Annotations[contract.AnnotationProfile])
	assert.Equal(t, "claude-code", job.Annotations[contract.AnnotationTemplate])
	assert.Equal(t, out.Hash, job.Annotations[contract.AnnotationRequestHash])
	assert.Len(t, out.Hash, 64)
	assert.Nil(t, out.TaskConfigMap)

	pod := job.Spec.Template.Spec
	assert.Equal(t, corev1.RestartPolicyNever, pod.RestartPolicy)
	assert.Nil(t, pod.RuntimeClassName, "hardening is the webhook's job")
	assert.Nil(t, pod.SecurityContext)
	assert.Nil(t, job.Spec.ActiveDeadlineSeconds)
	require.Len(t, pod.Containers, 1)
	c := pod.Containers[0]
	assert.Empty(t, c.Resources.Limits)
	env := map[string]corev1.EnvVar{}
	for _, e := range c.Env {
		env[e.Name] = e
	}
	assert.Equal(t, "abc123", env["JOB_ID"].Value)
	assert.Equal(t, "https://github.com/acme/widgets.git", env["REPOSITORY_URL"].Value)
	assert.Equal(t, "main", env["BRANCH"].Value)
	assert.Equal(t, "Fix the failing test in widgets_test.go.", env["TASK"].Value)
	assert.Equal(t, "claude-secret", env["ANTHROPIC_API_KEY"].ValueFrom.SecretKeyRef.Name)
	assert.Equal(t, "api-key", env["ANTHROPIC_API_KEY"].ValueFrom.SecretKeyRef.Key)
	assert.Equal(t, "git-credentials-abc123", env["GIT_CREDENTIALS"].ValueFrom.SecretKeyRef.Name)
	assert.Equal(t, "credentials", env["GIT_CREDENTIALS"].ValueFrom.SecretKeyRef.Key)
	for _, arg := range append(c.Command, c.Args...) {
		assert.NotContains(t, arg, "Fix the failing test", "the task is never on the command line")
	}
}

func TestTaskSizeDecidesEnvOrConfigMap(t *testing.T) {
	r := newRenderer(t, RendererOptions{MaxInlineTaskSize: 100, MaxTaskSize: 1000})
	for _, tc := range []struct {
		name      string
		size      int
		configMap bool
		invalid   bool
	}{
		{name: "at the inline limit", size: 100},
		{name: "one byte over", size: 101, configMap: true},
		{name: "at the maximum", size: 1000, configMap: true},
		{name: "over the maximum", size: 1001, invalid: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req := minimalRequest()
			req.Task = strings.Repeat("x", tc.size)
			out, err := r.Render(req)
			if tc.invalid {
				requireFields(t, err, "task")
				return
			}
			require.NoError(t, err)
			c := out.Job.Spec.Template.Spec.Containers[0]
			names := map[string]string{}
			for _, e := range c.Env {
				names[e.Name] = e.Value
			}
			if !tc.configMap {
				assert.Nil(t, out.TaskConfigMap)
				assert.Equal(t, req.Task, names[contract.EnvTask])
				assert.NotContains(t, names, contract.EnvTaskFile)
				assert.Empty(t, out.Job.Spec.Template.Spec.Volumes)
				return
			}
			require.NotNil(t, out.TaskConfigMap)
			cm := out.TaskConfigMap
			assert.Equal(t, "claude-job-abc123-task", cm.Name)
			assert.Equal(t, req.Task, cm.Data["task.md"], "the file holds the task verbatim")
			assert.True(t, *cm.Immutable)
			assert.Equal(t, "abc123", cm.Labels["job-id"])
			assert.Equal(t, "u-42", cm.Labels["user-id"])
			assert.Equal(t, "flowforge", cm.Labels["app"])
			assert.Equal(t, out.Hash, cm.Annotations[contract.AnnotationRequestHash])
			assert.NotContains(t, names, contract.EnvTask)
			assert.Equal(t, "/var/run/flowforge/task/task.md", names[contract.EnvTaskFile])
			require.Len(t, c.VolumeMounts, 1)
			assert.True(t, c.VolumeMounts[0].ReadOnly)
			assert.Equal(t, contract.TaskMountPath, c.VolumeMounts[0].MountPath)
			vols := out.Job.Spec.Template.Spec.Volumes
			require.Len(t, vols, 1)
			assert.Equal(t, cm.Name, vols[0].ConfigMap.Name)
		})
	}
}

// expand is the kubelet's expansion of $(NAME) references in env values
// (k8s.io/kubernetes third_party/forked/golang/expansion), enough to check
// that a rendered value reaches the worker unchanged.
func expand(in string, vars map[string]string) string {
	var out strings.Builder
	for i := 0; i < len(in); i++ {
		if in[i] != '$' || i+1 >= len(in) {
			out.WriteByte(in[i])
			continue
		}
		switch next := in[i+1]; {
		case next == '$':
			out.WriteByte('$')
			i++
		case next == '(':
			if end := strings.IndexByte(in[i+2:], ')'); end >= 0 {
				name := in[i+2 : i+2+end]
				if v, ok := vars[name]; ok {
					out.WriteString(v)
				} else {
					out.WriteString("$(" + name + ")")
				}
				i += 2 + end
			} else {
				out.WriteString(in[i:])
				i = len(in)
			}
		default:
			out.WriteByte('$')
			out.WriteByte(next)
			i++
		}
	}
	return out.String()
}

func TestEnvValuesReachTheWorkerVerbatim(t *testing.T) {
	r := newRenderer(t, RendererOptions{})
	for _, text := range []string{
		"plain text",
		"print $(JOB_ID) and $(ANTHROPIC_API_KEY)",
		"costs $$ and $ and $$$",
		"ends with $",
		"$(",
	} {
		t.Run(text, func(t *testing.T) {
			req := minimalRequest()
			req.Task = text
			req.Env = map[string]string{"EXTRA": text}
			out, err := r.Render(req)
			require.NoError(t, err)
			vars := map[string]string{"JOB_ID": "abc123", "ANTHROPIC_API_KEY": "sk-secret"}
			for _, e := range out.Job.Spec.Template.Spec.Containers[0].Env {
				if e.Name == contract.EnvTask || e.Name == "EXTRA" {
					assert.Equal(t, text, expand(e.Value, vars), e.Name)
				}
			}
		})
	}
}

func TestEnvOrderAndOverride(t *testing.T) {
	r := newRenderer(t, RendererOptions{})
	req := minimalRequest()
	req.Env = map[string]string{"ZED": "z", "ALPHA": "a", "CLAUDE_CODE_OUTPUT_FORMAT": "text"}
	out, err := r.Render(req)
	require.NoError(t, err)
	var names []string
	values := map[string]string{}
	for _, e := range out.Job.Spec.Template.Spec.Containers[0].Env {
		names = append(names, e.Name)
		values[e.Name] = e.Value
	}
	assert.Equal(t, []string{"JOB_ID", "REPOSITORY_URL", "BRANCH", "TASK", "ANTHROPIC_API_KEY", "GIT_CREDENTIALS",
		"CLAUDE_CODE_OUTPUT_FORMAT", "ALPHA", "ZED"}, names)
	assert.Equal(t, "text", values["CLAUDE_CODE_OUTPUT_FORMAT"], "a request overrides a template's env")
}

func TestHashRequest(t *testing.T) {
	r := newRenderer(t, RendererOptions{})
	base, err := r.Render(minimalRequest())
	require.NoError(t, err)

	explicit := minimalRequest()
	explicit.Template, explicit.Profile, explicit.Timeout = "claude-code", "medium", time.Hour
	explicit.Env = map[string]string{}
	same, err := r.Render(explicit)
	require.NoError(t, err)
	assert.Equal(t, base.Hash, same.Hash, "spelling out the defaults is the same request")

	a, b := minimalRequest(), minimalRequest()
	a.Env = map[string]string{"A": "1", "B": "2", "C": "3"}
	b.Env = map[string]string{"C": "3", "B": "2", "A": "1"}
	ra, err := r.Render(a)
	require.NoError(t, err)
	rb, err := r.Render(b)
	require.NoError(t, err)
	assert.Equal(t, ra.Hash, rb.Hash, "map order does not matter")

	for name, change := range map[string]func(*Request){
		"task":     func(r *Request) { r.Task += " Also update the docs." },
		"branch":   func(r *Request) { r.Branch = "develop" },
		"timeout":  func(r *Request) { r.Timeout = 2 * time.Hour },
		"profile":  func(r *Request) { r.Profile = "small" },
		"template": func(r *Request) { r.Template = "claude-code-review" },
		"env":      func(r *Request) { r.Env = map[string]string{"A": "1"} },
		"user":     func(r *Request) { r.UserID = "u-43" },
	} {
		t.Run(name, func(t *testing.T) {
			req := minimalRequest()
			change(&req)
			other, err := r.Render(req)
			require.NoError(t, err)
			assert.NotEqual(t, base.Hash, other.Hash)
		})
	}
}

func TestNormalizeDefaults(t *testing.T) {
	r := newRenderer(t, RendererOptions{})
	n, err := r.Normalize(minimalRequest())
	require.NoError(t, err)
	assert.Equal(t, "claude-code", n.Template)
	assert.Equal(t, "medium", n.Profile)
	assert.Equal(t, time.Hour, n.Timeout)

	req := minimalRequest()
	req.Template = "claude-code-review"
	n, err = r.Normalize(req)
	require.NoError(t, err)
	assert.Equal(t, "small", n.Profile, "the template's default profile")
	assert.Equal(t, 30*time.Minute, n.Timeout, "the template's default timeout")

	_, err = r.Normalize(Request{})
	require.ErrorIs(t, err, ErrInvalidRequest)
}

func TestParseRequest(t *testing.T) {
	t.Run("yaml", func(t *testing.T) {
		req, err := ParseRequest([]byte(`
id: abc123
userID: u-42
repository: acme/widgets
repositoryURL: https://github.com/acme/widgets.git
branch: main
task: |
  Fix the failing test.
timeout: 45m
profile: small
nodeSelector: {zone: a}
env: {LOG_LEVEL: debug}
template: claude-code-review
podAnnotations: {sim.flowforge.io/duration: 1s}
`))
		require.NoError(t, err)
		assert.Equal(t, Request{
			ID: "abc123", UserID: "u-42", Repository: "acme/widgets",
			RepositoryURL: "https://github.com/acme/widgets.git", Branch: "main",
			Task: "Fix the failing test.\n", Timeout: 45 * time.Minute, Profile: "small",
			NodeSelector: map[string]string{"zone": "a"}, Env: map[string]string{"LOG_LEVEL": "debug"},
			Template: "claude-code-review", PodAnnotations: map[string]string{"sim.flowforge.io/duration": "1s"},
		}, req)
	})
	t.Run("json", func(t *testing.T) {
		req, err := ParseRequest([]byte(`{"id": "abc", "task": "x", "timeout": "1h30m"}`))
		require.NoError(t, err)
		assert.Equal(t, "abc", req.ID)
		assert.Equal(t, 90*time.Minute, req.Timeout)
	})
	t.Run("unknown field", func(t *testing.T) {
		_, err := ParseRequest([]byte("id: abc\nbrnch: main\n"))
		require.Error(t, err)
		assert.Contains(t, err.Error(), "brnch")
	})
	t.Run("empty", func(t *testing.T) {
		_, err := ParseRequest(nil)
		require.ErrorContains(t, err, "empty")
	})
	t.Run("JSON round trip", func(t *testing.T) {
		req := minimalRequest()
		req.Timeout = 90 * time.Minute
		req.Env = map[string]string{"A": "1"}
		data, err := json.Marshal(req)
		require.NoError(t, err)
		assert.Contains(t, string(data), `"timeout":"1h30m0s"`)
		var back Request
		require.NoError(t, json.Unmarshal(data, &back))
		assert.Equal(t, req, back)
		parsed, err := ParseRequest(data)
		require.NoError(t, err)
		assert.Equal(t, req, parsed, "ParseRequest reads what MarshalJSON writes")

		data, err = json.Marshal(minimalRequest())
		require.NoError(t, err)
		assert.NotContains(t, string(data), "timeout")
		require.ErrorContains(t, json.Unmarshal([]byte(`{"timeout": "soon"}`), &back), "timeout")
		require.Error(t, json.Unmarshal([]byte(`{"id": 3}`), &back))
	})
	t.Run("YAML round trip", func(t *testing.T) {
		req := minimalRequest()
		req.Timeout = 45 * time.Minute
		data, err := yaml3.Marshal(req)
		require.NoError(t, err)
		parsed, err := ParseRequest(data)
		require.NoError(t, err)
		assert.Equal(t, req, parsed)
	})
	t.Run("timeout as a bare number", func(t *testing.T) {
		_, err := ParseRequest([]byte("timeout: 1800\n"))
		require.Error(t, err, "a bare number is ambiguous: seconds or nanoseconds?")
	})
}

func TestRendererDefaultsComeFromThePolicy(t *testing.T) {
	cfg, err := policies.EmbeddedConfig()
	require.NoError(t, err)
	r := newRenderer(t, RendererOptions{})
	assert.Equal(t, cfg.Resources.ProfileNames(), r.profiles)
	assert.Equal(t, cfg.Resources.DefaultProfile, r.defaultProfile)
	assert.Equal(t, time.Duration(*cfg.Job.ActiveDeadlineSeconds.Max)*time.Second, r.maxTimeout)
	assert.Equal(t, time.Duration(*cfg.Job.ActiveDeadlineSeconds.Default)*time.Second, r.defaultTimeout)
	require.Len(t, r.allowedRegistries, len(cfg.Images.AllowedRepositories))
	for i, repo := range cfg.Images.AllowedRepositories {
		assert.Equal(t, repo.Prefix(), r.allowedRegistries[i])
	}

	// Another policy's settings apply when given.
	other := *cfg
	other.Resources.DefaultProfile = "gpu"
	other.Resources.Profiles = map[string]json.RawMessage{"gpu": nil, "medium": nil, "small": nil}
	max, def := int64(7200), int64(1800)
	other.Job.ActiveDeadlineSeconds = policies.Bound{Default: &def, Max: &max}
	other.Images.AllowedRepositories = []policies.Repository{{Registry: "ghcr.io", Path: "flowforge"}, {Registry: "registry.internal:5000", Path: ""}}
	r = newRenderer(t, RendererOptions{Policy: &other})
	assert.Equal(t, []string{"gpu", "medium", "small"}, r.profiles)
	assert.Equal(t, "gpu", r.defaultProfile)
	assert.Equal(t, 2*time.Hour, r.maxTimeout)
	assert.Equal(t, 30*time.Minute, r.defaultTimeout)
	assert.Equal(t, []string{"ghcr.io/flowforge/", "registry.internal:5000/"}, r.allowedRegistries)
}
