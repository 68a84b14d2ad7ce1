// Command flowforge-controller runs FlowForge's companion controller: job
// history, cancellation, pending timeouts, export before TTL cleanup, log
// shipping, events and metrics. See package controller.
package main

import (
	"flag"
	"fmt"
	"net"
	"os"
	"runtime/debug"
	"strconv"
	"time"

	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"

	"github.com/flowforge/flowforge/controller"
)

func main() {
	var opts controller.Options
	flag.StringVar(&opts.MetricsAddr, "metrics-bind-address", ":8080", "address of /metrics (\"0\" disables it)")
	flag.StringVar(&opts.ProbeAddr, "health-probe-bind-address", ":8081", "address of /healthz and /readyz")
	flag.StringVar(&opts.HistoryAddr, "history-bind-address", "0", "loopback address (127.0.0.1:PORT) of an unauthenticated HTTP view of the history, for debugging (\"0\" disables it); users read the history through the API server")
	historyPort := flag.Int("history-secure-port", 8443, "HTTPS port of the aggregated history API, history.flowforge.io (0 disables it)")
	historyHost := flag.String("history-secure-bind-address", "", "IP address the aggregated history API listens on (default: every interface)")
	flag.StringVar(&opts.HistoryCertDir, "history-cert-dir", "/etc/flowforge/history-tls", "directory of the history API's serving certificate (tls.crt, tls.key; reloaded when they change)")
	flag.StringVar(&opts.Database, "database", "/var/lib/flowforge/history.db", "execution history store: a postgres://user@host:port/db?sslmode=... URL (password from $PGPASSWORD or a passfile), or else the path of an SQLite file")
	flag.DurationVar(&opts.HistoryRetention, "history-retention", 30*24*time.Hour, "remove history records (with their logs) created longer ago, once their Job is gone from the cluster (0 keeps them)")
	flag.Int64Var(&opts.HistoryMaxArchiveBytes, "history-max-archive-bytes", 0, "cap on the total size of the archived logs: beyond it the oldest records' logs are removed (the records stay; 0: no cap)")
	flag.DurationVar(&opts.HistoryPruneInterval, "history-prune-interval", 10*time.Minute, "how often retention prunes the history and updates the store size metrics")
	flag.StringVar(&opts.PolicyDir, "policy-dir", "", "read policy data (pending timeout, finalizer names) from this directory instead of the embedded policies")
	flag.BoolVar(&opts.LeaderElection, "leader-elect", true, "use leader election, so that one replica is active")
	flag.StringVar(&opts.LeaderElectionNamespace, "leader-election-namespace", "", "namespace of the leader election lease (default: the pod's namespace)")
	flag.StringVar(&opts.LeaderElectionID, "leader-election-id", "flowforge-controller", "name of the leader election lease")
	flag.DurationVar(&opts.LeaseDuration, "leader-elect-lease-duration", 15*time.Second, "how long standby replicas wait after the leader's last renewal before taking the lease (a killed leader is replaced after about this plus up to two retry periods)")
	flag.DurationVar(&opts.RenewDeadline, "leader-elect-renew-deadline", 10*time.Second, "how long the leader retries renewing before it gives up leadership (and exits); shorter than the lease duration")
	flag.DurationVar(&opts.RetryPeriod, "leader-elect-retry-period", 2*time.Second, "how often candidates try to acquire, and the leader to renew, the lease")
	flag.StringVar(&opts.ClaimNamespace, "claim-namespace", "flowforge-system", "namespace of the records of exported Jobs' job-ids, which the webhook reads")
	flag.Int64Var(&opts.LogArchiveLimit, "log-archive-max-bytes", 10<<20, "cap on each container's archived log; longer logs are truncated and marked")
	flag.DurationVar(&opts.ExportGrace, "export-grace", 2*time.Minute, "how long to wait for a finished Job's terminating pods before exporting without them")
	flag.DurationVar(&opts.UsageInterval, "usage-sample-interval", controller.DefaultUsageInterval, "how often running attempts' CPU and memory are read from metrics.k8s.io (when served) for their peaks in the history (negative: never)")
	qps := flag.Float64("kube-api-qps", 200, "API requests per second")
	flag.IntVar(&opts.Burst, "kube-api-burst", 400, "API request burst")
	flag.IntVar(&opts.ConcurrentReconciles, "concurrent-reconciles", 32, "Jobs reconciled at once (exports mostly wait on the API server)")
	flag.BoolVar(&opts.Profiling, "enable-profiling", false, "serve net/http/pprof under /debug/pprof/ on the metrics address")
	gcPercent := flag.Int("gc-percent", 15, "Go GC target percentage, unless $GOGC is set: the live heap (the cache of Jobs and pods in flight) is most of the memory, so a lower target than Go's 100 keeps the peak down for a little more CPU (the controller uses a fifth of a core at 5,000 Jobs); GOMEMLIMIT (set from the container limit) still caps it")
	shipStdout := flag.Bool("ship-logs-to-stdout", true, "ship job pod log lines as JSON to stdout, where cluster log agents collect them")
	zapOpts := zap.Options{}
	zapOpts.BindFlags(flag.CommandLine)
	flag.Parse()

	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(*gcPercent)
	}

	// The controller's own logs go to stderr; stdout carries shipped job logs.
	log := zap.New(zap.UseFlagOptions(&zapOpts), zap.WriteTo(os.Stderr))
	ctrl.SetLogger(log)
	opts.QPS = float32(*qps)
	opts.HistoryAPIAddr = "0"
	if *historyPort != 0 {
		opts.HistoryAPIAddr = net.JoinHostPort(*historyHost, strconv.Itoa(*historyPort))
	}
	if *shipStdout {
		opts.LogSink = os.Stdout
	}
	cfg, err := ctrl.GetConfig()
	if err != nil {
		fmt.Fprintf(os.Stderr, "flowforge-controller: %v\n", err)
		os.Exit(1)
	}
	if err := controller.Run(ctrl.SetupSignalHandler(), cfg, opts, log); err != nil {
		log.Error(err, "Controller failed")
		os.Exit(1)
	}
}
