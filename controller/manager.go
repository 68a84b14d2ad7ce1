package controller

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/pprof"
	"path/filepath"
	"time"

	"github.com/go-logr/logr"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	corev1client "k8s.io/client-go/kubernetes/typed/core/v1"
	"k8s.io/client-go/rest"
	toolscache "k8s.io/client-go/tools/cache"
	"k8s.io/utils/clock"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/config"
	"sigs.k8s.io/controller-runtime/pkg/healthz"
	"sigs.k8s.io/controller-runtime/pkg/manager"
	crmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	historystore "github.com/flowforge/flowforge/history/store"
	"github.com/flowforge/flowforge/internal/metrics"
	"github.com/flowforge/flowforge/policies"
)

// Options configure the controller program.
type Options struct {
	MetricsAddr string
	ProbeAddr   string
	// HistoryAddr serves the unauthenticated HTTP view of the history,
	// for debugging, on a loopback address only ("" or "0" disables it).
	HistoryAddr string
	// HistoryAPIAddr serves the aggregated history API
	// (history.flowforge.io, history/apiserver) over HTTPS, on every
	// replica ("" or "0" disables it); HistoryAPIListener, if set, is
	// used instead (tests listen on a local cluster's clusterIP).
	HistoryAPIAddr     string
	HistoryAPIListener net.Listener
	// HistoryCertDir holds the history API's serving certificate, tls.crt
	// and tls.key (reloaded when they change).
	HistoryCertDir string
	// Database is the execution history store: a postgres:// URL, or
	// else the path of an SQLite file (see historystore.Open).
	Database string
	// HistoryRetention removes history records created longer ago, and
	// HistoryMaxArchiveBytes caps the log archives' total size (zero: keep
	// all), every HistoryPruneInterval (see Retention).
	HistoryRetention       time.Duration
	HistoryMaxArchiveBytes int64
	HistoryPruneInterval   time.Duration
	// PolicyDir replaces the embedded policies (for the pending timeout and
	// finalizer names) and is watched for changes.
	PolicyDir string
	// ClaimNamespace holds the records of exported Jobs' job-ids (see
	// Claims; default policies.DefaultClaimNamespace).
	ClaimNamespace string
	// LeaderElection and its namespace and lease name.
	LeaderElection          bool
	LeaderElectionNamespace string
	LeaderElectionID        string
	// LeaseDuration, RenewDeadline and RetryPeriod tune leader election
	// (zero: controller-runtime's 15s, 10s and 2s). A standby replica takes
	// over about LeaseDuration plus up to two RetryPeriods after the leader
	// dies without releasing the lease; see docs/operations.md.
	LeaseDuration time.Duration
	RenewDeadline time.Duration
	RetryPeriod   time.Duration
	// QPS and Burst limit the controller's API requests (defaults 200, 400).
	QPS   float32
	Burst int
	// ConcurrentReconciles is how many Jobs are reconciled at once (default 32).
	ConcurrentReconciles int
	// LogArchiveLimit caps each container's archived log (bytes).
	LogArchiveLimit int64
	// ExportGrace: see Settings.
	ExportGrace time.Duration
	// LogSink receives shipped log lines as JSON (default: discard).
	LogSink io.Writer
	// SkipNameValidation lets one process run the controller more than
	// once (tests that restart it); controller-runtime otherwise refuses
	// a second controller of the same name.
	SkipNameValidation bool
	// Profiling serves net/http/pprof under /debug/pprof/ on the metrics
	// address (opt-in: profiles show memory contents' shapes, not values,
	// but cost CPU while taken).
	Profiling bool
	// ExportHook, if set, is called between export steps ("archived",
	// "recorded"); an error aborts the export there. Tests use it to stop
	// the controller mid-export.
	ExportHook func(step string) error
	// UsageInterval is how often each running attempt's CPU and memory is
	// sampled from metrics.k8s.io, when served, for its peaks in the
	// history (zero: DefaultUsageInterval; negative: never).
	UsageInterval time.Duration
	// ExportedSweepInterval is the longest wait between two lists of the
	// exported Jobs that the cache leaves out (ExportedSweeper; zero:
	// DefaultExportedSweepInterval).
	ExportedSweepInterval time.Duration
}

// Run starts the controller and blocks until ctx ends.
func Run(ctx context.Context, cfg *rest.Config, opts Options, log logr.Logger) error {
	cfg = rest.CopyConfig(cfg)
	cfg.QPS, cfg.Burst = opts.QPS, opts.Burst
	if cfg.QPS <= 0 {
		cfg.QPS = 200
	}
	if cfg.Burst <= 0 {
		cfg.Burst = 400
	}
	if opts.ConcurrentReconciles <= 0 {
		opts.ConcurrentReconciles = 32
	}
	if err := checkLeaderElection(opts); err != nil {
		return err
	}
	// The controller reads the policy's settings only (data.flowforge.config),
	// never evaluates it: loading the Config alone spares it compiling the
	// Rego and running its tests (tens of MiB at start, and the compiled
	// policy for good); the webhook's load is what refuses a failing policy.
	policyConfig, err := policies.NewConfigSource(policies.ConfigSourceOptions{Dir: opts.PolicyDir, Log: log.WithName("policy"), Recorder: metrics.PolicyRecorder{}})
	if err != nil {
		return err
	}
	opened, err := historystore.Open(ctx, opts.Database)
	if err != nil {
		return err
	}
	defer opened.Close() //nolint:errcheck // closing on the way out
	// Failed writes are counted for the store-full alert; the export
	// retries them with the workqueue's backoff.
	store := historystore.Instrumented{Store: opened, OnError: func(op string, _ error) {
		metrics.HistoryStoreErrors.WithLabelValues(op).Inc()
	}}

	scheme := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(scheme); err != nil {
		return fmt.Errorf("build scheme: %w", err)
	}
	// The cache holds the Jobs and Pods the policy selects (policy data
	// selector), but not those labelled exported (exported.go): both
	// labels are read once, a changed one applies at the next start.
	base := SettingsFrom(policyConfig, opts)
	exportedLabel := base().ExportedLabel
	settings := func() Settings {
		s := base()
		s.ExportedLabel = exportedLabel
		return s
	}
	selector, err := CacheSelector(settings())
	if err != nil {
		return err
	}
	// Jobs exported with every pod ended are cached as stubs (ExportedJobs).
	exported := &ExportedJobs{}
	mgr, err := ctrl.NewManager(cfg, ctrl.Options{
		Scheme:                  scheme,
		Logger:                  log,
		Metrics:                 metricsserver.Options{BindAddress: opts.MetricsAddr, ExtraHandlers: profilingHandlers(opts.Profiling)},
		HealthProbeBindAddress:  opts.ProbeAddr,
		LeaderElection:          opts.LeaderElection,
		LeaderElectionNamespace: opts.LeaderElectionNamespace,
		LeaderElectionID:        opts.LeaderElectionID,
		// Run returns once the manager has stopped, so handing the lease
		// over at once is safe and makes a rolling update quick.
		LeaderElectionReleaseOnCancel: true,
		LeaseDuration:                 positive(opts.LeaseDuration),
		RenewDeadline:                 positive(opts.RenewDeadline),
		RetryPeriod:                   positive(opts.RetryPeriod),
		Controller:                    config.Controller{SkipNameValidation: &opts.SkipNameValidation},
		Cache: cache.Options{
			ByObject: map[client.Object]cache.ByObject{
				// Only what the controller reads (transform.go): the pod
				// template of a Job and the spec of a Pod are most of their
				// size, and nothing reads them; of an exported Job and its
				// ended pods, less still (StubJob, StubPod).
				&batchv1.Job{}: {Label: selector, Transform: JobTransform(exported)},
				&corev1.Pod{}:  {Label: selector, Transform: PodTransform(exported)},
				// Job events are not cached here: JobEventBook keeps what
				// the export copies of them, by Job, and forgets an
				// exported Job's.
			},
			DefaultTransform: cache.TransformStripManagedFields(),
		},
	})
	if err != nil {
		return fmt.Errorf("create manager: %w", err)
	}
	clientset, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return fmt.Errorf("create clientset: %w", err)
	}
	// The events about Jobs, for the export (JobEventBook), listed and
	// watched as protobuf like the manager's cache.
	eventsCfg := rest.CopyConfig(cfg)
	eventsCfg.ContentType = runtime.ContentTypeProtobuf
	eventsCfg.AcceptContentTypes = runtime.ContentTypeProtobuf + "," + runtime.ContentTypeJSON
	eventsClient, err := corev1client.NewForConfig(eventsCfg)
	if err != nil {
		return fmt.Errorf("create the events client: %w", err)
	}
	jobEvents := NewJobEventBook(exported.Has)
	jobEventsLW := toolscache.NewFilteredListWatchFromClient(eventsClient.RESTClient(), "events", metav1.NamespaceAll, func(o *metav1.ListOptions) {
		o.FieldSelector = JobEventSelector().String()
	})
	clk := clock.RealClock{}
	sweeper := &ExportedSweeper{Reader: mgr.GetAPIReader(), Settings: settings, Clock: clk, Log: log.WithName("exported")}
	if err := metrics.RegisterController(crmetrics.Registry, newStateCollector(mgr.GetCache(), clk, settings().JobFinalizer, sweeper.Counts)); err != nil {
		return err
	}
	sink := opts.LogSink
	if sink == nil {
		sink = io.Discard
	}
	// Events are written straight to the API server (EventWriter), not
	// through client-go's broadcaster, which keeps every event for 6-12
	// minutes.
	eventWriter := NewEventWriter(clientset.EventsV1(), scheme, "flowforge-controller", clk, log.WithName("events"), EventWriterOptions{})
	logs := ClientsetLogs{Clientset: clientset}
	shipper := &Shipper{Logs: logs, Sink: NewJSONSink(sink), Store: store, Clock: clk, Log: log.WithName("logs")}
	r := &Reconciler{
		Client:        mgr.GetClient(),
		JobEvents:     jobEvents,
		PodEvents:     mgr.GetAPIReader(),
		Store:         store,
		Recorder:      eventWriter,
		Clock:         clk,
		Logs:          logs,
		Shipper:       shipper,
		Settings:      settings,
		Claims:        &Claims{Client: mgr.GetClient(), Namespace: opts.ClaimNamespace},
		Exported:      exported,
		APIReader:     mgr.GetAPIReader(),
		SweepInterval: opts.ExportedSweepInterval,
		hook:          opts.ExportHook,
	}
	sweeper.Reconciler = r
	if r.Claims.Namespace == "" {
		r.Claims.Namespace = policies.DefaultClaimNamespace
	}
	if err := mgr.Add(manager.RunnableFunc(func(ctx context.Context) error {
		return jobEvents.RunReflector(ctx, jobEventsLW)
	})); err != nil {
		return fmt.Errorf("add the Job event reflector: %w", err)
	}
	if err := IndexPods(ctx, mgr.GetFieldIndexer()); err != nil {
		return err
	}
	jobInformer, err := mgr.GetCache().GetInformer(ctx, &batchv1.Job{})
	if err != nil {
		return fmt.Errorf("get the Job informer: %w", err)
	}
	if _, err := jobInformer.AddEventHandler(toolscache.ResourceEventHandlerFuncs{DeleteFunc: func(obj any) {
		exported.Forget(obj)
		r.Forget(obj)
		if d, ok := obj.(toolscache.DeletedFinalStateUnknown); ok {
			obj = d.Obj
		}
		if o, ok := obj.(client.Object); ok {
			jobEvents.Forget(o.GetUID())
		}
	}}); err != nil {
		return fmt.Errorf("watch Job deletions: %w", err)
	}
	podInformer, err := mgr.GetCache().GetInformer(ctx, &corev1.Pod{})
	if err != nil {
		return fmt.Errorf("get the Pod informer: %w", err)
	}
	if _, err := podInformer.AddEventHandler(toolscache.ResourceEventHandlerFuncs{DeleteFunc: r.Forget}); err != nil {
		return fmt.Errorf("watch Pod deletions: %w", err)
	}
	if err := r.SetupWithManager(mgr, opts.ConcurrentReconciles); err != nil {
		return fmt.Errorf("set up reconciler: %w", err)
	}
	retention := &Retention{
		Store: store, Jobs: mgr.GetClient(),
		ClaimReader: mgr.GetAPIReader(), ClaimWriter: mgr.GetClient(), ClaimNamespace: r.Claims.Namespace,
		Clock: clk, Log: log.WithName("retention"), ExportedJobs: sweeper.UIDs,
		MaxAge: opts.HistoryRetention, MaxArchiveBytes: opts.HistoryMaxArchiveBytes, Interval: opts.HistoryPruneInterval,
	}
	if sqlite, ok := opened.(*historystore.SQLite); ok && sqlite.Path() != ":memory:" {
		retention.VolumePath = filepath.Dir(sqlite.Path())
	}
	if r.Usage, err = newUsageSampler(cfg, opts.UsageInterval, mgr.GetClient(), settings, clk, log.WithName("usage")); err != nil {
		return err
	}
	if r.Usage != nil {
		if err := mgr.Add(r.Usage); err != nil {
			return fmt.Errorf("add usage sampler: %w", err)
		}
	}
	for _, runnable := range []manager.Runnable{eventWriter, shipper, manager.RunnableFunc(policyConfig.Watch), retention, sweeper} {
		if err := mgr.Add(runnable); err != nil {
			return fmt.Errorf("add runnable: %w", err)
		}
	}
	if err := checkLoopback(opts.HistoryAddr); err != nil {
		return err
	}
	historyServer, err := newHistoryAPI(opts, store, clientset, log.WithName("history-api"))
	if err != nil {
		return err
	}
	if historyServer != nil {
		if err := mgr.Add(historyServer); err != nil {
			return fmt.Errorf("add history API: %w", err)
		}
	}
	if opts.HistoryAddr != "" && opts.HistoryAddr != "0" {
		api := &historystore.API{Store: store, Clock: clk, Log: log.WithName("history")}
		if err := mgr.Add(httpRunnable(opts.HistoryAddr, api.Handler(), log)); err != nil {
			return fmt.Errorf("add history API: %w", err)
		}
	}
	if err := mgr.AddHealthzCheck("ping", healthz.Ping); err != nil {
		return fmt.Errorf("add healthz: %w", err)
	}
	if err := mgr.AddReadyzCheck("cache", func(req *http.Request) error {
		if !mgr.GetCache().WaitForCacheSync(req.Context()) {
			return errors.New("cache not synced")
		}
		return nil
	}); err != nil {
		return fmt.Errorf("add readyz: %w", err)
	}
	log.Info("Starting FlowForge controller", "database", historystore.Redact(opts.Database), "retention", opts.HistoryRetention.String(), "maxArchiveBytes", opts.HistoryMaxArchiveBytes, "history", opts.HistoryAddr, "policy", policyConfig.Status().Revision)
	return mgr.Start(ctx)
}

// positive returns &d, or nil (the default) when d is not positive.
func positive(d time.Duration) *time.Duration {
	if d <= 0 {
		return nil
	}
	return &d
}

// checkLeaderElection refuses lease timings that client-go would reject
// only once the manager starts, or that let a slow renewal lose the lease.
func checkLeaderElection(opts Options) error {
	if !opts.LeaderElection {
		return nil
	}
	lease, renew, retry := opts.LeaseDuration, opts.RenewDeadline, opts.RetryPeriod
	if lease <= 0 {
		lease = 15 * time.Second
	}
	if renew <= 0 {
		renew = 10 * time.Second
	}
	if retry <= 0 {
		retry = 2 * time.Second
	}
	switch {
	case lease <= renew:
		return fmt.Errorf("leader election: the lease duration (%s) must be longer than the renew deadline (%s)", lease, renew)
	case float64(renew) <= 1.2*float64(retry):
		return fmt.Errorf("leader election: the renew deadline (%s) must be longer than 1.2 times the retry period (%s)", renew, retry)
	}
	return nil
}

// ConfigReader serves the current policy data (policies.ConfigSource).
type ConfigReader interface {
	Current() *policies.Config
}

// SettingsFrom reads the controller's settings from the current policy
// data on every call, so that policy edits apply without a restart.
func SettingsFrom(config ConfigReader, opts Options) func() Settings {
	return func() Settings {
		s := Settings{LogArchiveLimit: opts.LogArchiveLimit, ExportGrace: opts.ExportGrace}
		if s.LogArchiveLimit <= 0 {
			s.LogArchiveLimit = 10 << 20
		}
		if s.ExportGrace <= 0 {
			s.ExportGrace = 2 * time.Minute
		}
		cfg := config.Current()
		s.PendingTimeout = cfg.Export.PendingTimeout()
		s.JobFinalizer, s.PodFinalizer = cfg.Export.JobFinalizer, cfg.Export.PodFinalizer
		s.TTLAnnotation = cfg.Annotations.TTLSecondsAfterFinished
		s.SelectorLabel, s.SelectorValue = cfg.Selector.Label, cfg.Selector.Value
		if cfg.Export.Enabled {
			s.ExportedLabel = cfg.Export.ExportedLabel
		}
		return s
	}
}

// profilingHandlers serves net/http/pprof when enabled.
func profilingHandlers(enabled bool) map[string]http.Handler {
	if !enabled {
		return nil
	}
	return map[string]http.Handler{
		"/debug/pprof/":        http.HandlerFunc(pprof.Index),
		"/debug/pprof/profile": http.HandlerFunc(pprof.Profile),
		"/debug/pprof/trace":   http.HandlerFunc(pprof.Trace),
	}
}

// httpRunnable serves handler on addr on every replica (not only the leader).
type httpServer struct {
	addr    string
	handler http.Handler
	log     logr.Logger
}

func httpRunnable(addr string, h http.Handler, log logr.Logger) manager.Runnable {
	return &httpServer{addr: addr, handler: h, log: log}
}

func (s *httpServer) NeedLeaderElection() bool { return false }

func (s *httpServer) Start(ctx context.Context) error {
	l, err := net.Listen("tcp", s.addr)
	if err != nil {
		return fmt.Errorf("history API: %w", err)
	}
	srv := &http.Server{Handler: s.handler, ReadHeaderTimeout: 5 * time.Second}
	go func() {
		<-ctx.Done()
		shutdown, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(shutdown)
	}()
	s.log.Info("Serving the history API", "addr", l.Addr().String())
	if err := srv.Serve(l); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}
