package jobs

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"k8s.io/client-go/rest"
)

func writeKubeconfig(t *testing.T, dir, name, server string) string {
	t.Helper()
	path := filepath.Join(dir, name)
	require.NoError(t, os.WriteFile(path, []byte(`apiVersion: v1
kind: Config
clusters:
- name: c
  cluster: {server: `+server+`, insecure-skip-tls-verify: true}
users:
- name: u
  user: {token: not-a-real-token}
contexts:
- name: ctx
  context: {cluster: c, user: u}
current-context: ctx
`), 0o600))
	return path
}

func TestLoadConfig(t *testing.T) {
	dir := t.TempDir()
	flagFile := writeKubeconfig(t, dir, "flag", "https://flag.example:6443")
	envFile := writeKubeconfig(t, dir, "env", "https://env.example:6443")
	home := filepath.Join(dir, "home")
	writeKubeconfig(t, mkdir(t, filepath.Join(home, ".kube")), "config", "https://home.example:6443")
	emptyHome := t.TempDir()
	inCluster := func() (*rest.Config, error) { return &rest.Config{Host: "https://10.0.0.1:443"}, nil }
	brokenInCluster := func() (*rest.Config, error) { return nil, errors.New("open /var/run/secrets/token: no such file") }

	for _, tc := range []struct {
		name      string
		flag      string
		env       map[string]string
		home      string
		inCluster func() (*rest.Config, error)
		want      string
		wantErr   []string
	}{
		{name: "an explicit kubeconfig wins, even in a pod", flag: flagFile,
			env: map[string]string{"KUBERNETES_SERVICE_HOST": "10.0.0.1", "KUBECONFIG": envFile}, home: home, inCluster: inCluster, want: "https://flag.example:6443"},
		{name: "in-cluster before $KUBECONFIG", env: map[string]string{"KUBERNETES_SERVICE_HOST": "10.0.0.1", "KUBECONFIG": envFile},
			home: home, inCluster: inCluster, want: "https://10.0.0.1:443"},
		{name: "$KUBECONFIG when not in a cluster", env: map[string]string{"KUBECONFIG": envFile}, home: home, inCluster: inCluster, want: "https://env.example:6443"},
		{name: "a broken in-cluster config falls through", env: map[string]string{"KUBERNETES_SERVICE_HOST": "10.0.0.1", "KUBECONFIG": envFile},
			home: home, inCluster: brokenInCluster, want: "https://env.example:6443"},
		{name: "$KUBECONFIG lists several files", env: map[string]string{"KUBECONFIG": envFile + string(os.PathListSeparator) + flagFile}, home: emptyHome, inCluster: inCluster, want: "https://env.example:6443"},
		{name: "~/.kube/config last", home: home, inCluster: inCluster, want: "https://home.example:6443"},
		{name: "a missing explicit file is an error", flag: filepath.Join(dir, "missing"), home: home, inCluster: inCluster,
			wantErr: []string{"kubeconfig " + filepath.Join(dir, "missing"), "does not exist"}},
		{name: "nothing found names everything tried",
			env: map[string]string{"KUBERNETES_SERVICE_HOST": "10.0.0.1", "KUBECONFIG": filepath.Join(dir, "nope")}, home: emptyHome, inCluster: brokenInCluster,
			wantErr: []string{"no Kubernetes configuration found", "in-cluster configuration: open /var/run/secrets/token", "$KUBECONFIG (" + filepath.Join(dir, "nope") + ")", filepath.Join(emptyHome, ".kube", "config") + " does not exist"}},
		{name: "nothing set at all", inCluster: inCluster,
			wantErr: []string{"KUBERNETES_SERVICE_HOST is not set", "$KUBECONFIG: not set", "~/.kube/config: no home directory"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l := configLoader{
				getenv:    func(k string) string { return tc.env[k] },
				home:      func() (string, error) { return tc.home, nil },
				inCluster: tc.inCluster,
			}
			cfg, err := l.load(tc.flag)
			if tc.wantErr != nil {
				require.Error(t, err)
				for _, s := range tc.wantErr {
					assert.Contains(t, err.Error(), s)
				}
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tc.want, cfg.Host)
		})
	}
}

func TestLoadConfigUsesTheProcessEnvironment(t *testing.T) {
	path := writeKubeconfig(t, t.TempDir(), "config", "https://process.example:6443")
	t.Setenv("KUBERNETES_SERVICE_HOST", "")
	t.Setenv("KUBECONFIG", path)
	cfg, err := LoadConfig("")
	require.NoError(t, err)
	assert.Equal(t, "https://process.example:6443", cfg.Host)
}

func TestNewForConfig(t *testing.T) {
	c, err := NewForConfig(&rest.Config{Host: "https://127.0.0.1:6443"}, nil, Options{QPS: 7, Burst: 9})
	require.NoError(t, err)
	assert.Equal(t, "https://127.0.0.1:6443", c.opts.Server)
	assert.Equal(t, DefaultNamespace, c.Namespace())
	assert.NotNil(t, c.Renderer())
	assert.Equal(t, float32(7), c.opts.QPS)

	_, err = NewForConfig(nil, nil, Options{})
	require.Error(t, err)
	_, err = New(nil, nil, Options{})
	require.Error(t, err)
}

func mkdir(t *testing.T, dir string) string {
	t.Helper()
	require.NoError(t, os.MkdirAll(dir, 0o755))
	return dir
}
