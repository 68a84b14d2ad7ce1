package framework

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"strconv"
	"sync"
	"time"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/wait"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"

	"github.com/flowforge/flowforge/certs"
	"github.com/flowforge/flowforge/deploy"
	"github.com/flowforge/flowforge/policies"
	"github.com/flowforge/flowforge/test/localcluster"
	"github.com/flowforge/flowforge/webhook/server"
)

// DefaultWebhookReplicas is WebhookOptions.Replicas' default: two
// replicas behind the Service, as deployed.
const DefaultWebhookReplicas = 2

// Webhook is FlowForge's webhook as deployed: Replicas servers (the same
// code as cmd/flowforge-webhook, in the test process, as its service
// account with deploy/rbac.yaml's rights) behind the flowforge-webhook
// Service, which has a fixed clusterIP in the local cluster's loopback
// Service range. Every replica listens on clusterIP:port with SO_REUSEPORT,
// so the kernel spreads the API server's connections over them, and the
// webhook configurations reach them through `service:` references, as in
// a real cluster.
type Webhook struct {
	// URL is the Service's base URL, https://<clusterIP>:<port>, which the
	// API server dials (port is 443, unless the process may not bind it).
	URL string
	// ClusterIP and Port are the Service's address.
	ClusterIP string
	Port      int
	// MetricsURL and ProbeURL are the first replica's. The replicas in
	// one process share one metrics registry: MetricsURL counts them all.
	MetricsURL string
	ProbeURL   string
	// CertDir holds the serving pair and ca.crt, shared by every replica.
	CertDir string
	// Replicas are the servers behind the Service.
	Replicas []*WebhookReplica

	cfg *rest.Config
	log logr.Logger
}

// WebhookReplica is one server behind the webhook Service.
type WebhookReplica struct {
	MetricsURL string
	ProbeURL   string

	opts server.Options
	mu   sync.Mutex
	stop context.CancelFunc
	done chan error
}

// WebhookOptions configure StartWebhook.
type WebhookOptions struct {
	// PolicyDir serves policies from a directory instead of the embedded ones.
	PolicyDir string
	// Log receives the server's logs. Default: stderr at info level.
	Log *logr.Logger
	// Replicas is the number of servers behind the Service. Default
	// DefaultWebhookReplicas.
	Replicas int
	// Certs, if set, runs the replicas in rotate mode (the default of
	// cmd/flowforge-webhook) with this configuration, its Hosts the
	// Service's names and clusterIP when empty: the replicas create and
	// rotate the Secret themselves, and the webhook configurations are
	// registered with its CA bundle. Otherwise they serve CertDir's files.
	Certs *certs.Config
	// DrainDelay is how long a stopped replica keeps serving, unready,
	// before it shuts down (server.Options.DrainDelay). Zero: none, so
	// that a package's teardown does not wait for it; a test that stops a
	// replica under load sets server.DefaultDrainDelay, as production has.
	DrainDelay time.Duration
}

// StartWebhook generates a CA and a serving certificate for the webhook
// Service's names and address, starts the replicas, waits until each is
// ready, and registers the webhook Service and configurations from deploy/
// (deploy.RegisterLocal). It returns once the API server calls the webhook
// through the Service.
func StartWebhook(ctx context.Context, c *localcluster.Cluster, opts WebhookOptions) (_ *Webhook, err error) {
	if opts.Replicas <= 0 {
		opts.Replicas = DefaultWebhookReplicas
	}
	clusterIP, err := c.ClusterIP(localcluster.WebhookServiceHost)
	if err != nil {
		return nil, err
	}
	port, err := localcluster.ServicePort(clusterIP, 443)
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "flowforge-webhook-")
	if err != nil {
		return nil, err
	}
	hosts := append(deploy.ServiceDNSNames(deploy.WebhookServiceName), clusterIP, "127.0.0.1", "localhost")
	tlsFiles, err := certs.WriteSelfSigned(dir, hosts, time.Now(), 24*time.Hour)
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
	w := &Webhook{
		URL:       fmt.Sprintf("https://%s", net.JoinHostPort(clusterIP, strconv.Itoa(port))),
		ClusterIP: clusterIP,
		Port:      port,
		CertDir:   dir,
		cfg:       cfg,
		log:       log,
	}
	defer func() {
		if err != nil {
			w.Stop()
		}
	}()
	drainDelay := opts.DrainDelay
	if drainDelay == 0 {
		drainDelay = -1
	}
	for range opts.Replicas {
		ports, err := localcluster.FreePorts(2)
		if err != nil {
			return nil, err
		}
		r := &WebhookReplica{
			MetricsURL: fmt.Sprintf("http://127.0.0.1:%d/metrics", ports[0]),
			ProbeURL:   fmt.Sprintf("http://127.0.0.1:%d", ports[1]),
			opts: server.Options{
				Host: clusterIP, Port: port, ReusePort: true, DrainDelay: drainDelay,
				CertDir: dir, CertName: "tls.crt", KeyName: "tls.key",
				MetricsAddr: fmt.Sprintf("127.0.0.1:%d", ports[0]),
				ProbeAddr:   fmt.Sprintf("127.0.0.1:%d", ports[1]),
				PolicyDir:   opts.PolicyDir,
				Certs:       rotateConfig(opts.Certs, hosts),
			},
		}
		w.Replicas = append(w.Replicas, r)
		if err := w.StartReplica(ctx, len(w.Replicas)-1); err != nil {
			return nil, err
		}
	}
	w.MetricsURL, w.ProbeURL = w.Replicas[0].MetricsURL, w.Replicas[0].ProbeURL
	cl, err := AdminClient(c)
	if err != nil {
		return nil, err
	}
	caBundle := tlsFiles.CAPEM
	if opts.Certs != nil {
		if caBundle, err = SecretCABundle(ctx, cl, opts.Certs); err != nil {
			return nil, err
		}
	}
	if err := deploy.RegisterLocal(ctx, cl, clusterIP, int32(port), caBundle); err != nil { //nolint:gosec // a port fits
		return nil, err
	}
	cs, err := c.Clientset()
	if err != nil {
		return nil, err
	}
	if err := deploy.WaitServed(ctx, cs, metav1.NamespaceDefault, DefaultTimeout); err != nil {
		return nil, err
	}
	return w, nil
}

// StartReplica starts replica i (again, after StopReplica) on its own
// probe and metrics ports and the Service's address, and waits until it
// is ready.
func (w *Webhook) StartReplica(ctx context.Context, i int) error {
	if i < 0 || i >= len(w.Replicas) {
		return fmt.Errorf("webhook replica %d: there are %d", i, len(w.Replicas))
	}
	r := w.Replicas[i]
	r.mu.Lock()
	if r.stop != nil {
		r.mu.Unlock()
		return fmt.Errorf("webhook replica %d is running", i)
	}
	runCtx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	r.stop, r.done = cancel, done
	r.mu.Unlock()
	go func() {
		done <- server.Run(runCtx, w.cfg, r.opts, w.log.WithValues("replica", i))
	}()
	if err := r.waitReady(ctx); err != nil {
		_ = w.StopReplica(i)
		return fmt.Errorf("webhook replica %d: %w", i, err)
	}
	return nil
}

// StopReplica stops replica i gracefully, as a pod's SIGTERM does: it
// stops accepting connections (the kernel sends new ones to the other
// replicas) and finishes the admissions in flight. It returns once the
// server has stopped.
func (w *Webhook) StopReplica(i int) error {
	if i < 0 || i >= len(w.Replicas) {
		return fmt.Errorf("webhook replica %d: there are %d", i, len(w.Replicas))
	}
	r := w.Replicas[i]
	r.mu.Lock()
	stop, done := r.stop, r.done
	r.stop, r.done = nil, nil
	r.mu.Unlock()
	if stop == nil {
		return nil
	}
	stop()
	select {
	case err := <-done:
		return err
	case <-time.After(90 * time.Second):
		return fmt.Errorf("webhook replica %d did not stop in 90s", i)
	}
}

// AdminClient returns a controller-runtime client for the cluster.
func AdminClient(c *localcluster.Cluster) (client.Client, error) {
	scheme := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(scheme); err != nil {
		return nil, err
	}
	return client.New(c.RESTConfig, client.Options{Scheme: scheme})
}

func (r *WebhookReplica) waitReady(ctx context.Context) error {
	r.mu.Lock()
	done := r.done
	r.mu.Unlock()
	return wait.PollUntilContextTimeout(ctx, 50*time.Millisecond, DefaultTimeout, true, func(ctx context.Context) (bool, error) {
		select {
		case err := <-done:
			return false, fmt.Errorf("webhook server exited: %w", err)
		default:
		}
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, r.ProbeURL+"/readyz", nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return false, nil
		}
		_ = resp.Body.Close()
		return resp.StatusCode == http.StatusOK, nil
	})
}

// Stop stops every replica, all at once, and removes the certificates.
func (w *Webhook) Stop() {
	var wg sync.WaitGroup
	for i := range w.Replicas {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := w.StopReplica(i); err != nil {
				w.log.Error(err, "Stopping a webhook replica", "replica", i)
			}
		}()
	}
	wg.Wait()
	_ = os.RemoveAll(w.CertDir)
}

// CopyPolicies copies the policy set the webhook embeds (policies/'s
// data.yaml, lib, mutate and validate) into a temporary directory that a
// test may edit and serve with WebhookOptions.PolicyDir.
func CopyPolicies() (string, error) {
	dst, err := os.MkdirTemp("", "flowforge-policies-")
	if err != nil {
		return "", err
	}
	if err := os.CopyFS(dst, policies.Embedded()); err != nil {
		return "", fmt.Errorf("copy the embedded policies: %w", err)
	}
	return dst, nil
}

// rotateConfig is the replicas' certificate configuration: cfg with
// hosts by default, or files mode (the zero Config) without cfg.
func rotateConfig(cfg *certs.Config, hosts []string) certs.Config {
	if cfg == nil {
		return certs.Config{}
	}
	c := *cfg
	c.Mode = certs.ModeRotate
	if len(c.Hosts) == 0 {
		c.Hosts = hosts
	}
	return c
}

// SecretCABundle waits for the rotator's Secret and returns its CA bundle
// (ca.crt), what the webhook configurations trust.
func SecretCABundle(ctx context.Context, cl client.Client, cfg *certs.Config) ([]byte, error) {
	key, err := cfg.SecretKey()
	if err != nil {
		return nil, err
	}
	var bundle []byte
	err = wait.PollUntilContextTimeout(ctx, 50*time.Millisecond, DefaultTimeout, true, func(ctx context.Context) (bool, error) {
		s := &corev1.Secret{}
		if err := cl.Get(ctx, key, s); err != nil {
			return false, client.IgnoreNotFound(err)
		}
		bundle = s.Data[certs.SecretCA]
		return len(bundle) > 0, nil
	})
	if err != nil {
		return nil, fmt.Errorf("wait for the certificate Secret %s: %w", key, err)
	}
	return bundle, nil
}
