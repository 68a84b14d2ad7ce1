package server

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"github.com/go-logr/logr"
	"k8s.io/utils/clock"
	"sigs.k8s.io/controller-runtime/pkg/certwatcher"
	"sigs.k8s.io/controller-runtime/pkg/healthz"
	crwebhook "sigs.k8s.io/controller-runtime/pkg/webhook"
)

// DefaultDrainDelay is how long a stopping replica keeps serving, already
// unready, before it shuts down (Options.DrainDelay).
const DefaultDrainDelay = 5 * time.Second

// DefaultShutdownTimeout bounds how long a stopping replica lets the
// admissions in flight finish once it shuts down (Options.ShutdownTimeout):
// longer than the webhooks' timeoutSeconds (10, deploy/), after which the
// API server has given up on them anyway.
const DefaultShutdownTimeout = 15 * time.Second

// drainOptions configure a drainServer.
type drainOptions struct {
	// ReusePort binds with SO_REUSEPORT (Options.ReusePort).
	ReusePort bool
	// Delay is how long the server keeps serving once it drains (0:
	// DefaultDrainDelay; negative: not at all).
	Delay time.Duration
	// ShutdownTimeout bounds the wait for the requests in flight at
	// shutdown (0: DefaultShutdownTimeout).
	ShutdownTimeout time.Duration
	Clock           clock.Clock
}

// drainServer is controller-runtime's webhook server with a graceful
// stop, in the order a Kubernetes pod needs:
//
//  1. Drain (on SIGTERM): the server reports itself not started, so that
//     /readyz fails and the endpoint controllers take the replica out of
//     the Service; it keeps serving, each HTTP/1.1 answer carrying
//     "Connection: close", so that clients close the connection
//     themselves and take their next request to another replica. Idle
//     connections are left alone until the shutdown: closing one races
//     with a client sending its next request on it, which then fails (the
//     API server does not retry a webhook call), while a connection the
//     client closes after its answer races with nothing. Under a stream
//     of admissions every connection is used, told to close, and closed
//     by its client during the delay. With SO_REUSEPORT (the local
//     cluster, where the kernel is the load balancer) its listener closes
//     at once: the kernel gives new connections to the other replicas.
//  2. The drain delay: endpoint and kube-proxy changes take a few seconds
//     to reach every node and API server, during which connections still
//     arrive; they are served.
//  3. Shutdown (the manager stops the server): the listener closes,
//     HTTP/2 clients get a GOAWAY, idle connections close, and admissions
//     in flight finish, with a context the stop does not cancel, for up to
//     the shutdown timeout.
//
// Register and WebhookMux are the embedded DefaultServer's; Start and
// StartedChecker are its own.
type drainServer struct {
	*crwebhook.DefaultServer
	log  logr.Logger
	opts drainOptions

	mu        sync.Mutex
	started   bool
	drainedAt time.Time
	listener  net.Listener
}

// newDrainServer wraps a server made by crwebhook.NewServer.
func newDrainServer(s crwebhook.Server, log logr.Logger, opts drainOptions) (*drainServer, error) {
	def, ok := s.(*crwebhook.DefaultServer)
	if !ok {
		return nil, fmt.Errorf("unexpected webhook server %T", s)
	}
	if def.Options.WebhookMux == nil {
		// Served by Start, and filled by Register.
		def.Options.WebhookMux = http.NewServeMux()
	}
	switch {
	case opts.Delay == 0:
		opts.Delay = DefaultDrainDelay
	case opts.Delay < 0:
		opts.Delay = 0
	}
	if opts.ShutdownTimeout <= 0 {
		opts.ShutdownTimeout = DefaultShutdownTimeout
	}
	if opts.Clock == nil {
		opts.Clock = clock.RealClock{}
	}
	return &drainServer{DefaultServer: def, log: log.WithName("webhook-server"), opts: opts}, nil
}

// tlsConfig builds the serving TLS configuration as controller-runtime's
// server does: TLSOpts first, then, unless they set GetCertificate, a
// watcher of CertDir/CertName and KeyName that reloads them on change.
func (s *drainServer) tlsConfig(ctx context.Context) (*tls.Config, error) {
	o := s.Options
	cfg := &tls.Config{NextProtos: []string{"h2"}}
	for _, op := range o.TLSOpts {
		op(cfg)
	}
	if cfg.GetCertificate == nil {
		certName, keyName := o.CertName, o.KeyName
		if certName == "" {
			certName = "tls.crt"
		}
		if keyName == "" {
			keyName = "tls.key"
		}
		if o.CertDir == "" {
			return nil, errors.New("webhook server: no certificate directory")
		}
		w, err := certwatcher.New(filepath.Join(o.CertDir, certName), filepath.Join(o.CertDir, keyName))
		if err != nil {
			return nil, err
		}
		cfg.GetCertificate = w.GetCertificate
		go func() {
			if err := w.Start(ctx); err != nil {
				s.log.Error(err, "Certificate watcher failed")
			}
		}()
	}
	if o.ClientCAName != "" {
		data, err := os.ReadFile(filepath.Join(o.CertDir, o.ClientCAName))
		if err != nil {
			return nil, fmt.Errorf("read client CA: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(data) {
			return nil, errors.New("client CA: no certificate")
		}
		cfg.ClientCAs, cfg.ClientAuth = pool, tls.RequireAndVerifyClientCert
	}
	return cfg, nil
}

// Start serves until ctx ends, then drains (unless Drain was called
// already) and shuts down gracefully.
func (s *drainServer) Start(ctx context.Context) error {
	cfg, err := s.tlsConfig(ctx)
	if err != nil {
		return err
	}
	port := s.Options.Port
	if port == 0 {
		port = crwebhook.DefaultPort
	}
	addr := net.JoinHostPort(s.Options.Host, strconv.Itoa(port))
	var l net.Listener
	if s.opts.ReusePort {
		l, err = listenReusePort(ctx, addr)
	} else {
		var lc net.ListenConfig
		l, err = lc.Listen(ctx, "tcp", addr)
	}
	if err != nil {
		return err
	}
	// Admissions in flight keep their context through a stop: they finish
	// (bounded by the shutdown timeout) instead of failing.
	base := context.WithoutCancel(ctx)
	srv := &http.Server{
		BaseContext:    func(net.Listener) context.Context { return base },
		Handler:        s.closeWhenDraining(s.Options.WebhookMux),
		MaxHeaderBytes: 1 << 20,
		// Longer than client-go's 90 s idle timeout (the API server's
		// webhook client): the client closes an idle connection first,
		// rather than the server under a request the client just sent.
		IdleTimeout:       2 * time.Minute,
		ReadHeaderTimeout: 32 * time.Second,
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		<-ctx.Done()
		s.Drain()
		s.waitDrained(context.Background())
		_ = l.Close()
		s.log.Info("Shutting down the webhook server", "timeout", s.opts.ShutdownTimeout)
		shutdown, cancel := context.WithTimeout(base, s.opts.ShutdownTimeout)
		defer cancel()
		if err := srv.Shutdown(shutdown); err != nil {
			s.log.Error(err, "Shutting down the webhook server: admissions still in flight were cut off")
			_ = srv.Close()
		}
	}()
	s.mu.Lock()
	s.started = true
	s.listener = l
	drained := !s.drainedAt.IsZero()
	s.mu.Unlock()
	if drained && s.opts.ReusePort {
		// Drained before it served: a reuse-port listener takes no
		// connection.
		_ = l.Close()
	}
	s.log.Info("Serving webhook server", "addr", addr, "reusePort", s.opts.ReusePort)
	err = srv.Serve(tls.NewListener(l, cfg))
	if s.draining() {
		// Closed by the stop: the connections drain in the background.
		err = nil
	}
	if err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	<-done
	return nil
}

// Drain starts the stop: the server reports itself not started (readiness
// fails), answers HTTP/1.1 requests with "Connection: close", and, with
// SO_REUSEPORT, stops accepting connections. It keeps serving until the
// server's context ends. Calling it again does nothing.
func (s *drainServer) Drain() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.drainedAt.IsZero() {
		return
	}
	s.drainedAt = s.opts.Clock.Now()
	s.log.Info("Draining the webhook server: not ready, still serving", "delay", s.opts.Delay, "reusePort", s.opts.ReusePort)
	if s.opts.ReusePort && s.listener != nil {
		// No new connection: the kernel gives them to the other replicas.
		_ = s.listener.Close()
	}
}

// waitDrained returns once the drain delay has passed since Drain, or ctx
// ends.
func (s *drainServer) waitDrained(ctx context.Context) {
	s.mu.Lock()
	left := s.opts.Delay - s.opts.Clock.Since(s.drainedAt)
	s.mu.Unlock()
	if left <= 0 {
		return
	}
	select {
	case <-ctx.Done():
	case <-s.opts.Clock.After(left):
	}
}

func (s *drainServer) draining() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return !s.drainedAt.IsZero()
}

// closeWhenDraining asks HTTP/1.1 clients to close their connection after
// each answer written once the server drains, those of requests that
// arrived before included (HTTP/2 clients get a GOAWAY at shutdown
// instead).
func (s *drainServer) closeWhenDraining(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.ProtoMajor != 1 {
			next.ServeHTTP(w, r)
			return
		}
		next.ServeHTTP(&closingWriter{ResponseWriter: w, draining: s.draining}, r)
	})
}

// closingWriter adds "Connection: close" to an answer whose header is
// written while the server drains.
type closingWriter struct {
	http.ResponseWriter
	draining func() bool
	wrote    bool
}

func (w *closingWriter) WriteHeader(code int) {
	if !w.wrote {
		w.wrote = true
		if w.draining() {
			w.Header().Set("Connection", "close")
		}
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *closingWriter) Write(b []byte) (int, error) {
	if !w.wrote {
		w.WriteHeader(http.StatusOK)
	}
	return w.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach the connection's writer.
func (w *closingWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// StartedChecker is healthy while the server serves and does not drain.
// It does not dial the address, as controller-runtime's does: with
// SO_REUSEPORT the kernel could hand that connection to another replica.
func (s *drainServer) StartedChecker() healthz.Checker {
	return func(*http.Request) error {
		s.mu.Lock()
		defer s.mu.Unlock()
		switch {
		case !s.drainedAt.IsZero():
			return errors.New("webhook server is draining: it is stopping")
		case !s.started:
			return errors.New("webhook server has not been started yet")
		}
		return nil
	}
}
