package framework

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/flowforge/flowforge/deploy"
	"github.com/flowforge/flowforge/test/localcluster"
)

// ControllerProcess is cmd/flowforge-controller running as its own OS
// process, so that a test can kill it the way a node or the kernel does
// (SIGKILL: no deferred cleanup, no lease release).
type ControllerProcess struct {
	Name       string
	MetricsURL string
	ProbeURL   string
	// HistoryURL is the loopback debugging view of the history (plain
	// HTTP), HistoryAPIURL the aggregated history API (HTTPS, when
	// ControllerProcessOptions.HistoryCertDir is set).
	HistoryURL    string
	HistoryAPIURL string
	// LogPath holds the controller's own log (stderr); ShippedPath the
	// job log lines it ships (stdout).
	LogPath     string
	ShippedPath string
	leaseName   string
	cmd         *exec.Cmd
	exited      chan struct{}
	waitErr     error
}

// ControllerProcessOptions configure StartControllerProcess.
type ControllerProcessOptions struct {
	// Binary is the flowforge-controller program (see BuildController).
	Binary string
	// Name tells the process's files apart in Dir.
	Name string
	// Dir receives the kubeconfig and the logs.
	Dir string
	// Database is the store: a SQLite file or a postgres:// URL.
	Database string
	// LeaderElectionID is the Lease's name in flowforge-system (leader
	// election is always on).
	LeaderElectionID string
	// LeaseDuration, RenewDeadline and RetryPeriod tune the election
	// (zero: the program's defaults).
	LeaseDuration time.Duration
	RenewDeadline time.Duration
	RetryPeriod   time.Duration
	// HistoryCertDir holds tls.crt and tls.key for the aggregated history
	// API (served on HistoryAPIURL); "" turns that API off.
	HistoryCertDir string
	// HistoryAPIPort is the aggregated history API's port (on every
	// interface, as --history-secure-port does; default a free one).
	HistoryAPIPort int
	// Args are extra flags.
	Args []string
}

// BuildController builds cmd/flowforge-controller into dir and returns its
// path: the test runs the code of the tree, not a stale bin/.
func BuildController(ctx context.Context, dir string) (string, error) {
	out := filepath.Join(dir, "flowforge-controller")
	cmd := exec.CommandContext(ctx, "go", "build", "-o", out, "github.com/flowforge/flowforge/cmd/flowforge-controller")
	if msg, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("build flowforge-controller: %w\n%s", err, msg)
	}
	return out, nil
}

// ServiceAccountKubeconfig applies deploy/rbac.yaml and writes a kubeconfig
// to path that acts as one of FlowForge's service accounts (the admin's
// certificate, impersonating the account), for programs run as processes.
func ServiceAccountKubeconfig(ctx context.Context, c *localcluster.Cluster, serviceAccount, path string) error {
	if _, err := ServiceAccountConfig(ctx, c, serviceAccount); err != nil {
		return err
	}
	cfg, err := clientcmd.LoadFromFile(c.KubeconfigPath)
	if err != nil {
		return fmt.Errorf("read %s: %w", c.KubeconfigPath, err)
	}
	user, groups := deploy.ServiceAccountUser(serviceAccount)
	for _, auth := range cfg.AuthInfos {
		auth.Impersonate = user
		auth.ImpersonateGroups = groups
	}
	if err := clientcmd.WriteToFile(*cfg, path); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}

// StartControllerProcess runs the controller program with leader election
// against the cluster, as its service account, and waits until it is
// healthy (which a standby replica is too: it does not wait to lead).
func StartControllerProcess(ctx context.Context, c *localcluster.Cluster, opts ControllerProcessOptions) (*ControllerProcess, error) {
	if opts.Binary == "" || opts.Dir == "" || opts.Name == "" || opts.Database == "" || opts.LeaderElectionID == "" {
		return nil, errors.New("controller process: Binary, Dir, Name, Database and LeaderElectionID are required")
	}
	kubeconfig := filepath.Join(opts.Dir, opts.Name+".kubeconfig")
	if err := ServiceAccountKubeconfig(ctx, c, deploy.ControllerServiceAccount, kubeconfig); err != nil {
		return nil, err
	}
	ports, err := localcluster.FreePorts(4)
	if err != nil {
		return nil, err
	}
	if opts.HistoryAPIPort != 0 {
		ports[3] = opts.HistoryAPIPort
	}
	historyAPI := []string{"--history-secure-port=0"}
	if opts.HistoryCertDir != "" {
		historyAPI = []string{fmt.Sprintf("--history-secure-port=%d", ports[3]), "--history-cert-dir=" + opts.HistoryCertDir}
	}
	args := []string{
		"--kubeconfig=" + kubeconfig,
		"--database=" + opts.Database,
		fmt.Sprintf("--metrics-bind-address=127.0.0.1:%d", ports[0]),
		fmt.Sprintf("--health-probe-bind-address=127.0.0.1:%d", ports[1]),
		fmt.Sprintf("--history-bind-address=127.0.0.1:%d", ports[2]),
		// No aggregated history API (it needs a serving certificate and a
		// Service): the processes are read through the loopback view.
		"--history-secure-port=0",
		"--leader-elect=true",
		"--leader-election-namespace=" + deploy.Namespace,
		"--leader-election-id=" + opts.LeaderElectionID,
		"--export-grace=30s",
	}
	for flag, d := range map[string]time.Duration{
		"leader-elect-lease-duration": opts.LeaseDuration,
		"leader-elect-renew-deadline": opts.RenewDeadline,
		"leader-elect-retry-period":   opts.RetryPeriod,
	} {
		if d > 0 {
			args = append(args, "--"+flag+"="+d.String())
		}
	}
	args = append(append(args, historyAPI...), opts.Args...)
	p := &ControllerProcess{
		Name:          opts.Name,
		MetricsURL:    fmt.Sprintf("http://127.0.0.1:%d/metrics", ports[0]),
		ProbeURL:      fmt.Sprintf("http://127.0.0.1:%d", ports[1]),
		HistoryURL:    fmt.Sprintf("http://127.0.0.1:%d", ports[2]),
		HistoryAPIURL: fmt.Sprintf("https://127.0.0.1:%d", ports[3]),
		LogPath:       filepath.Join(opts.Dir, opts.Name+".log"),
		ShippedPath:   filepath.Join(opts.Dir, opts.Name+".shipped"),
		leaseName:     opts.LeaderElectionID,
		exited:        make(chan struct{}),
	}
	logFile, err := os.Create(p.LogPath)
	if err != nil {
		return nil, err
	}
	shipped, err := os.Create(p.ShippedPath)
	if err != nil {
		_ = logFile.Close()
		return nil, err
	}
	// Not CommandContext: the process outlives ctx, until Stop or Kill.
	p.cmd = exec.Command(opts.Binary, args...) //nolint:gosec // the program under test
	p.cmd.Stdout, p.cmd.Stderr = shipped, logFile
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL, Setpgid: true}
	if err := p.cmd.Start(); err != nil {
		_ = logFile.Close()
		_ = shipped.Close()
		return nil, fmt.Errorf("start %s: %w", opts.Binary, err)
	}
	go func() {
		p.waitErr = p.cmd.Wait()
		_ = logFile.Close()
		_ = shipped.Close()
		close(p.exited)
	}()
	// Healthy, and serving its metrics: the two servers start apart, and a
	// test that reads the leader gauge at once (IsLeader) found the metrics
	// port still closed (connection refused) once the probe answered.
	err = wait.PollUntilContextTimeout(ctx, 50*time.Millisecond, DefaultTimeout, true, func(ctx context.Context) (bool, error) {
		if !p.Running() {
			return false, errors.New("exited before it was healthy")
		}
		for _, url := range []string{p.ProbeURL + "/healthz", p.MetricsURL} {
			req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				return false, nil
			}
			_ = resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				return false, nil
			}
		}
		return true, nil
	})
	if err != nil {
		p.Kill()
		return nil, fmt.Errorf("%w: %w", err, p.failure("was not healthy"))
	}
	return p, nil
}

// HistoryAPIPort is the port of the aggregated history API.
func (p *ControllerProcess) HistoryAPIPort() int {
	_, port, _ := strings.Cut(strings.TrimPrefix(p.HistoryAPIURL, "https://"), ":")
	n, _ := strconv.Atoi(port)
	return n
}

// Running reports whether the process has not exited.
func (p *ControllerProcess) Running() bool {
	select {
	case <-p.exited:
		return false
	default:
		return true
	}
}

// Pid is the process id.
func (p *ControllerProcess) Pid() int { return p.cmd.Process.Pid }

// Kill sends SIGKILL and waits until the process is gone.
func (p *ControllerProcess) Kill() {
	if p.Running() {
		_ = p.cmd.Process.Signal(syscall.SIGKILL)
	}
	<-p.exited
}

// Stop sends SIGTERM (the controller releases its lease and exits) and
// kills the process if it has not exited after 20s.
func (p *ControllerProcess) Stop() {
	if p.Running() {
		_ = p.cmd.Process.Signal(syscall.SIGTERM)
	}
	select {
	case <-p.exited:
	case <-time.After(20 * time.Second):
		p.Kill()
	}
}

// IsLeader reports whether the process leads (controller-runtime's
// leader_election_master_status gauge for its lease is 1).
func (p *ControllerProcess) IsLeader(ctx context.Context) (bool, error) {
	v, err := ScrapeMetric(ctx, p.MetricsURL, `leader_election_master_status{name="`+p.leaseName+`"}`)
	if err != nil {
		if strings.Contains(err.Error(), "not found") {
			return false, nil // a standby has not set the gauge
		}
		return false, err
	}
	return v == 1, nil
}

// Reconciles is how many reconciles the process's controllers have
// finished, whatever their result (controller_runtime_reconcile_total).
func (p *ControllerProcess) Reconciles(ctx context.Context) (float64, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, p.MetricsURL, nil)
	if err != nil {
		return 0, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close() //nolint:errcheck // read-only
	var total float64
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, "controller_runtime_reconcile_total{") {
			continue
		}
		v, err := strconv.ParseFloat(line[strings.LastIndexByte(line, ' ')+1:], 64)
		if err != nil {
			return 0, fmt.Errorf("%s: %q: %w", p.MetricsURL, line, err)
		}
		total += v
	}
	return total, sc.Err()
}

// LogTail returns the last n lines of the controller's own log.
func (p *ControllerProcess) LogTail(n int) string {
	data, err := os.ReadFile(p.LogPath)
	if err != nil {
		return fmt.Sprintf("(cannot read the log: %v)", err)
	}
	lines := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// failure describes why the process failed, with its log's tail.
func (p *ControllerProcess) failure(what string) error {
	status := "running"
	if !p.Running() {
		status = fmt.Sprintf("exited: %v", p.waitErr)
	}
	return fmt.Errorf("controller %s %s (%s)\n--- last lines of %s ---\n%s", p.Name, what, status, p.LogPath, p.LogTail(30))
}
