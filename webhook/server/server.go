package server

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/pprof"
	"strings"
	"time"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"k8s.io/utils/clock"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/healthz"
	"sigs.k8s.io/controller-runtime/pkg/manager"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"
	crwebhook "sigs.k8s.io/controller-runtime/pkg/webhook"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	"github.com/flowforge/flowforge/certs"
	"github.com/flowforge/flowforge/internal/metrics"
	"github.com/flowforge/flowforge/mutate"
	"github.com/flowforge/flowforge/policies"
	"github.com/flowforge/flowforge/policies/engine"
	"github.com/flowforge/flowforge/validate"
	"github.com/flowforge/flowforge/webhook"
)

// Options configure the webhook server program.
type Options struct {
	// Host and Port are where the TLS admission endpoint listens.
	Host string
	Port int
	// CertDir holds CertName and KeyName; both are reloaded when they change.
	CertDir  string
	CertName string
	KeyName  string
	// MetricsAddr serves /metrics ("0" disables it).
	MetricsAddr string
	// ProbeAddr serves /healthz and /readyz.
	ProbeAddr string
	// PolicyDir replaces the embedded policies and is watched for changes.
	PolicyDir string
	// Profiling serves net/http/pprof on the probe address.
	Profiling bool
	// ClaimNamespace holds the controller's records of exported Jobs'
	// job-ids (default policies.DefaultClaimNamespace).
	ClaimNamespace string
	// InFlightBytes bounds the request bytes served at once, across every
	// path (0: webhook.DefaultInFlightBytes); a request waits up to
	// InFlightWait for room, then is refused (0: webhook.DefaultInFlightWait;
	// negative: refuse at once).
	InFlightBytes int64
	InFlightWait  time.Duration
	// ReusePort binds Host:Port with SO_REUSEPORT, so that several
	// replicas share one address and the kernel spreads connections over
	// them (the local cluster's two replicas behind one Service address).
	ReusePort bool
	// DrainDelay is how long the server keeps serving once ctx ends, with
	// /readyz failing, before it shuts down: the time endpoint changes take
	// to reach every node (0: DefaultDrainDelay; negative: none).
	// ShutdownTimeout bounds the wait for the admissions in flight at
	// shutdown (0: DefaultShutdownTimeout).
	DrainDelay      time.Duration
	ShutdownTimeout time.Duration
	// Certs selects the serving certificate: in certs.ModeRotate the
	// server manages it in a Secret and rotates it (certs.Rotator); in
	// certs.ModeFiles, or when Mode is empty, it serves CertDir's files.
	Certs certs.Config
}

func inFlight(opts Options) *webhook.InFlight {
	budget, wait := opts.InFlightBytes, opts.InFlightWait
	if budget <= 0 {
		budget = webhook.DefaultInFlightBytes
	}
	switch {
	case wait == 0:
		wait = webhook.DefaultInFlightWait
	case wait < 0:
		wait = 0
	}
	return webhook.NewInFlight(budget, wait)
}

// Handlers returns FlowForge's admission handlers by path.
func Handlers(eng *engine.Engine, namespaces webhook.NamespaceLabels, clk clock.PassiveClock) map[string]admission.Handler {
	return map[string]admission.Handler{
		mutate.Path:      &mutate.Handler{Policy: eng, Namespaces: namespaces, Clock: clk},
		validate.JobPath: validate.NewJobHandler(eng, namespaces, clk),
		validate.PodPath: validate.NewPodHandler(eng, namespaces, clk),
		// The namespace-label guard (validate/namespace-labels).
		validate.NamespacePath: validate.NewNamespaceHandler(eng, clk),
		// Labelled Pods that no hardened Job created (mutate/pod-lifecycle),
		// interactive access (validate/interactive-access; the pod lookup is
		// set by WithPods) and CronJobs (validate/cronjob).
		mutate.PodPath:       &mutate.PodHandler{Policy: eng, Namespaces: namespaces, Clock: clk},
		validate.ConnectPath: &validate.ConnectHandler{Policy: eng, Namespaces: namespaces, Clock: clk},
		validate.CronJobPath: &validate.CronJobHandler{Policy: eng, Namespaces: namespaces, Clock: clk},
	}
}

// WithPods gives the connect handler among handlers its pod lookup; without
// one it denies every connection to a pod.
func WithPods(handlers map[string]admission.Handler, pods validate.PodMetadata) {
	if h, ok := handlers[validate.ConnectPath].(*validate.ConnectHandler); ok {
		h.Pods = pods
	}
}

// WithClaims gives the Job and Pod validation handlers among handlers
// their source of job-id claims.
func WithClaims(handlers map[string]admission.Handler, claims webhook.JobIDClaims) {
	for _, path := range []string{validate.JobPath, validate.PodPath} {
		if h, ok := handlers[path].(*validate.Handler); ok {
			h.Claims = claims
		}
	}
}

func claimNamespace(opts Options) string {
	if opts.ClaimNamespace != "" {
		return opts.ClaimNamespace
	}
	return policies.DefaultClaimNamespace
}

// jobSelector selects the Jobs the policy selects (data.yaml selector),
// as read at start: a change of the selector label needs a restart.
func jobSelector(p *engine.Policy) labels.Selector {
	key, _ := p.Config("selector", "label").(string)
	value, _ := p.Config("selector", "value").(string)
	if key == "" {
		return labels.Everything()
	}
	return labels.SelectorFromSet(labels.Set{key: value})
}

// Run starts the webhook server and blocks until ctx ends. It fails if the
// initial policy is refused.
func Run(ctx context.Context, cfg *rest.Config, opts Options, log logr.Logger) error {
	eng, err := engine.New(ctx, engine.Options{
		Dir:      opts.PolicyDir,
		Log:      log.WithName("policy"),
		Recorder: metrics.PolicyRecorder{},
	})
	if err != nil {
		return err
	}
	scheme := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(scheme); err != nil {
		return fmt.Errorf("build scheme: %w", err)
	}
	// The serving certificate: the Secret's, rotated (rotate mode), or
	// CertDir's (files mode).
	serving, err := newServingCerts(cfg, scheme, opts, log)
	if err != nil {
		return err
	}
	tlsOpts := []func(*tls.Config){func(c *tls.Config) { c.MinVersion = tls.VersionTLS12 }}
	if serving != nil {
		tlsOpts = append(tlsOpts, serving.tlsOpt())
	}
	server := crwebhook.NewServer(crwebhook.Options{
		Host:     opts.Host,
		Port:     opts.Port,
		CertDir:  opts.CertDir,
		CertName: opts.CertName,
		KeyName:  opts.KeyName,
		TLSOpts:  tlsOpts,
	})
	// The webhook server drains when ctx ends (drainServer): readiness
	// fails, it serves on for DrainDelay, then shuts down gracefully.
	drain, err := newDrainServer(server, log, drainOptions{ReusePort: opts.ReusePort, Delay: opts.DrainDelay, ShutdownTimeout: opts.ShutdownTimeout})
	if err != nil {
		return err
	}
	server = drain
	// The controller's records of job-ids: ConfigMaps with the label.
	claimSelector, err := labels.Parse(policies.ClaimJobIDLabel)
	if err != nil {
		return fmt.Errorf("job-id record selector: %w", err)
	}
	mgr, err := ctrl.NewManager(cfg, ctrl.Options{
		Scheme:         scheme,
		Logger:         log,
		Metrics:        metricsserver.Options{BindAddress: opts.MetricsAddr},
		WebhookServer:  server,
		LeaderElection: false,
		// The manager stops once the drain delay has passed (runDraining);
		// the webhook server, stopped last, may take the shutdown timeout.
		GracefulShutdownTimeout: ptr.To(drain.opts.ShutdownTimeout + 15*time.Second),
		Cache: cache.Options{
			// The handlers read namespaces' labels and, for the identity
			// policy, labelled Jobs' metadata (a metadata-only watch).
			ByObject: serving.withSecret(map[client.Object]cache.ByObject{
				&corev1.Namespace{}:   {},
				webhook.JobMetadata(): {Label: jobSelector(eng.Current())},
				webhook.ClaimMetadata(): {
					Namespaces: map[string]cache.Config{claimNamespace(opts): {}},
					Label:      claimSelector,
				},
			}),
			DefaultTransform: cache.TransformStripManagedFields(),
		},
	})
	if err != nil {
		return fmt.Errorf("create manager: %w", err)
	}
	if err := metrics.RegisterWebhook(ctrlMetricsRegistry()); err != nil {
		return fmt.Errorf("register metrics: %w", err)
	}
	// Start the namespace informer with the cache, before the first request.
	if _, err := mgr.GetCache().GetInformer(ctx, &corev1.Namespace{}); err != nil {
		return fmt.Errorf("namespace informer: %w", err)
	}
	// Labelled Jobs' metadata, indexed by namespace and job-id: who holds a
	// job-id (the identity policy's claims).
	jobIDLabel, _ := eng.Current().Config("identity", "jobIDLabel").(string)
	if err := mgr.GetCache().IndexField(ctx, webhook.JobMetadata(), webhook.JobIDIndex, webhook.IndexJobID(jobIDLabel)); err != nil {
		return fmt.Errorf("index Jobs by job-id: %w", err)
	}
	if _, err := mgr.GetCache().GetInformer(ctx, webhook.JobMetadata()); err != nil {
		return fmt.Errorf("job informer: %w", err)
	}
	if err := mgr.GetCache().IndexField(ctx, webhook.ClaimMetadata(), webhook.JobIDIndex, webhook.IndexClaim); err != nil {
		return fmt.Errorf("index job-id records: %w", err)
	}
	if _, err := mgr.GetCache().GetInformer(ctx, webhook.ClaimMetadata()); err != nil {
		return fmt.Errorf("job-id record informer: %w", err)
	}
	// GetWebhookServer adds the server to the manager's runnables.
	server = mgr.GetWebhookServer()
	if serving != nil {
		if err := serving.start(ctx, mgr); err != nil {
			return err
		}
	}
	handlers := Handlers(eng, webhook.ClientNamespaceLabels(mgr.GetCache(), mgr.GetAPIReader()), clock.RealClock{})
	WithClaims(handlers, webhook.CachedJobIDClaims(mgr.GetCache(), claimNamespace(opts)))
	// Uncached: a pod's labels as they are now (validate.ClientPodMetadata).
	WithPods(handlers, validate.ClientPodMetadata(mgr.GetAPIReader()))
	// One cap of admissions in flight for every path; each request's
	// object is checked against the served policy's limits before any
	// decoding or evaluation (webhook.NewGuard).
	inFlight := inFlight(opts)
	limits := func() policies.Limits { return eng.Current().Limits() }
	for path, h := range handlers {
		server.Register(path, webhook.NewGuard(webhook.GuardOptions{InFlight: inFlight, Limits: limits, Path: path},
			&admission.Webhook{Handler: h, LogConstructor: logConstructor(log)}))
	}
	if err := mgr.Add(manager.RunnableFunc(eng.Watch)); err != nil {
		return fmt.Errorf("add policy watcher: %w", err)
	}
	probes := &probeServer{eng: eng, server: server, cache: mgr.GetCache(), profiling: opts.Profiling, cert: serving.readyCheck()}
	if opts.ProbeAddr != "" && opts.ProbeAddr != "0" {
		if err := mgr.Add(probes.runnable(opts.ProbeAddr, log)); err != nil {
			return fmt.Errorf("add probe server: %w", err)
		}
	}
	log.Info("Starting FlowForge webhook server", "port", opts.Port, "inFlightBytes", inFlight.Cap(), "certDir", opts.CertDir, "policy", eng.Status().Source, "revision", eng.Status().Revision,
		"drainDelay", drain.opts.Delay, "shutdownTimeout", drain.opts.ShutdownTimeout)
	return runDraining(ctx, drain, mgr.Start)
}

// runDraining runs start (the manager) until ctx ends, then drains the
// webhook server for its delay (readiness fails, admissions are still
// served) before it stops the manager, whose stop shuts the server down.
func runDraining(ctx context.Context, d *drainServer, start func(context.Context) error) error {
	mgrCtx, stop := context.WithCancel(context.WithoutCancel(ctx))
	defer stop()
	go func() {
		select {
		case <-mgrCtx.Done():
			return
		case <-ctx.Done():
		}
		d.Drain()
		d.waitDrained(mgrCtx)
		stop()
	}()
	return start(mgrCtx)
}

// logConstructor logs requests by identity only, never the objects.
func logConstructor(base logr.Logger) func(logr.Logger, *admission.Request) logr.Logger {
	return func(_ logr.Logger, req *admission.Request) logr.Logger {
		if req == nil {
			return base
		}
		return base.WithValues("uid", req.UID, "kind", req.Kind.Kind, "operation", req.Operation, "user", req.UserInfo.Username)
	}
}

// probeServer answers /healthz and /readyz. /readyz?verbose shows each
// check with its details; the policy check names the revision served and
// any refused reload, which does not make the server unready: the previous
// policy keeps serving.
type probeServer struct {
	profiling bool
	eng       *engine.Engine
	server    interface{ StartedChecker() healthz.Checker }
	cache     interface {
		WaitForCacheSync(ctx context.Context) bool
	}
	// cert fails until a serving certificate is loaded, and names it
	// (nil: files mode).
	cert func() (string, error)
}

func (p *probeServer) runnable(addr string, log logr.Logger) manager.Runnable {
	return manager.RunnableFunc(func(ctx context.Context) error {
		mux := http.NewServeMux()
		mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("ok")) })
		mux.HandleFunc("/readyz", p.readyz)
		mux.HandleFunc("/readyz/policy", p.policyStatus)
		if p.profiling {
			mux.HandleFunc("/debug/pprof/", pprof.Index)
			mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
			mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
		}
		srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
		l, err := net.Listen("tcp", addr)
		if err != nil {
			return fmt.Errorf("probe server: %w", err)
		}
		go func() {
			<-ctx.Done()
			shutdown, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			_ = srv.Shutdown(shutdown)
		}()
		log.Info("Serving probes", "addr", l.Addr().String())
		if err := srv.Serve(l); err != nil && !errors.Is(err, http.ErrServerClosed) {
			return err
		}
		return nil
	})
}

type check struct {
	name   string
	err    error
	detail string
}

func (p *probeServer) checks(r *http.Request) []check {
	st := p.eng.Status()
	detail := fmt.Sprintf("revision %s from %s, %d tests passed, loaded %s, identity query %s", st.Revision, st.Source, st.Tests, st.LoadedAt.UTC().Format(time.RFC3339), st.IdentityEvaluator)
	if st.LastError != "" {
		detail += fmt.Sprintf("; last reload refused at %s: %s", st.LastErrorAt.UTC().Format(time.RFC3339), st.LastError)
	}
	out := []check{
		{name: "webhook", err: p.server.StartedChecker()(r)},
		{name: "namespace-cache", err: cacheSynced(r.Context(), p.cache)},
		{name: "policy", detail: detail},
	}
	if p.cert != nil {
		detail, err := p.cert()
		out = append(out, check{name: "certificate", err: err, detail: detail})
	}
	return out
}

func cacheSynced(ctx context.Context, c interface{ WaitForCacheSync(context.Context) bool }) error {
	ctx, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
	defer cancel()
	if !c.WaitForCacheSync(ctx) {
		return errors.New("namespace cache not synced")
	}
	return nil
}

func (p *probeServer) readyz(w http.ResponseWriter, r *http.Request) {
	checks := p.checks(r)
	var b strings.Builder
	ok := true
	for _, c := range checks {
		if c.err != nil {
			ok = false
			fmt.Fprintf(&b, "[-]%s failed: %v\n", c.name, c.err)
			continue
		}
		fmt.Fprintf(&b, "[+]%s ok", c.name)
		if c.detail != "" {
			fmt.Fprintf(&b, ": %s", c.detail)
		}
		b.WriteByte('\n')
	}
	if !ok {
		w.WriteHeader(http.StatusServiceUnavailable)
		_, _ = w.Write([]byte(b.String() + "readyz check failed\n"))
		return
	}
	if _, verbose := r.URL.Query()["verbose"]; verbose {
		_, _ = w.Write([]byte(b.String() + "readyz check passed\n"))
		return
	}
	_, _ = w.Write([]byte("ok"))
}

func (p *probeServer) policyStatus(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(p.eng.Status())
}
