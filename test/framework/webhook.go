package framework

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"github.com/go-logr/logr"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/wait"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"sigs.k8s.io/controller-runtime/pkg/client"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"

	"github.com/flowforge/flowforge/certs"
	"github.com/flowforge/flowforge/deploy"
	"github.com/flowforge/flowforge/test/localcluster"
	"github.com/flowforge/flowforge/webhook/server"
)

// Webhook is FlowForge's webhook server running in the test process and
// registered with the local cluster's API server over TLS.
type Webhook struct {
	URL        string
	MetricsURL string
	ProbeURL   string
	CertDir    string
	stop       context.CancelFunc
	done       chan error
}

// WebhookOptions configure StartWebhook.
type WebhookOptions struct {
	// PolicyDir serves policies from a directory instead of the embedded ones.
	PolicyDir string
	// Log receives the server's logs. Default: stderr at info level.
	Log *logr.Logger
}

// StartWebhook generates a CA and serving certificate, starts the webhook
// server (the same code as cmd/flowforge-webhook, as its service account
// with deploy/rbac.yaml's rights) on free loopback ports,
// waits until it is ready, and registers the webhook configurations from
// deploy/ with the API server, pointed at it. It returns once the API server
// calls the webhook.
func StartWebhook(ctx context.Context, c *localcluster.Cluster, opts WebhookOptions) (*Webhook, error) {
	dir, err := os.MkdirTemp("", "flowforge-webhook-")
	if err != nil {
		return nil, err
	}
	tlsFiles, err := certs.WriteSelfSigned(dir, []string{"127.0.0.1", "localhost"}, time.Now(), 24*time.Hour)
	if err != nil {
		return nil, err
	}
	ports, err := localcluster.FreePorts(3)
	if err != nil {
		return nil, err
	}
	cfg, err := ServiceAccountConfig(ctx, c, deploy.WebhookServiceAccount)
	if err != nil {
		return nil, err
	}
	log := zap.New(zap.WriteTo(os.Stderr))
	if opts.Log != nil {
		log = *opts.Log
	}
	ctrllog.SetLogger(log)
	runCtx, cancel := context.WithCancel(context.Background())
	w := &Webhook{
		URL:        fmt.Sprintf("https://127.0.0.1:%d", ports[0]),
		MetricsURL: fmt.Sprintf("http://127.0.0.1:%d/metrics", ports[1]),
		ProbeURL:   fmt.Sprintf("http://127.0.0.1:%d", ports[2]),
		CertDir:    dir,
		stop:       cancel,
		done:       make(chan error, 1),
	}
	go func() {
		w.done <- server.Run(runCtx, cfg, server.Options{
			Host: "127.0.0.1", Port: ports[0],
			CertDir: dir, CertName: "tls.crt", KeyName: "tls.key",
			MetricsAddr: fmt.Sprintf("127.0.0.1:%d", ports[1]),
			ProbeAddr:   fmt.Sprintf("127.0.0.1:%d", ports[2]),
			PolicyDir:   opts.PolicyDir,
		}, log)
	}()
	if err := w.waitReady(ctx); err != nil {
		w.Stop()
		return nil, err
	}
	cl, err := AdminClient(c)
	if err != nil {
		w.Stop()
		return nil, err
	}
	if err := deploy.RegisterLocal(ctx, cl, w.URL, tlsFiles.CAPEM); err != nil {
		w.Stop()
		return nil, err
	}
	return w, nil
}

// AdminClient returns a controller-runtime client for the cluster.
func AdminClient(c *localcluster.Cluster) (client.Client, error) {
	scheme := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(scheme); err != nil {
		return nil, err
	}
	return client.New(c.RESTConfig, client.Options{Scheme: scheme})
}

func (w *Webhook) waitReady(ctx context.Context) error {
	return wait.PollUntilContextTimeout(ctx, 50*time.Millisecond, DefaultTimeout, true, func(ctx context.Context) (bool, error) {
		select {
		case err := <-w.done:
			return false, fmt.Errorf("webhook server exited: %w", err)
		default:
		}
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, w.ProbeURL+"/readyz", nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return false, nil
		}
		_ = resp.Body.Close()
		return resp.StatusCode == http.StatusOK, nil
	})
}

// Stop stops the server and removes its certificates.
func (w *Webhook) Stop() {
	w.stop()
	select {
	case <-w.done:
	case <-time.After(10 * time.Second):
	}
	_ = os.RemoveAll(w.CertDir)
}

// CopyPolicies copies the repository's policies/ into a temporary
// directory that a test may edit and serve with WebhookOptions.PolicyDir.
func CopyPolicies() (string, error) {
	root, err := localcluster.ModuleRoot()
	if err != nil {
		return "", err
	}
	src := filepath.Join(root, "policies")
	dst, err := os.MkdirTemp("", "flowforge-policies-")
	if err != nil {
		return "", err
	}
	err = filepath.WalkDir(src, func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, path)
		target := filepath.Join(dst, rel)
		if d.IsDir() {
			return os.MkdirAll(target, 0o755)
		}
		if filepath.Ext(path) == ".go" {
			return nil
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		return os.WriteFile(target, data, 0o644)
	})
	return dst, err
}
