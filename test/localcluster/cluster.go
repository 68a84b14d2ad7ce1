package localcluster

import (
	"bufio"
	"context"
	"crypto/tls"
	_ "embed"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
)

// Labels and taints of the simulated worker pool. The hardening policies in
// policies/data.yaml target the same values.
const (
	// WorkerLabelKey and WorkerLabelValue select the gVisor worker nodes.
	WorkerLabelKey   = "flowforge.io/sandbox"
	WorkerLabelValue = "gvisor"
	// WorkerTaintKey is the NoSchedule taint that keeps other pods off them.
	WorkerTaintKey = "flowforge.io/sandbox"
	// GeneralNodeName is the one untainted node, for pods that are not agents.
	GeneralNodeName = "kwok-general-0"
	// KwokNodeAnnotation marks a node as one that kwok plays.
	KwokNodeAnnotation = "kwok.x-k8s.io/node"
)

const (
	defaultWorkerNodes  = 3
	defaultStartTimeout = 90 * time.Second
	stopGrace           = 5 * time.Second
)

//go:embed kwok/stages.yaml
var stagesYAML string

// Options configure a cluster. The zero value is usable.
type Options struct {
	// BinDir holds etcd, kube-apiserver, kube-controller-manager,
	// kube-scheduler and kwok. Default: $FLOWFORGE_BIN_DIR, else bin/ at
	// the root of the FlowForge module.
	BinDir string
	// Dir is where state, certificates and logs go. Default: a new temporary
	// directory that Stop (or the watchdog) removes.
	Dir string
	// WorkerNodes is the size of the tainted gVisor worker pool. Default 3.
	WorkerNodes int
	// StartTimeout bounds the whole start. Default 90s.
	StartTimeout time.Duration
	// Logf receives progress lines. Default: discard.
	Logf func(format string, args ...any)
	// ContainerGCPeriod plays the kubelet's container garbage collection:
	// this long after a pod is both terminated (Succeeded or Failed) and
	// being deleted (it has a deletionTimestamp; finalizers do not matter),
	// its containers' logs are removed and pods/log serves nothing more.
	// A terminated pod that is not being deleted keeps its logs. A real
	// kubelet collects every minute, so there the delay is up to a minute;
	// the default, DefaultContainerGCPeriod, is shorter so that tests
	// meet the loss quickly.
	ContainerGCPeriod time.Duration
	// ResourceMetrics plays kubelet resource metrics with kwok and serves
	// metrics.k8s.io with metrics-server (metricsserver.go): pods use what
	// their sim.flowforge.io/usage-cpu and usage-memory annotations say.
	ResourceMetrics bool
}

// DefaultContainerGCPeriod is Options.ContainerGCPeriod's default.
const DefaultContainerGCPeriod = 5 * time.Second

// Cluster is a running local control plane.
type Cluster struct {
	// Dir holds the cluster's state, certificates and component logs.
	Dir string
	// KubeconfigPath is an admin kubeconfig (system:masters) on disk.
	KubeconfigPath string
	// Kubeconfig is the same kubeconfig, in memory.
	Kubeconfig []byte
	// RESTConfig is an admin client configuration.
	RESTConfig *rest.Config
	// Server is the API server's URL.
	Server string
	// CACertPEM is the cluster CA, which signed the API server's certificate.
	CACertPEM []byte
	// ServiceCIDR is the cluster's own loopback Service range,
	// 127.99.X.0/24 (--service-cluster-ip-range), reserved for its
	// lifetime; ClusterIP gives fixed addresses in it (servicecidr.go).
	ServiceCIDR string

	opts      Options
	removeDir bool
	pki       *pki
	ports     ports
	svc       *serviceRange

	mu        sync.Mutex
	procs     map[string]*process
	order     []string
	specs     map[string]componentSpec
	watchdog  *exec.Cmd
	agentStop context.CancelFunc
	agentDone chan struct{}
	stopOnce  sync.Once
	stopErr   error
}

type ports struct {
	etcdClient, etcdPeer, apiserver, kcm, scheduler, kwok int
}

type componentSpec struct {
	bin  string
	args []string
}

// Start builds certificates and configuration, starts every component, and
// returns once the API server is ready, the nodes are Ready and the
// controllers are serving. On failure it stops whatever it started and
// returns an error that names the component and shows its log tail.
func Start(ctx context.Context, opts Options) (_ *Cluster, err error) {
	if opts.WorkerNodes <= 0 {
		opts.WorkerNodes = defaultWorkerNodes
	}
	if opts.StartTimeout <= 0 {
		opts.StartTimeout = defaultStartTimeout
	}
	if opts.ContainerGCPeriod <= 0 {
		opts.ContainerGCPeriod = DefaultContainerGCPeriod
	}
	if opts.Logf == nil {
		opts.Logf = func(string, ...any) {}
	}
	if opts.BinDir == "" {
		if opts.BinDir, err = DefaultBinDir(); err != nil {
			return nil, err
		}
	}
	for _, name := range []string{"etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kwok"} {
		if _, err := os.Stat(filepath.Join(opts.BinDir, name)); err != nil {
			return nil, fmt.Errorf("local cluster: %s is missing from %s; run `make tools` first: %w", name, opts.BinDir, err)
		}
	}
	ctx, cancel := context.WithTimeout(ctx, opts.StartTimeout)
	defer cancel()

	c := &Cluster{opts: opts, procs: map[string]*process{}, specs: map[string]componentSpec{}}
	if opts.Dir == "" {
		if c.Dir, err = os.MkdirTemp("", "flowforge-cluster-"); err != nil {
			return nil, fmt.Errorf("local cluster: temp dir: %w", err)
		}
		c.removeDir = true
	} else {
		c.Dir = opts.Dir
		if err := os.MkdirAll(c.Dir, 0o755); err != nil {
			return nil, fmt.Errorf("local cluster: create %s: %w", c.Dir, err)
		}
	}
	defer func() {
		if err != nil {
			_ = c.Stop()
		}
	}()
	if c.removeDir {
		if err := c.startWatchdog(); err != nil {
			return nil, err
		}
	}
	begin := time.Now()
	if c.pki, err = newPKI(c.Dir, begin); err != nil {
		return nil, fmt.Errorf("local cluster: certificates: %w", err)
	}
	if err := c.allocatePorts(); err != nil {
		return nil, err
	}
	if c.svc, err = reserveServiceRange(); err != nil {
		return nil, err
	}
	c.ServiceCIDR = c.svc.cidr()
	c.Server = fmt.Sprintf("https://127.0.0.1:%d", c.ports.apiserver)
	c.CACertPEM = c.pki.caPEM
	if err := c.writeConfigs(); err != nil {
		return nil, err
	}
	if err := c.startEtcd(ctx); err != nil {
		return nil, err
	}
	opts.Logf("etcd ready (%s)", time.Since(begin).Round(time.Millisecond))
	if err := c.startAPIServer(ctx); err != nil {
		return nil, err
	}
	opts.Logf("kube-apiserver ready at %s (%s)", c.Server, time.Since(begin).Round(time.Millisecond))

	clientset, err := kubernetes.NewForConfig(c.RESTConfig)
	if err != nil {
		return nil, fmt.Errorf("local cluster: client: %w", err)
	}
	for _, name := range []string{"kube-controller-manager", "kube-scheduler"} {
		if err := c.launch(name); err != nil {
			return nil, err
		}
	}
	if err := installLogsCRD(ctx, c.RESTConfig); err != nil {
		return nil, fmt.Errorf("local cluster: %w", err)
	}
	if err := c.launch("kwok"); err != nil {
		return nil, err
	}
	if err := c.createNodes(ctx, clientset); err != nil {
		return nil, err
	}
	if err := c.waitNodesReady(ctx, clientset); err != nil {
		return nil, err
	}
	opts.Logf("%d kwok nodes ready (%s)", opts.WorkerNodes+1, time.Since(begin).Round(time.Millisecond))
	for name, port := range map[string]int{"kube-controller-manager": c.ports.kcm, "kube-scheduler": c.ports.scheduler} {
		if err := c.procs[name].waitFor(ctx, "healthy", healthz(port)); err != nil {
			return nil, err
		}
	}
	if err := c.waitDefaultServiceAccount(ctx, clientset); err != nil {
		return nil, err
	}
	if err := c.startLogAgent(clientset); err != nil {
		return nil, err
	}
	if opts.ResourceMetrics {
		if err := c.startMetricsServer(ctx, clientset); err != nil {
			return nil, err
		}
		opts.Logf("metrics-server serves metrics.k8s.io (%s)", time.Since(begin).Round(time.Millisecond))
	}
	opts.Logf("local cluster ready in %s (state in %s)", time.Since(begin).Round(time.Millisecond), c.Dir)
	return c, nil
}

// DefaultBinDir returns $FLOWFORGE_BIN_DIR, or bin/ at the root of the
// FlowForge module found by walking up from the working directory.
func DefaultBinDir() (string, error) {
	if dir := os.Getenv("FLOWFORGE_BIN_DIR"); dir != "" {
		return dir, nil
	}
	root, err := ModuleRoot()
	if err != nil {
		return "", err
	}
	return filepath.Join(root, "bin"), nil
}

// ModuleRoot finds the directory of FlowForge's go.mod above the working directory.
func ModuleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", fmt.Errorf("local cluster: working directory: %w", err)
	}
	for {
		data, err := os.ReadFile(filepath.Join(dir, "go.mod"))
		if err == nil && strings.HasPrefix(string(data), "module github.com/flowforge/flowforge\n") {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("local cluster: FlowForge's go.mod not found above the working directory; set FLOWFORGE_BIN_DIR")
		}
		dir = parent
	}
}

// Clientset returns a new admin clientset.
func (c *Cluster) Clientset() (*kubernetes.Clientset, error) {
	cs, err := kubernetes.NewForConfig(c.RESTConfig)
	if err != nil {
		return nil, fmt.Errorf("local cluster: client: %w", err)
	}
	return cs, nil
}

// LogPath returns the path of a component's log file.
func (c *Cluster) LogPath(component string) string {
	return filepath.Join(c.Dir, component+".log")
}

// Stop stops every component, newest first, and removes the temporary
// directory if Start created it. It is safe to call more than once.
func (c *Cluster) Stop() error {
	c.stopOnce.Do(func() {
		if c.agentStop != nil {
			c.agentStop()
			<-c.agentDone
		}
		c.mu.Lock()
		order := append([]string(nil), c.order...)
		c.mu.Unlock()
		for i := len(order) - 1; i >= 0; i-- {
			c.procs[order[i]].stop(stopGrace)
		}
		if c.removeDir {
			if err := os.RemoveAll(c.Dir); err != nil {
				c.stopErr = fmt.Errorf("local cluster: remove %s: %w", c.Dir, err)
			}
		}
		if c.watchdog != nil && c.watchdog.Process != nil {
			_ = c.watchdog.Process.Kill()
			_ = c.watchdog.Wait()
		}
		// After every component stopped: nothing serves its addresses now.
		c.svc.release()
	})
	return c.stopErr
}

// Pids returns the process ids of the running components, by name.
func (c *Cluster) Pids() map[string]int {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := map[string]int{}
	for name, p := range c.procs {
		if p.running() {
			out[name] = p.pid()
		}
	}
	return out
}

// RestartAPIServer stops kube-apiserver and starts it again on the same port
// with the same flags, as in a control-plane upgrade or crash. It returns once
// the API server is ready again.
func (c *Cluster) RestartAPIServer(ctx context.Context) error {
	c.mu.Lock()
	p := c.procs["kube-apiserver"]
	c.mu.Unlock()
	p.stop(stopGrace)
	if err := c.launch("kube-apiserver"); err != nil {
		return err
	}
	return c.waitAPIServer(ctx)
}

// startWatchdog starts a shell that outlives this process. When this
// process dies without calling Stop (a panic, a SIGKILL), the watchdog kills
// any component still alive and removes the temporary directory.
func (c *Cluster) startWatchdog() error {
	script := `owner=$1; dir=$2
while kill -0 "$owner" 2>/dev/null; do sleep 1; done
if [ -f "$dir/pids" ]; then for p in $(cat "$dir/pids"); do kill -9 "$p" 2>/dev/null; done; fi
rm -rf "$dir"`
	cmd := exec.Command("/bin/sh", "-c", script, "flowforge-cluster-watchdog", strconv.Itoa(os.Getpid()), c.Dir)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("local cluster: start watchdog: %w", err)
	}
	c.watchdog = cmd
	return nil
}

func (c *Cluster) allocatePorts() error {
	ps, err := FreePorts(6)
	if err != nil {
		return err
	}
	c.ports = ports{etcdClient: ps[0], etcdPeer: ps[1], apiserver: ps[2], kcm: ps[3], scheduler: ps[4], kwok: ps[5]}
	return nil
}

// FreePorts reserves n distinct free loopback ports and releases them for
// the caller to use.
func FreePorts(n int) ([]int, error) {
	var listeners []net.Listener
	defer func() {
		for _, l := range listeners {
			_ = l.Close()
		}
	}()
	out := make([]int, 0, n)
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, fmt.Errorf("local cluster: free port: %w", err)
		}
		listeners = append(listeners, l)
		out = append(out, l.Addr().(*net.TCPAddr).Port)
	}
	return out, nil
}

// writeConfigs writes kubeconfigs and component configuration files and
// records every component's command line.
func (c *Cluster) writeConfigs() error {
	var err error
	if c.KubeconfigPath, c.Kubeconfig, err = writeKubeconfig(c.Dir, "admin.kubeconfig", c.Server, c.pki.caPEM, "flowforge-admin", c.pki.adminPair); err != nil {
		return err
	}
	if c.RESTConfig, err = clientcmd.RESTConfigFromKubeConfig(c.Kubeconfig); err != nil {
		return fmt.Errorf("local cluster: parse kubeconfig: %w", err)
	}
	c.RESTConfig.QPS, c.RESTConfig.Burst = 200, 400
	kcmKubeconfig, _, err := writeKubeconfig(c.Dir, "kube-controller-manager.kubeconfig", c.Server, c.pki.caPEM, "system:kube-controller-manager", c.pki.kcmPair)
	if err != nil {
		return err
	}
	schedKubeconfig, _, err := writeKubeconfig(c.Dir, "kube-scheduler.kubeconfig", c.Server, c.pki.caPEM, "system:kube-scheduler", c.pki.schedulerPair)
	if err != nil {
		return err
	}
	kwokKubeconfig, _, err := writeKubeconfig(c.Dir, "kwok.kubeconfig", c.Server, c.pki.caPEM, "kwok-controller", c.pki.kwokClientPair)
	if err != nil {
		return err
	}
	schedConfig := filepath.Join(c.Dir, "kube-scheduler.yaml")
	if err := os.WriteFile(schedConfig, []byte(fmt.Sprintf(`apiVersion: kubescheduler.config.k8s.io/v1
kind: KubeSchedulerConfiguration
clientConnection:
  kubeconfig: %q
  qps: 200
  burst: 400
leaderElection:
  leaderElect: false
`, schedKubeconfig)), 0o644); err != nil {
		return fmt.Errorf("local cluster: scheduler config: %w", err)
	}
	logsDir := filepath.Join(c.Dir, "pod-logs")
	if err := os.MkdirAll(logsDir, 0o755); err != nil {
		return fmt.Errorf("local cluster: %w", err)
	}
	emptyLog := filepath.Join(logsDir, "empty.log")
	if err := os.WriteFile(emptyLog, nil, 0o644); err != nil {
		return fmt.Errorf("local cluster: %w", err)
	}
	kwokConfig := filepath.Join(c.Dir, "kwok.yaml")
	if err := os.WriteFile(kwokConfig, []byte(fmt.Sprintf(`apiVersion: config.kwok.x-k8s.io/v1alpha1
kind: KwokConfiguration
options:
  cidr: 10.244.0.1/16
  nodeIP: 127.0.0.1
  nodePort: %[1]d
  serverAddress: 127.0.0.1:%[1]d
  tlsCertFile: %[2]q
  tlsPrivateKeyFile: %[3]q
  manageNodesWithAnnotationSelector: %[4]s=fake
  enableCRDs:
  - Logs
  enableDebuggingHandlers: true
  podPlayStageParallelism: 16
  nodeLeaseDurationSeconds: 40
  nodeLeaseParallelism: 4
  nodePlayStageParallelism: 4
---
apiVersion: kwok.x-k8s.io/v1alpha1
kind: ClusterLogs
metadata:
  name: default-empty
spec:
  selector: {}
  logs:
  - logsFile: %[5]q
    follow: true
---
%[6]s%[7]s`, c.ports.kwok, c.pki.kwokCert, c.pki.kwokKey, KwokNodeAnnotation, emptyLog, stagesYAML, c.kwokExtraConfig())), 0o644); err != nil {
		return fmt.Errorf("local cluster: kwok config: %w", err)
	}

	c.specs["etcd"] = componentSpec{bin: "etcd", args: []string{
		"--name=default",
		"--data-dir=" + filepath.Join(c.Dir, "etcd-data"),
		fmt.Sprintf("--listen-client-urls=http://127.0.0.1:%d", c.ports.etcdClient),
		fmt.Sprintf("--advertise-client-urls=http://127.0.0.1:%d", c.ports.etcdClient),
		fmt.Sprintf("--listen-peer-urls=http://127.0.0.1:%d", c.ports.etcdPeer),
		fmt.Sprintf("--initial-advertise-peer-urls=http://127.0.0.1:%d", c.ports.etcdPeer),
		fmt.Sprintf("--initial-cluster=default=http://127.0.0.1:%d", c.ports.etcdPeer),
		"--unsafe-no-fsync",
		"--log-level=warn",
		"--quota-backend-bytes=4294967296",
	}}
	admissionConfigPath, err := writeAdmissionConfig(c.Dir)
	if err != nil {
		return err
	}
	c.specs["kube-apiserver"] = componentSpec{bin: "kube-apiserver", args: []string{
		fmt.Sprintf("--etcd-servers=http://127.0.0.1:%d", c.ports.etcdClient),
		"--bind-address=127.0.0.1",
		"--advertise-address=127.0.0.1",
		fmt.Sprintf("--secure-port=%d", c.ports.apiserver),
		"--cert-dir=" + filepath.Join(c.Dir, "apiserver-certs"),
		"--tls-cert-file=" + c.pki.apiserverCert,
		"--tls-private-key-file=" + c.pki.apiserverKey,
		"--client-ca-file=" + c.pki.caCert,
		"--kubelet-client-certificate=" + c.pki.kubeletClient,
		"--kubelet-client-key=" + c.pki.kubeletKey,
		"--kubelet-preferred-address-types=InternalIP",
		// The aggregation layer (the history API): kube-apiserver proxies
		// with the front-proxy client certificate and the requester in
		// X-Remote-* headers; it dials APIServices' `service:` references
		// at clusterIP:port (no endpoint routing), as in a real cluster.
		"--requestheader-client-ca-file=" + c.pki.frontProxyCA,
		"--requestheader-allowed-names=" + FrontProxyClientName,
		"--requestheader-username-headers=X-Remote-User",
		"--requestheader-group-headers=X-Remote-Group",
		"--requestheader-extra-headers-prefix=X-Remote-Extra-",
		"--proxy-client-cert-file=" + c.pki.frontProxyClientCert,
		"--proxy-client-key-file=" + c.pki.frontProxyClientKey,
		"--enable-aggregator-routing=false",
		"--service-account-issuer=https://kubernetes.default.svc.cluster.local",
		"--service-account-key-file=" + c.pki.saPub,
		"--service-account-signing-key-file=" + c.pki.saKey,
		"--service-cluster-ip-range=" + c.ServiceCIDR,
		"--authorization-mode=Node,RBAC",
		"--enable-admission-plugins=NodeRestriction",
		"--admission-control-config-file=" + admissionConfigPath,
		"--allow-privileged=true",
		"--endpoint-reconciler-type=none",
		"--profiling=false",
		"--v=1",
	}}
	c.specs["kube-controller-manager"] = componentSpec{bin: "kube-controller-manager", args: []string{
		"--kubeconfig=" + kcmKubeconfig,
		"--authentication-kubeconfig=" + kcmKubeconfig,
		"--authorization-kubeconfig=" + kcmKubeconfig,
		"--bind-address=127.0.0.1",
		fmt.Sprintf("--secure-port=%d", c.ports.kcm),
		"--cert-dir=" + filepath.Join(c.Dir, "kcm-certs"),
		"--controllers=*",
		"--leader-elect=false",
		"--use-service-account-credentials=true",
		"--service-account-private-key-file=" + c.pki.saKey,
		"--root-ca-file=" + c.pki.caCert,
		"--kube-api-qps=200",
		"--kube-api-burst=400",
		"--concurrent-job-syncs=10",
		"--concurrent-ttl-after-finished-syncs=10",
		"--concurrent-gc-syncs=40",
		// Quota usage is recounted every 10 s (default 5 min), so a test
		// sees ResourceQuota status converge after an admission race.
		"--resource-quota-sync-period=10s",
		"--profiling=false",
		"--v=1",
	}}
	c.specs["kube-scheduler"] = componentSpec{bin: "kube-scheduler", args: []string{
		"--config=" + schedConfig,
		"--authentication-kubeconfig=" + schedKubeconfig,
		"--authorization-kubeconfig=" + schedKubeconfig,
		"--bind-address=127.0.0.1",
		fmt.Sprintf("--secure-port=%d", c.ports.scheduler),
		"--cert-dir=" + filepath.Join(c.Dir, "scheduler-certs"),
		"--profiling=false",
		"--v=1",
	}}
	c.specs["kwok"] = componentSpec{bin: "kwok", args: []string{
		"--kubeconfig=" + kwokKubeconfig,
		"--config=" + kwokConfig,
	}}
	return nil
}

// launch starts a component from its recorded spec.
func (c *Cluster) launch(name string) error {
	c.mu.Lock()
	spec := c.specs[name]
	c.mu.Unlock()
	bin := spec.bin
	if !filepath.IsAbs(bin) {
		bin = filepath.Join(c.opts.BinDir, bin)
	}
	p, err := startProcess(name, bin, spec.args, c.Dir, nil)
	if err != nil {
		return fmt.Errorf("local cluster: %w", err)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, seen := c.procs[name]; !seen {
		c.order = append(c.order, name)
	}
	c.procs[name] = p
	f, err := os.OpenFile(filepath.Join(c.Dir, "pids"), os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
	if err != nil {
		return fmt.Errorf("local cluster: record pid: %w", err)
	}
	defer f.Close() //nolint:errcheck // written and synced below
	if _, err := fmt.Fprintln(f, p.pid()); err != nil {
		return fmt.Errorf("local cluster: record pid: %w", err)
	}
	return nil
}

func (c *Cluster) startEtcd(ctx context.Context) error {
	if err := c.launch("etcd"); err != nil {
		return err
	}
	url := fmt.Sprintf("http://127.0.0.1:%d/health", c.ports.etcdClient)
	return c.procs["etcd"].waitFor(ctx, "healthy", func(ctx context.Context) error {
		return httpOK(ctx, http.DefaultClient, url, `"health":"true"`)
	})
}

func (c *Cluster) startAPIServer(ctx context.Context) error {
	if err := c.launch("kube-apiserver"); err != nil {
		return err
	}
	return c.waitAPIServer(ctx)
}

func (c *Cluster) waitAPIServer(ctx context.Context) error {
	httpClient, err := rest.HTTPClientFor(c.RESTConfig)
	if err != nil {
		return fmt.Errorf("local cluster: http client: %w", err)
	}
	c.mu.Lock()
	p := c.procs["kube-apiserver"]
	c.mu.Unlock()
	return p.waitFor(ctx, "ready", func(ctx context.Context) error {
		return httpOK(ctx, httpClient, c.Server+"/readyz", "ok")
	})
}

// healthz checks a component's /healthz on its self-signed secure port.
func healthz(port int) func(context.Context) error {
	client := &http.Client{
		Timeout:   2 * time.Second,
		Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}, //nolint:gosec // loopback health check of a self-signed component
	}
	url := fmt.Sprintf("https://127.0.0.1:%d/healthz", port)
	return func(ctx context.Context) error { return httpOK(ctx, client, url, "ok") }
}

// httpOK GETs url and expects status 200 and a body containing want.
func httpOK(ctx context.Context, client *http.Client, url, want string) error {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close() //nolint:errcheck // read-only probe
	scanner := bufio.NewScanner(resp.Body)
	var body strings.Builder
	for scanner.Scan() && body.Len() < 4096 {
		body.WriteString(scanner.Text())
		body.WriteByte('\n')
	}
	if resp.StatusCode != http.StatusOK || !strings.Contains(body.String(), want) {
		return fmt.Errorf("GET %s: %s: %s", url, resp.Status, strings.TrimSpace(body.String()))
	}
	return nil
}

// Run starts another program as part of the cluster (FlowForge's webhook or
// controller, for `make up`): it logs to <Dir>/<name>.log, dies with this
// process, and is stopped by Stop before the control plane.
func (c *Cluster) Run(ctx context.Context, name, bin string, args []string, ready func(context.Context) error) error {
	c.mu.Lock()
	c.specs[name] = componentSpec{bin: bin, args: args}
	c.mu.Unlock()
	if err := c.launch(name); err != nil {
		return err
	}
	if ready == nil {
		return nil
	}
	c.mu.Lock()
	p := c.procs[name]
	c.mu.Unlock()
	return p.waitFor(ctx, "ready", ready)
}

// HTTPReady is a readiness check for Run: GET url answers 200.
func HTTPReady(url string) func(context.Context) error {
	return func(ctx context.Context) error { return httpOK(ctx, http.DefaultClient, url, "") }
}
