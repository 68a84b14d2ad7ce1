package localup

import (
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/wait"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/flowforge/flowforge/certs"
	"github.com/flowforge/flowforge/deploy"
	"github.com/flowforge/flowforge/test/framework"
	"github.com/flowforge/flowforge/test/localcluster"
)

// Namespaces and names the local stack sets up, as deploy/ does.
const (
	SystemNamespace = deploy.Namespace
	JobsNamespace   = "flowforge-jobs"
	EndpointsName   = "flowforge-endpoints"
)

// Options configure the local stack.
type Options struct {
	// StateDir receives the cluster's state and logs (StateDir/cluster),
	// the admin kubeconfig (StateDir/kubeconfig), the endpoints file and a
	// ready marker.
	StateDir string
	// BinDir holds the control-plane and FlowForge binaries.
	BinDir string
	// PolicyDir, if set, is served by the webhook instead of the embedded
	// policies, and edits to it are picked up without a restart.
	PolicyDir string
	// CertValidity is the webhook's serving certificate lifetime (its CA
	// lives twice as long; 0: certs.DefaultValidity). The webhook manages
	// and rotates it itself (--cert-mode=rotate), as deployed: with a few
	// minutes, rotations happen while you watch (make up CERT_VALIDITY=2m).
	CertValidity time.Duration
	// Ready, if set, is called once the stack is ready; Run then stops the
	// stack when it returns (instead of when ctx ends) and returns its
	// error. The fault run (test/chaos) drives the stack this way.
	Ready func(ctx context.Context, c *localcluster.Cluster, ep *Endpoints) error
}

// Endpoints are the local stack's addresses, written to StateDir/endpoints.env.
// Webhook is the webhook Service's base URL (its clusterIP and port);
// WebhookProbes and WebhookMetrics are the first replica's.
type Endpoints struct {
	APIServer, Webhook, WebhookProbes, WebhookMetrics, History, ControllerMetrics string
	// WebhookPids, WebhookReplicaProbes and WebhookReplicaMetrics are
	// every replica's, in replica order.
	WebhookPids, WebhookReplicaProbes, WebhookReplicaMetrics []string
}

// WebhookReplicas is the number of webhook processes `make up` runs
// behind the Service, as deploy/ runs several.
const WebhookReplicas = 2

// startWebhookReplicas runs WebhookReplicas flowforge-webhook processes,
// flowforge-webhook-<i>, with args (which bind the Service's address with
// --reuse-port) and each its own probe and metrics ports; ep's first
// replica ports are replica 0's. It returns once every replica is ready.
func startWebhookReplicas(ctx context.Context, c *localcluster.Cluster, bin string, args []string, ep *Endpoints) error {
	for i := range WebhookReplicas {
		probes, metrics := ep.WebhookProbes, ep.WebhookMetrics
		if i > 0 {
			ports, err := localcluster.FreePorts(2)
			if err != nil {
				return err
			}
			metrics = fmt.Sprintf("http://127.0.0.1:%d/metrics", ports[0])
			probes = fmt.Sprintf("http://127.0.0.1:%d", ports[1])
		}
		replicaArgs := append(append([]string(nil), args...),
			"--metrics-bind-address="+strings.TrimSuffix(strings.TrimPrefix(metrics, "http://"), "/metrics"),
			"--health-probe-bind-address="+strings.TrimPrefix(probes, "http://"))
		name := fmt.Sprintf("flowforge-webhook-%d", i)
		if err := c.Run(ctx, name, filepath.Join(bin, "flowforge-webhook"), replicaArgs, localcluster.HTTPReady(probes+"/readyz")); err != nil {
			return err
		}
		pid, ok := c.Pids()[name]
		if !ok {
			return fmt.Errorf("%s exited", name)
		}
		ep.WebhookPids = append(ep.WebhookPids, strconv.Itoa(pid))
		ep.WebhookReplicaProbes = append(ep.WebhookReplicaProbes, probes)
		ep.WebhookReplicaMetrics = append(ep.WebhookReplicaMetrics, metrics)
	}
	return nil
}

// Run starts the stack, writes the kubeconfig and the ready marker, and
// blocks until ctx ends; then it stops everything it started.
func Run(ctx context.Context, opts Options, out io.Writer) error {
	logf := func(f string, a ...any) { fmt.Fprintf(out, "localup: "+f+"\n", a...) }
	state, err := filepath.Abs(opts.StateDir)
	if err != nil {
		return fmt.Errorf("state dir: %w", err)
	}
	bin, err := filepath.Abs(opts.BinDir)
	if err != nil {
		return fmt.Errorf("bin dir: %w", err)
	}
	policyDir := opts.PolicyDir
	if policyDir != "" {
		if policyDir, err = filepath.Abs(policyDir); err != nil {
			return fmt.Errorf("policy dir: %w", err)
		}
	}
	clusterDir := filepath.Join(state, "cluster")
	if err := os.RemoveAll(clusterDir); err != nil {
		return fmt.Errorf("clear old state: %w", err)
	}
	ready := filepath.Join(state, "ready")
	_ = os.Remove(ready)
	startCtx, cancel := context.WithTimeout(ctx, 3*time.Minute)
	defer cancel()
	c, err := localcluster.Start(startCtx, localcluster.Options{BinDir: bin, Dir: clusterDir, Logf: logf})
	if err != nil {
		return err
	}
	defer func() {
		logf("stopping")
		_ = c.Stop()
		_ = os.Remove(ready)
	}()
	kubeconfig := filepath.Join(state, "kubeconfig")
	if err := os.WriteFile(kubeconfig, c.Kubeconfig, 0o600); err != nil {
		return fmt.Errorf("write kubeconfig: %w", err)
	}
	ep, err := startFlowForge(startCtx, c, bin, state, policyDir, opts.CertValidity, logf)
	if err != nil {
		return err
	}
	if err := writeEndpoints(filepath.Join(state, "endpoints.env"), ep); err != nil {
		return err
	}
	if err := os.WriteFile(ready, []byte(time.Now().UTC().Format(time.RFC3339)+"\n"), 0o644); err != nil {
		return fmt.Errorf("write ready marker: %w", err)
	}
	logf("ready; kubeconfig at %s; history API at %s", kubeconfig, ep.History)
	if opts.Ready != nil {
		return opts.Ready(ctx, c, ep)
	}
	<-ctx.Done()
	return nil
}

// startFlowForge runs the webhook and the controller from bin/ and
// registers them as deploy/ does in a real cluster.
func startFlowForge(ctx context.Context, c *localcluster.Cluster, bin, state, policyDir string, certValidity time.Duration, logf func(string, ...any)) (*Endpoints, error) {
	ports, err := localcluster.FreePorts(6)
	if err != nil {
		return nil, err
	}
	// The webhook Service's address, in the cluster's loopback Service
	// range: every replica listens there (SO_REUSEPORT) and the API server
	// dials it through the webhook configurations' `service:` references.
	webhookIP, err := c.ClusterIP(localcluster.WebhookServiceHost)
	if err != nil {
		return nil, err
	}
	webhookPort, err := localcluster.ServicePort(webhookIP, 443)
	if err != nil {
		return nil, err
	}
	ep := &Endpoints{
		APIServer:         c.Server,
		Webhook:           "https://" + net.JoinHostPort(webhookIP, strconv.Itoa(webhookPort)),
		WebhookMetrics:    fmt.Sprintf("http://127.0.0.1:%d/metrics", ports[1]),
		WebhookProbes:     fmt.Sprintf("http://127.0.0.1:%d", ports[2]),
		History:           fmt.Sprintf("http://127.0.0.1:%d", ports[3]),
		ControllerMetrics: fmt.Sprintf("http://127.0.0.1:%d/metrics", ports[4]),
	}
	// The programs run as their service accounts, with deploy/rbac.yaml's
	// rights, as in a real cluster.
	cl, err := adminClient(c)
	if err != nil {
		return nil, err
	}
	if err := deploy.ApplyRBAC(ctx, cl); err != nil {
		return nil, err
	}
	webhookKubeconfig, err := serviceAccountKubeconfig(c.Kubeconfig, state, deploy.WebhookServiceAccount)
	if err != nil {
		return nil, err
	}
	controllerKubeconfig, err := serviceAccountKubeconfig(c.Kubeconfig, state, deploy.ControllerServiceAccount)
	if err != nil {
		return nil, err
	}
	// The webhook's serving certificate: its own, in the Secret
	// certs.DefaultSecret, rotated by the replica holding the Lease, as
	// deployed (docs/operations.md, Serving certificate).
	certHosts := append(deploy.ServiceDNSNames(deploy.WebhookServiceName), webhookIP, "127.0.0.1", "localhost")
	certCfg := certs.DefaultConfig()
	if certValidity > 0 {
		certCfg.Validity = certValidity
	}
	webhookArgs := []string{
		"--kubeconfig=" + webhookKubeconfig,
		"--host=" + webhookIP, "--port=" + strconv.Itoa(webhookPort), "--reuse-port",
		"--cert-mode=rotate", "--cert-hosts=" + strings.Join(certHosts, ","), "--cert-validity=" + certCfg.Validity.String(),
		"--enable-profiling",
	}
	if policyDir != "" {
		webhookArgs = append(webhookArgs, "--policy-dir="+policyDir)
	}
	if err := startWebhookReplicas(ctx, c, bin, webhookArgs, ep); err != nil {
		return nil, err
	}
	logf("webhook ready: %d replicas (pids %s) behind %s", len(ep.WebhookPids), strings.Join(ep.WebhookPids, " "), ep.Webhook)
	caBundle, err := webhookCABundle(ctx, cl, &certCfg)
	if err != nil {
		return nil, err
	}
	logf("webhook serving certificate valid %s, renewed and rotated by the webhook (Secret %s)", certCfg.Validity, certCfg.Secret)
	// For clients outside the cluster (make load): the CA bundle as it is
	// now. After a CA rotation, read it again from the Secret.
	if err := os.MkdirAll(filepath.Join(state, "webhook-certs"), 0o755); err != nil {
		return nil, err
	}
	if err := certs.WriteFileAtomic(filepath.Join(state, "webhook-certs", "ca.crt"), caBundle, 0o644); err != nil {
		return nil, err
	}
	if err := deploy.RegisterLocal(ctx, cl, webhookIP, int32(webhookPort), caBundle); err != nil { //nolint:gosec // a port fits
		return nil, err
	}
	cs, err := c.Clientset()
	if err != nil {
		return nil, err
	}
	if err := namespaces(ctx, cl, ep); err != nil {
		return nil, err
	}
	if err := localcluster.WaitForServiceAccount(ctx, cs, JobsNamespace); err != nil {
		return nil, err
	}
	// The aggregated history API: the flowforge-history Service at a fixed
	// clusterIP of the cluster's loopback range and the APIService, as
	// deploy/ registers them; the CLI and kubectl read the history through
	// the API server.
	hist, err := framework.PrepareHistoryAPI(c)
	if err != nil {
		return nil, err
	}
	if err := hist.Register(ctx, c); err != nil {
		return nil, err
	}
	controllerArgs := []string{
		"--kubeconfig=" + controllerKubeconfig,
		"--database=" + filepath.Join(state, "history.db"),
		fmt.Sprintf("--history-bind-address=127.0.0.1:%d", ports[3]),
		"--history-secure-bind-address=" + hist.ClusterIP,
		fmt.Sprintf("--history-secure-port=%d", hist.Port),
		"--history-cert-dir=" + hist.CertDir,
		fmt.Sprintf("--metrics-bind-address=127.0.0.1:%d", ports[4]),
		fmt.Sprintf("--health-probe-bind-address=127.0.0.1:%d", ports[5]),
		"--leader-election-namespace=" + SystemNamespace,
		"--enable-profiling",
	}
	if policyDir != "" {
		controllerArgs = append(controllerArgs, "--policy-dir="+policyDir)
	}
	if err := c.Run(ctx, "flowforge-controller", filepath.Join(bin, "flowforge-controller"), controllerArgs, localcluster.HTTPReady(ep.History+"/healthz")); err != nil {
		return nil, err
	}
	if err := framework.WaitHistoryAPI(ctx, c); err != nil {
		return nil, err
	}
	logf("controller ready; history.flowforge.io served at %s (debugging view at %s)", hist.URL, ep.History)
	return ep, nil
}

// namespaces creates the Jobs' namespace, the published endpoints and the
// shared API key Secret (a placeholder: nothing calls the API here).
// SystemNamespace comes from deploy/namespace.yaml (deploy.ApplyRBAC).
func namespaces(ctx context.Context, cl client.Client, ep *Endpoints) error {
	objs := []client.Object{
		&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: JobsNamespace, Labels: map[string]string{
			"flowforge.io/managed":               "true",
			"pod-security.kubernetes.io/enforce": "restricted",
		}}},
		&corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: EndpointsName, Namespace: SystemNamespace}, Data: map[string]string{
			"historyURL": ep.History,
		}},
		&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "claude-secret", Namespace: JobsNamespace}, StringData: map[string]string{"api-key": "local-placeholder"}},
	}
	for _, o := range objs {
		if err := cl.Create(ctx, o); err != nil && !apierrors.IsAlreadyExists(err) {
			return fmt.Errorf("create %s: %w", o.GetName(), err)
		}
	}
	return nil
}

func writeEndpoints(path string, ep *Endpoints) error {
	text := fmt.Sprintf(`# Written by make up: the local stack's addresses.
FLOWFORGE_APISERVER=%s
FLOWFORGE_WEBHOOK=%s
FLOWFORGE_WEBHOOK_PROBES=%s
FLOWFORGE_WEBHOOK_METRICS=%s
FLOWFORGE_HISTORY_URL=%s
FLOWFORGE_CONTROLLER_METRICS=%s
# The webhook replicas behind the Service at FLOWFORGE_WEBHOOK (above:
# replica 0's probes and metrics), in replica order, space-separated.
FLOWFORGE_WEBHOOK_PIDS="%s"
FLOWFORGE_WEBHOOK_REPLICA_PROBES="%s"
FLOWFORGE_WEBHOOK_REPLICA_METRICS="%s"
`, ep.APIServer, ep.Webhook, ep.WebhookProbes, ep.WebhookMetrics, ep.History, ep.ControllerMetrics,
		strings.Join(ep.WebhookPids, " "), strings.Join(ep.WebhookReplicaProbes, " "), strings.Join(ep.WebhookReplicaMetrics, " "))
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		return fmt.Errorf("write endpoints: %w", err)
	}
	return nil
}

func adminClient(c *localcluster.Cluster) (client.Client, error) {
	scheme := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(scheme); err != nil {
		return nil, err
	}
	return client.New(c.RESTConfig, client.Options{Scheme: scheme})
}

// serviceAccountKubeconfig writes a copy of the admin kubeconfig that
// impersonates one of FlowForge's service accounts and returns its path.
func serviceAccountKubeconfig(admin []byte, state, serviceAccount string) (string, error) {
	cfg, err := clientcmd.Load(admin)
	if err != nil {
		return "", fmt.Errorf("read kubeconfig: %w", err)
	}
	user, groups := deploy.ServiceAccountUser(serviceAccount)
	for _, auth := range cfg.AuthInfos {
		auth.Impersonate, auth.ImpersonateGroups = user, groups
	}
	path := filepath.Join(state, serviceAccount+".kubeconfig")
	if err := clientcmd.WriteToFile(*cfg, path); err != nil {
		return "", fmt.Errorf("write kubeconfig: %w", err)
	}
	return path, nil
}

// webhookCABundle waits for the webhook's certificate Secret and returns
// its CA bundle, what the webhook configurations are registered with (the
// leading replica keeps them up to date afterwards).
func webhookCABundle(ctx context.Context, cl client.Client, cfg *certs.Config) ([]byte, error) {
	key, err := cfg.SecretKey()
	if err != nil {
		return nil, err
	}
	var bundle []byte
	err = wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, time.Minute, true, func(ctx context.Context) (bool, error) {
		s := &corev1.Secret{}
		if err := cl.Get(ctx, key, s); err != nil {
			return false, client.IgnoreNotFound(err)
		}
		bundle = s.Data[certs.SecretCA]
		return len(bundle) > 0, nil
	})
	if err != nil {
		return nil, fmt.Errorf("wait for the webhook's certificate Secret %s: %w", key, err)
	}
	return bundle, nil
}
