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
	"syscall"
	"time"

	"github.com/go-logr/logr"
	"golang.org/x/sys/unix"
	"sigs.k8s.io/controller-runtime/pkg/certwatcher"
	"sigs.k8s.io/controller-runtime/pkg/healthz"
	crwebhook "sigs.k8s.io/controller-runtime/pkg/webhook"
)

// shutdownTimeout bounds how long a stopping server lets admissions in
// flight finish (controller-runtime's webhook server waits as long).
const shutdownTimeout = time.Minute

// drainPeriod is how long a stopping server keeps answering on the
// connections it has, each answer telling the client to close the
// connection, before it closes those left idle. Closing an idle HTTP/1.1
// connection races with a client sending its next request on it, which
// then fails (a POST is not retried); a client that got "Connection: close"
// opens its next connection to another replica instead.
const drainPeriod = 3 * time.Second

// reusePortServer is controller-runtime's webhook server with one
// difference: its listener sets SO_REUSEPORT, so that several replicas
// (processes, or servers in one process) bind the same address and the
// kernel spreads new connections over them. That is how the local cluster
// runs two replicas behind one Service address (docs/local-cluster.md).
// Register and WebhookMux are the embedded DefaultServer's; Start and
// StartedChecker are its own.
//
// When it stops, the listener closes first (the kernel then sends new
// connections to the other replicas); for drain, every answer on an
// HTTP/1.1 connection carries "Connection: close", so clients take their
// next request elsewhere; then the server shuts down: HTTP/2 clients get a
// GOAWAY, idle connections close, and admissions in flight finish with a
// context that the stop does not cancel, rather than failing.
type reusePortServer struct {
	*crwebhook.DefaultServer
	log   logr.Logger
	drain time.Duration

	mu      sync.Mutex
	started bool
	stopped bool
}

// newReusePortServer wraps a server made by crwebhook.NewServer.
func newReusePortServer(s crwebhook.Server, log logr.Logger) (*reusePortServer, error) {
	def, ok := s.(*crwebhook.DefaultServer)
	if !ok {
		return nil, fmt.Errorf("reuse port: unexpected webhook server %T", s)
	}
	if def.Options.WebhookMux == nil {
		// Served by Start, and filled by Register.
		def.Options.WebhookMux = http.NewServeMux()
	}
	return &reusePortServer{DefaultServer: def, log: log.WithName("webhook-server"), drain: drainPeriod}, nil
}

// reusePortControl sets SO_REUSEPORT (and SO_REUSEADDR) on a socket before
// it binds.
func reusePortControl(_, _ string, rc syscall.RawConn) error {
	var sockErr error
	if err := rc.Control(func(fd uintptr) {
		if sockErr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_REUSEADDR, 1); sockErr != nil {
			return
		}
		sockErr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_REUSEPORT, 1)
	}); err != nil {
		return err
	}
	if sockErr != nil {
		return fmt.Errorf("set SO_REUSEPORT: %w", sockErr)
	}
	return nil
}

// listenReusePort listens on addr with SO_REUSEPORT.
func listenReusePort(ctx context.Context, addr string) (net.Listener, error) {
	lc := net.ListenConfig{Control: reusePortControl}
	l, err := lc.Listen(ctx, "tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("listen on %s with SO_REUSEPORT: %w", addr, err)
	}
	return l, nil
}

// tlsConfig builds the serving TLS configuration as controller-runtime's
// server does: TLSOpts first, then, unless they set GetCertificate, a
// watcher of CertDir/CertName and KeyName that reloads them on change.
func (s *reusePortServer) tlsConfig(ctx context.Context) (*tls.Config, error) {
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
			return nil, errors.New("reuse port: no certificate directory")
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

// Start serves until ctx ends, then shuts down gracefully.
func (s *reusePortServer) Start(ctx context.Context) error {
	cfg, err := s.tlsConfig(ctx)
	if err != nil {
		return err
	}
	port := s.Options.Port
	if port == 0 {
		port = crwebhook.DefaultPort
	}
	addr := net.JoinHostPort(s.Options.Host, strconv.Itoa(port))
	l, err := listenReusePort(ctx, addr)
	if err != nil {
		return err
	}
	// Admissions in flight keep their context through a stop: they finish
	// (bounded by shutdownTimeout) instead of failing.
	base := context.WithoutCancel(ctx)
	srv := &http.Server{
		BaseContext:       func(net.Listener) context.Context { return base },
		Handler:           s.closeWhenStopping(s.Options.WebhookMux),
		MaxHeaderBytes:    1 << 20,
		IdleTimeout:       90 * time.Second,
		ReadHeaderTimeout: 32 * time.Second,
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		<-ctx.Done()
		s.mu.Lock()
		s.stopped = true
		s.mu.Unlock()
		// No new connection: the kernel gives them to the other replicas.
		_ = l.Close()
		s.log.Info("Draining the webhook server's connections", "period", s.drain)
		time.Sleep(s.drain)
		shutdown, cancel := context.WithTimeout(base, shutdownTimeout)
		defer cancel()
		if err := srv.Shutdown(shutdown); err != nil {
			s.log.Error(err, "Shutting down the webhook server")
		}
	}()
	s.mu.Lock()
	s.started = true
	s.mu.Unlock()
	s.log.Info("Serving webhook server with SO_REUSEPORT", "addr", addr)
	err = srv.Serve(tls.NewListener(l, cfg))
	if s.isStopped() {
		// Closed by the stop: the connections drain in the background.
		err = nil
	}
	if err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	<-done
	return nil
}

func (s *reusePortServer) isStopped() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.stopped
}

// closeWhenStopping asks HTTP/1.1 clients to close their connection after
// each answer once the server is stopping (HTTP/2 clients get a GOAWAY at
// shutdown instead).
func (s *reusePortServer) closeWhenStopping(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.ProtoMajor == 1 && s.isStopped() {
			w.Header().Set("Connection", "close")
		}
		next.ServeHTTP(w, r)
	})
}

// StartedChecker is healthy while this server's own listener is open. It
// does not dial the address, as controller-runtime's does: with
// SO_REUSEPORT the kernel could hand that connection to another replica.
func (s *reusePortServer) StartedChecker() healthz.Checker {
	return func(*http.Request) error {
		s.mu.Lock()
		defer s.mu.Unlock()
		switch {
		case s.stopped:
			return errors.New("webhook server is stopping")
		case !s.started:
			return errors.New("webhook server has not been started yet")
		}
		return nil
	}
}
