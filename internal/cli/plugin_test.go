package cli

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/flowforge/flowforge/jobs"
)

func TestDisplayName(t *testing.T) {
	for _, tt := range []struct{ argv0, want string }{
		{"flowforge", "flowforge"},
		{"/usr/local/bin/flowforge", "flowforge"},
		{"kubectl-flowforge", "kubectl flowforge"},
		{"/home/me/bin/kubectl-flowforge", "kubectl flowforge"},
		{`C:\bin\kubectl-flowforge.exe`, "flowforge"}, // not a path on this OS
		{"kubectl-flowforge.exe", "kubectl flowforge"},
		{"kubectl-flowforge-old", "flowforge"},
		{"", "flowforge"},
	} {
		t.Run(tt.argv0, func(t *testing.T) {
			assert.Equal(t, tt.want, DisplayName(tt.argv0))
		})
	}
}

func TestExecuteAsThePlugin(t *testing.T) {
	t.Setenv("FLOWFORGE_HISTORY_URL", "")
	run := func(argv0 string, args ...string) result {
		var out, errb bytes.Buffer
		code := ExecuteAs(context.Background(), argv0, args, Streams{In: strings.NewReader(""), Out: &out, Err: &errb})
		return result{code: code, out: out.String(), err: errb.String()}
	}
	t.Run("usage says kubectl flowforge", func(t *testing.T) {
		res := run("/opt/bin/kubectl-flowforge", "status", "--help")
		require.Equal(t, ExitOK, res.code, res.err)
		assert.Contains(t, res.out, "Usage:\n  kubectl flowforge status <job-id> [flags]")
	})
	t.Run("errors say kubectl flowforge too", func(t *testing.T) {
		res := run("kubectl-flowforge", "frobnicate")
		assert.Equal(t, ExitError, res.code)
		assert.Equal(t, "Error: unknown command \"frobnicate\" for \"kubectl flowforge\"\n", res.err)
	})
	t.Run("the plain binary is flowforge", func(t *testing.T) {
		res := run("flowforge", "status", "--help")
		require.Equal(t, ExitOK, res.code, res.err)
		assert.Contains(t, res.out, "Usage:\n  flowforge status <job-id> [flags]")
	})
}

// twoClusters writes a kubeconfig with two contexts, a and b, on two
// servers, and returns its path.
func twoClusters(t *testing.T) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "kubeconfig")
	require.NoError(t, os.WriteFile(path, []byte(`apiVersion: v1
kind: Config
clusters:
- name: cluster-a
  cluster: {server: "https://a.example:6443"}
- name: cluster-b
  cluster: {server: "https://b.example:6443"}
contexts:
- name: a
  context: {cluster: cluster-a, user: user-a, namespace: ctx-ns}
- name: b
  context: {cluster: cluster-b, user: user-b}
current-context: a
users:
- name: user-a
  user: {token: token-a}
- name: user-b
  user: {token: token-b}
`), 0o600))
	return path
}

// configOf runs a command line whose Jobs client records the REST
// configuration the global flags produced, and the namespace.
func configOf(t *testing.T, env map[string]string, args ...string) (*rest.Config, string, result) {
	t.Helper()
	t.Setenv("FLOWFORGE_HISTORY_URL", "")
	for k, v := range env {
		t.Setenv(k, v)
	}
	var cfg *rest.Config
	var ns string
	stop := errors.New("stop here")
	d := defaultDeps()
	d.newClient = func(o *options) (*jobs.Client, error) {
		c, err := o.restConfig()
		if err != nil {
			return nil, err
		}
		cfg, ns = c, o.namespace
		return nil, stop
	}
	var out, errb bytes.Buffer
	streams := Streams{In: strings.NewReader(""), Out: &out, Err: &errb}
	code := run(context.Background(), newRootCommandWith(streams, d), args, streams)
	return cfg, ns, result{code: code, out: out.String(), err: errb.String()}
}

func TestKubectlGlobalFlags(t *testing.T) {
	kc := twoClusters(t)
	tests := []struct {
		name    string
		env     map[string]string
		args    []string
		host    string
		token   string
		ns      string
		as      string
		groups  []string
		timeout time.Duration
	}{
		{name: "--kubeconfig, its current context", args: []string{"--kubeconfig", kc, "status", "x"}, host: "https://a.example:6443", token: "token-a", ns: jobs.DefaultNamespace},
		{name: "$KUBECONFIG", env: map[string]string{"KUBECONFIG": kc}, args: []string{"status", "x"}, host: "https://a.example:6443", token: "token-a", ns: jobs.DefaultNamespace},
		{name: "--context", args: []string{"--kubeconfig", kc, "--context", "b", "status", "x"}, host: "https://b.example:6443", token: "token-b", ns: jobs.DefaultNamespace},
		{name: "--cluster", args: []string{"--kubeconfig", kc, "--cluster", "cluster-b", "status", "x"}, host: "https://b.example:6443", token: "token-a", ns: jobs.DefaultNamespace},
		{name: "-n", args: []string{"--kubeconfig", kc, "-n", "team-a", "status", "x"}, host: "https://a.example:6443", token: "token-a", ns: "team-a"},
		{name: "--namespace after the command", args: []string{"--kubeconfig", kc, "status", "x", "--namespace", "team-b"}, host: "https://a.example:6443", token: "token-a", ns: "team-b"},
		{name: "--as and --as-group", args: []string{"--kubeconfig", kc, "--as", "alice", "--as-group", "devs", "--as-group", "ops", "watch", "x"},
			host: "https://a.example:6443", token: "token-a", ns: jobs.DefaultNamespace, as: "alice", groups: []string{"devs", "ops"}},
		{name: "--server and --token", args: []string{"--kubeconfig", kc, "-s", "https://c.example", "--token", "t-c", "logs", "x"}, host: "https://c.example", token: "t-c", ns: jobs.DefaultNamespace},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, ns, res := configOf(t, tt.env, tt.args...)
			require.Equal(t, "Error: stop here\n", res.err)
			require.NotNil(t, cfg)
			assert.Equal(t, tt.host, cfg.Host)
			assert.Equal(t, tt.token, cfg.BearerToken)
			assert.Equal(t, tt.ns, ns)
			assert.Equal(t, tt.as, cfg.Impersonate.UserName)
			assert.Equal(t, tt.groups, cfg.Impersonate.Groups)
			assert.NotNil(t, cfg.WarningHandler, "warnings are printed kubectl style")
			assert.Nil(t, cfg.WarningHandlerWithContext, "it would take precedence")
		})
	}
	t.Run("an unknown context", func(t *testing.T) {
		_, _, res := configOf(t, nil, "--kubeconfig", kc, "--context", "nope", "status", "x")
		assert.Equal(t, ExitError, res.code)
		assert.Equal(t, "Error: kubeconfig: context \"nope\" does not exist\n", res.err)
	})
	t.Run("a kubeconfig that does not exist", func(t *testing.T) {
		missing := filepath.Join(t.TempDir(), "missing")
		_, _, res := configOf(t, nil, "--kubeconfig", missing, "status", "x")
		assert.Equal(t, "Error: kubeconfig "+missing+": "+missing+" does not exist\n", res.err)
	})
	t.Run("no configuration at all lists what was tried", func(t *testing.T) {
		_, _, res := configOf(t, map[string]string{"KUBECONFIG": "", "HOME": t.TempDir(), "KUBERNETES_SERVICE_HOST": ""}, "status", "x")
		assert.Equal(t, ExitError, res.code)
		assert.Contains(t, res.err, "Error: no Kubernetes configuration found; tried:\n  - in-cluster configuration: KUBERNETES_SERVICE_HOST is not set")
	})
	t.Run("--user is the job's user, not kubectl's", func(t *testing.T) {
		// The commands that take --user mean the job's user; kubectl's
		// --user (a kubeconfig user) is left out to keep one meaning.
		res := execute(t, "version", "--client", "--user", "x")
		assert.Equal(t, "Error: unknown flag: --user\n", res.err)
	})
	t.Run("--request-timeout is a duration", func(t *testing.T) {
		res := execute(t, "version", "--client", "--request-timeout", "soon")
		assert.Equal(t, ExitError, res.code)
		assert.Contains(t, res.err, `invalid argument "soon" for "--request-timeout"`)
	})
}

// warningServer is an API server whose every answer carries warnings:
// the same one twice and another.
func warningServer(t *testing.T) string {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Add("Warning", `299 - "image \"x:1\" is pinned by tag"`)
		w.Header().Add("Warning", `299 - "image \"x:1\" is pinned by tag"`)
		w.Header().Add("Warning", `299 - "the Job has no repository annotation"`)
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprint(w, `{"apiVersion":"batch/v1","kind":"JobList","metadata":{"resourceVersion":"1"},"items":[]}`)
	}))
	t.Cleanup(srv.Close)
	path := filepath.Join(t.TempDir(), "kubeconfig")
	require.NoError(t, os.WriteFile(path, fmt.Appendf(nil, `apiVersion: v1
kind: Config
clusters: [{name: c, cluster: {server: %q}}]
contexts: [{name: c, context: {cluster: c, user: u}}]
current-context: c
users: [{name: u, user: {token: t}}]
`, srv.URL), 0o600))
	return path
}

func TestWarnings(t *testing.T) {
	t.Setenv("FLOWFORGE_HISTORY_URL", "")
	kc := warningServer(t)
	for _, tt := range []struct {
		name     string
		terminal bool
		want     string
	}{
		{"plain when stderr is not a terminal", false,
			"Warning: image \"x:1\" is pinned by tag\nWarning: the Job has no repository annotation\n"},
		{"coloured on a terminal", true,
			"\x1b[33;1mWarning:\x1b[0m image \"x:1\" is pinned by tag\n\x1b[33;1mWarning:\x1b[0m the Job has no repository annotation\n"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var out, errb bytes.Buffer
			streams := Streams{In: strings.NewReader(""), Out: &out, Err: &errb, ErrIsTerminal: tt.terminal}
			// list twice through the same command tree would be two
			// processes; one list call already repeats a warning.
			code := Execute(context.Background(), []string{"--kubeconfig", kc, "list", "-o", "json"}, streams)
			require.Equal(t, ExitOK, code, errb.String())
			assert.Equal(t, tt.want, errb.String(), "each warning once, kubectl style, no klog line")
			assert.Equal(t, "[]\n", out.String())
		})
	}
	t.Run("deduplicated across requests", func(t *testing.T) {
		var errb bytes.Buffer
		o := &options{warnings: rest.NewWarningWriter(&errb, rest.WarningWriterOptions{Deduplicate: true})}
		o.config = newConfigFlags()
		o.config.KubeConfig = &kc
		o.namespace = jobs.DefaultNamespace
		cfg, err := o.restConfig()
		require.NoError(t, err)
		cs, err := kubernetes.NewForConfig(cfg)
		require.NoError(t, err)
		for range 3 {
			_, err := cs.BatchV1().Jobs("x").List(context.Background(), metav1ListOptions())
			require.NoError(t, err)
		}
		assert.Equal(t, 2, strings.Count(errb.String(), "Warning: "), errb.String())
	})
}

func metav1ListOptions() metav1.ListOptions { return metav1.ListOptions{} }
