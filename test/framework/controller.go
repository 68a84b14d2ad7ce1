package framework

import (
	"bytes"
	"cmp"
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/go-logr/logr"
	"k8s.io/apimachinery/pkg/util/wait"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"

	"github.com/flowforge/flowforge/controller"
	"github.com/flowforge/flowforge/deploy"
	"github.com/flowforge/flowforge/test/localcluster"
)

// Controller is FlowForge's controller running in the test process.
type Controller struct {
	HistoryURL string
	// HistoryAPI is where the aggregated history API is served (nil with
	// ControllerOptions.NoHistoryAPI); read it through the API server.
	HistoryAPI *HistoryAPI
	MetricsURL string
	Database   string
	// Shipped collects the log lines the controller ships.
	Shipped *SyncBuffer
	stop    context.CancelFunc
	done    chan error
}

// ControllerOptions configure StartController.
type ControllerOptions struct {
	// Database is the SQLite file or a postgres:// URL (test/postgres);
	// default a new SQLite file in a temp dir.
	Database   string
	PolicyDir  string
	ExportHook func(step string) error
	Log        *logr.Logger
	// LeaderElectionID names the Lease (default
	// "flowforge-controller-test"): controllers that share it form one
	// group, one leader and standbys.
	LeaderElectionID string
	// LeaseDuration, RenewDeadline and RetryPeriod tune leader election
	// (zero: controller-runtime's defaults).
	LeaseDuration, RenewDeadline, RetryPeriod time.Duration
	// HistoryRetention, HistoryMaxArchiveBytes and HistoryPruneInterval
	// configure history retention (zero: keep everything; prune every 10m).
	HistoryRetention       time.Duration
	HistoryMaxArchiveBytes int64
	HistoryPruneInterval   time.Duration
	// NoHistoryAPI leaves the aggregated history API out (by default the
	// controller serves it and it is registered with the API server).
	NoHistoryAPI bool
	// UsageInterval is how often running attempts' usage is sampled from
	// metrics.k8s.io (zero: the controller's default).
	UsageInterval time.Duration
	// ExportedSweepInterval is how often the exported Jobs the cache
	// leaves out are listed for their TTL (zero: the controller's default).
	ExportedSweepInterval time.Duration
}

// StartController runs the controller (the same code as
// cmd/flowforge-controller, with leader election, as its service account
// with deploy/rbac.yaml's rights) against the cluster and waits until its
// history API answers.
func StartController(ctx context.Context, c *localcluster.Cluster, opts ControllerOptions) (*Controller, error) {
	if opts.Database == "" {
		dir, err := os.MkdirTemp("", "flowforge-history-")
		if err != nil {
			return nil, err
		}
		opts.Database = filepath.Join(dir, "history.db")
	}
	ports, err := localcluster.FreePorts(3)
	if err != nil {
		return nil, err
	}
	cfg, err := ServiceAccountConfig(ctx, c, deploy.ControllerServiceAccount)
	if err != nil {
		return nil, err
	}
	log := zap.New(zap.WriteTo(os.Stderr))
	if opts.Log != nil {
		log = *opts.Log
	}
	var hist *HistoryAPI
	var histListener net.Listener
	histCertDir := ""
	if !opts.NoHistoryAPI {
		if hist, err = PrepareHistoryAPI(c); err != nil {
			return nil, err
		}
		if histListener, err = hist.Listen(ctx); err != nil {
			return nil, err
		}
		if err := hist.Register(ctx, c); err != nil {
			_ = histListener.Close()
			return nil, err
		}
		histCertDir = hist.CertDir
	}
	runCtx, cancel := context.WithCancel(context.Background())
	ctl := &Controller{
		HistoryAPI: hist,
		HistoryURL: fmt.Sprintf("http://127.0.0.1:%d", ports[0]),
		MetricsURL: fmt.Sprintf("http://127.0.0.1:%d/metrics", ports[1]),
		Database:   opts.Database,
		Shipped:    &SyncBuffer{},
		stop:       cancel,
		done:       make(chan error, 1),
	}
	go func() {
		ctl.done <- controller.Run(runCtx, cfg, controller.Options{
			HistoryAddr:             fmt.Sprintf("127.0.0.1:%d", ports[0]),
			MetricsAddr:             fmt.Sprintf("127.0.0.1:%d", ports[1]),
			ProbeAddr:               fmt.Sprintf("127.0.0.1:%d", ports[2]),
			Database:                opts.Database,
			PolicyDir:               opts.PolicyDir,
			LeaderElection:          true,
			LeaderElectionNamespace: deploy.Namespace,
			LeaderElectionID:        cmp.Or(opts.LeaderElectionID, "flowforge-controller-test"),
			LeaseDuration:           opts.LeaseDuration,
			RenewDeadline:           opts.RenewDeadline,
			RetryPeriod:             opts.RetryPeriod,
			HistoryRetention:        opts.HistoryRetention,
			HistoryMaxArchiveBytes:  opts.HistoryMaxArchiveBytes,
			HistoryPruneInterval:    opts.HistoryPruneInterval,
			ExportGrace:             30 * time.Second,
			LogSink:                 ctl.Shipped,
			ExportHook:              opts.ExportHook,
			SkipNameValidation:      true,
			HistoryAPIListener:      histListener,
			HistoryCertDir:          histCertDir,
			UsageInterval:           opts.UsageInterval,
			ExportedSweepInterval:   opts.ExportedSweepInterval,
		}, log)
	}()
	err = wait.PollUntilContextTimeout(ctx, 50*time.Millisecond, DefaultTimeout, true, func(ctx context.Context) (bool, error) {
		select {
		case err := <-ctl.done:
			return false, fmt.Errorf("controller exited: %w", err)
		default:
		}
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, ctl.HistoryURL+"/healthz", nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return false, nil
		}
		_ = resp.Body.Close()
		return resp.StatusCode == http.StatusOK, nil
	})
	if err == nil && hist != nil {
		err = WaitHistoryAPI(ctx, c)
	}
	if err != nil {
		ctl.Stop()
		return nil, err
	}
	return ctl, nil
}

// Stop stops the controller and waits for it.
func (c *Controller) Stop() {
	c.stop()
	select {
	case <-c.done:
	case <-time.After(20 * time.Second):
	}
}

// Done is closed with the controller's exit error when it stops.
func (c *Controller) Done() <-chan error { return c.done }

// SyncBuffer is a bytes.Buffer safe for concurrent writers and readers.
type SyncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

// Write appends p.
func (b *SyncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

// Lines returns the lines written so far.
func (b *SyncBuffer) Lines() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	s := strings.TrimSpace(b.buf.String())
	if s == "" {
		return nil
	}
	return strings.Split(s, "\n")
}

// ScrapeMetric returns the value of one sample of a metrics endpoint, by
// its exact text before the value (name and labels), or an error.
func ScrapeMetric(ctx context.Context, url, sample string) (float64, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return 0, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close() //nolint:errcheck // read-only
	var body bytes.Buffer
	if _, err := body.ReadFrom(resp.Body); err != nil {
		return 0, err
	}
	for _, line := range strings.Split(body.String(), "\n") {
		if rest, ok := strings.CutPrefix(line, sample+" "); ok {
			var v float64
			if _, err := fmt.Sscanf(rest, "%g", &v); err != nil {
				return 0, fmt.Errorf("sample %s: %w", sample, err)
			}
			return v, nil
		}
	}
	return 0, fmt.Errorf("sample %s not found at %s", sample, url)
}
