package localup

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/flowforge/flowforge/certs"
	"github.com/flowforge/flowforge/deploy"
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
}

// Endpoints are the local stack's addresses, written to StateDir/endpoints.env.
type Endpoints struct {
	APIServer, Webhook, WebhookProbes, WebhookMetrics, History, ControllerMetrics string
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
	ep, err := startFlowForge(startCtx, c, bin, state, policyDir, logf)
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
	<-ctx.Done()
	return nil
}

// startFlowForge runs the webhook and the controller from bin/ and
// registers them as deploy/ does in a real cluster.
func startFlowForge(ctx context.Context, c *localcluster.Cluster, bin, state, policyDir string, logf func(string, ...any)) (*Endpoints, error) {
	ports, err := localcluster.FreePorts(6)
	if err != nil {
		return nil, err
	}
	ep := &Endpoints{
		APIServer:         c.Server,
		Webhook:           fmt.Sprintf("https://127.0.0.1:%d", ports[0]),
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
	certDir := filepath.Join(state, "webhook-certs")
	tlsFiles, err := certs.WriteSelfSigned(certDir, []string{"127.0.0.1", "localhost"}, time.Now(), 30*24*time.Hour)
	if err != nil {
		return nil, err
	}
	webhookArgs := []string{
		"--kubeconfig=" + webhookKubeconfig,
		"--host=127.0.0.1", "--port=" + strconv.Itoa(ports[0]),
		"--cert-dir=" + certDir,
		fmt.Sprintf("--metrics-bind-address=127.0.0.1:%d", ports[1]),
		fmt.Sprintf("--health-probe-bind-address=127.0.0.1:%d", ports[2]),
		"--enable-profiling",
	}
	if policyDir != "" {
		webhookArgs = append(webhookArgs, "--policy-dir="+policyDir)
	}
	if err := c.Run(ctx, "flowforge-webhook", filepath.Join(bin, "flowforge-webhook"), webhookArgs, localcluster.HTTPReady(ep.WebhookProbes+"/readyz")); err != nil {
		return nil, err
	}
	logf("webhook ready at %s", ep.Webhook)
	if err := deploy.RegisterLocal(ctx, cl, ep.Webhook, tlsFiles.CAPEM); err != nil {
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
	controllerArgs := []string{
		"--kubeconfig=" + controllerKubeconfig,
		"--database=" + filepath.Join(state, "history.db"),
		fmt.Sprintf("--history-bind-address=127.0.0.1:%d", ports[3]),
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
	logf("controller ready; history API at %s", ep.History)
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
`, ep.APIServer, ep.Webhook, ep.WebhookProbes, ep.WebhookMetrics, ep.History, ep.ControllerMetrics)
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
