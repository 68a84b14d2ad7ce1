package images

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/flowforge/flowforge/certs"
	"github.com/flowforge/flowforge/internal/images"
	"github.com/flowforge/flowforge/test/localcluster"
)

var hostPlatform = v1.Platform{OS: "linux", Architecture: runtime.GOARCH}

var (
	buildOnce sync.Once
	built     images.Results
	buildErr  error
	// builtDir holds the images of build; TestMain removes it.
	builtDir string
)

func options(t *testing.T, out string) images.Options {
	t.Helper()
	root, err := localcluster.ModuleRoot()
	require.NoError(t, err)
	return images.Options{
		Root: root, OutDir: out, CABundle: "/etc/ssl/certs/ca-certificates.crt",
		Repository: "ghcr.io/flowforge",
		Programs: []images.Program{
			{Name: "flowforge-webhook", Package: "./cmd/flowforge-webhook"},
			{Name: "flowforge-controller", Package: "./cmd/flowforge-controller"},
		},
		Platforms: []v1.Platform{hostPlatform},
		Meta: images.Metadata{
			Source: "https://github.com/flowforge/flowforge", Revision: "integration-test", Version: "v0.0.0-test",
			Created: time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC),
		},
		Logf: t.Logf,
	}
}

// build builds the images of this machine's platform once per run.
func build(t *testing.T) images.Results {
	t.Helper()
	buildOnce.Do(func() {
		builtDir, buildErr = os.MkdirTemp("", "flowforge-images-test-")
		if buildErr != nil {
			return
		}
		built, buildErr = images.Build(context.Background(), options(t, builtDir))
	})
	require.NoError(t, buildErr)
	return built
}

func TestTheSameSourceGivesTheSameDigests(t *testing.T) {
	first := build(t)
	second, err := images.Build(t.Context(), options(t, t.TempDir()))
	require.NoError(t, err)
	require.Len(t, second.Images, 2)
	for i, r := range second.Images {
		require.Equal(t, first.Images[i].Digest, r.Digest, r.Name)
		require.Equal(t, first.Images[i].Platforms, r.Platforms, r.Name)
	}
}

// rootfs unpacks program's image into a new directory and returns it with
// the image's config.
func rootfs(t *testing.T, program string) (string, *v1.ConfigFile) {
	t.Helper()
	r, ok := build(t).Find(program)
	require.True(t, ok)
	img, err := images.PlatformImage(r.Layout, hostPlatform.String())
	require.NoError(t, err)
	cf, err := img.ConfigFile()
	require.NoError(t, err)
	require.Equal(t, fmt.Sprintf("%d:%d", images.UserID, images.UserID), cf.Config.User)
	require.Equal(t, "integration-test", cf.Config.Labels[images.LabelRevision])
	dir := t.TempDir()
	require.NoError(t, os.Chmod(dir, 0o755))
	require.NoError(t, images.Unpack(img, dir))
	// What the kubelet would mount: a kubeconfig standing in for the
	// service account, readable by the image's user.
	secrets := filepath.Join(dir, "tmp", "secrets")
	require.NoError(t, os.MkdirAll(secrets, 0o700))
	require.NoError(t, os.WriteFile(filepath.Join(secrets, "kubeconfig"), testCluster.Kubeconfig, 0o600))
	require.NoError(t, os.Chown(secrets, images.UserID, images.UserID))
	require.NoError(t, os.Chown(filepath.Join(secrets, "kubeconfig"), images.UserID, images.UserID))
	return dir, cf
}

// run starts the image's entrypoint with args inside root, as the image's
// user with its environment, and stops it when the test ends.
func run(t *testing.T, root string, cf *v1.ConfigFile, args ...string) *strings.Builder {
	t.Helper()
	entry := cf.Config.Entrypoint
	require.Len(t, entry, 1)
	cmd := exec.Command(entry[0], append(entry[1:], args...)...)
	cmd.Path = entry[0] // resolved inside the chroot, not on the host
	cmd.Dir = "/"
	cmd.Env = append(append([]string{}, cf.Config.Env...), "KUBECONFIG=/tmp/secrets/kubeconfig")
	cmd.SysProcAttr = &syscall.SysProcAttr{
		Chroot:     root,
		Credential: &syscall.Credential{Uid: images.UserID, Gid: images.UserID},
		Setpgid:    true,
	}
	out := &strings.Builder{}
	var mu sync.Mutex
	w := writerFunc(func(p []byte) (int, error) { mu.Lock(); defer mu.Unlock(); return out.Write(p) })
	cmd.Stdout, cmd.Stderr = w, w
	require.NoError(t, cmd.Start())
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
		if t.Failed() {
			mu.Lock()
			t.Logf("%s output:\n%s", entry[0], out.String())
			mu.Unlock()
		}
	})
	return out
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }

// waitOK polls url until it answers 200.
func waitOK(t *testing.T, url string) {
	t.Helper()
	client := &http.Client{Timeout: 2 * time.Second}
	last := "no answer"
	for deadline := time.Now().Add(2 * time.Minute); time.Now().Before(deadline); time.Sleep(250 * time.Millisecond) {
		resp, err := client.Get(url)
		if err != nil {
			last = err.Error()
			continue
		}
		_ = resp.Body.Close()
		if resp.StatusCode == http.StatusOK {
			return
		}
		last = resp.Status
	}
	t.Fatalf("%s never answered 200 (last: %s)", url, last)
}

func ensureNamespace(t *testing.T, name string) {
	t.Helper()
	cs, err := testCluster.Clientset()
	require.NoError(t, err)
	_, err = cs.CoreV1().Namespaces().Create(t.Context(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}, metav1.CreateOptions{})
	if !apierrors.IsAlreadyExists(err) {
		require.NoError(t, err)
	}
}

// writeTLS writes a serving pair for 127.0.0.1 into dir, readable by the
// image's user only.
func writeTLS(t *testing.T, dir string) {
	t.Helper()
	_, err := certs.WriteSelfSigned(dir, []string{"127.0.0.1"}, time.Now(), time.Hour)
	require.NoError(t, err)
	require.NoError(t, filepath.Walk(dir, func(p string, _ os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		return os.Chown(p, images.UserID, images.UserID)
	}))
}

func TestTheWebhookImageRunsFromItsOwnFilesystem(t *testing.T) {
	root, cf := rootfs(t, "flowforge-webhook")
	ensureNamespace(t, "flowforge-system")
	writeTLS(t, filepath.Join(root, "tmp", "tls"))
	ports, err := localcluster.FreePorts(3)
	require.NoError(t, err)
	run(t, root, cf,
		"--host=127.0.0.1", fmt.Sprintf("--port=%d", ports[0]),
		"--cert-mode=files", "--cert-dir=/tmp/tls",
		fmt.Sprintf("--metrics-bind-address=127.0.0.1:%d", ports[1]),
		fmt.Sprintf("--health-probe-bind-address=127.0.0.1:%d", ports[2]))
	waitOK(t, fmt.Sprintf("http://127.0.0.1:%d/readyz", ports[2]))
	waitOK(t, fmt.Sprintf("http://127.0.0.1:%d/healthz", ports[2]))
	waitOK(t, fmt.Sprintf("http://127.0.0.1:%d/metrics", ports[1]))
}

func TestTheControllerImageRunsFromItsOwnFilesystem(t *testing.T) {
	root, cf := rootfs(t, "flowforge-controller")
	ensureNamespace(t, "flowforge-system")
	// The history volume, writable by the image's user (fsGroup in deploy/).
	data := filepath.Join(root, "var", "lib", "flowforge")
	require.NoError(t, os.MkdirAll(data, 0o755))
	require.NoError(t, os.Chown(data, images.UserID, images.UserID))
	// The aggregated history API's serving pair, as the Secret deploy/
	// mounts provides it.
	writeTLS(t, filepath.Join(root, "tmp", "history-tls"))
	ports, err := localcluster.FreePorts(4)
	require.NoError(t, err)
	run(t, root, cf,
		"--leader-election-namespace=flowforge-system",
		"--history-cert-dir=/tmp/history-tls", "--history-secure-bind-address=127.0.0.1",
		fmt.Sprintf("--history-secure-port=%d", ports[3]),
		fmt.Sprintf("--history-bind-address=127.0.0.1:%d", ports[0]),
		fmt.Sprintf("--metrics-bind-address=127.0.0.1:%d", ports[1]),
		fmt.Sprintf("--health-probe-bind-address=127.0.0.1:%d", ports[2]))
	waitOK(t, fmt.Sprintf("http://127.0.0.1:%d/readyz", ports[2]))
	waitOK(t, fmt.Sprintf("http://127.0.0.1:%d/healthz", ports[2]))
	_, err = os.Stat(filepath.Join(data, "history.db"))
	require.NoError(t, err, "the controller wrote its history where deploy/ mounts the volume")
}
