package controller

import (
	"context"
	"errors"
	"fmt"
	"net"
	"path/filepath"

	"github.com/go-logr/logr"
	"k8s.io/client-go/kubernetes"
	"sigs.k8s.io/controller-runtime/pkg/manager"

	"github.com/flowforge/flowforge/history"
	"github.com/flowforge/flowforge/history/apiserver"
)

// historyAPI serves the aggregated history API (history.flowforge.io) on
// every replica, leader or not: it only reads the store.
type historyAPI struct {
	addr     string
	listener net.Listener
	certDir  string
	store    history.Store
	kube     kubernetes.Interface
	log      logr.Logger
}

var _ manager.LeaderElectionRunnable = (*historyAPI)(nil)

// newHistoryAPI returns the history API runnable, or nil when
// opts.HistoryAPIAddr is "" or "0" and no listener is given.
func newHistoryAPI(opts Options, store history.Store, kube kubernetes.Interface, log logr.Logger) (*historyAPI, error) {
	if opts.HistoryAPIListener == nil && (opts.HistoryAPIAddr == "" || opts.HistoryAPIAddr == "0") {
		return nil, nil
	}
	if opts.HistoryCertDir == "" {
		return nil, errors.New("history API: no certificate directory (--history-cert-dir): the API server verifies the history API's serving certificate")
	}
	return &historyAPI{addr: opts.HistoryAPIAddr, listener: opts.HistoryAPIListener, certDir: opts.HistoryCertDir, store: store, kube: kube, log: log}, nil
}

func (h *historyAPI) NeedLeaderElection() bool { return false }

// Start serves until ctx ends.
func (h *historyAPI) Start(ctx context.Context) error {
	l := h.listener
	if l == nil {
		var err error
		if l, err = net.Listen("tcp", h.addr); err != nil {
			return fmt.Errorf("history API: %w", err)
		}
	}
	srv, err := apiserver.New(ctx, apiserver.Options{
		Store:    h.store,
		Kube:     h.kube,
		Listener: l,
		CertFile: filepath.Join(h.certDir, "tls.crt"),
		KeyFile:  filepath.Join(h.certDir, "tls.key"),
		Log:      h.log,
	})
	if err != nil {
		_ = l.Close()
		return err
	}
	h.log.Info("Serving the aggregated history API", "addr", l.Addr().String(), "group", "history.flowforge.io")
	return srv.Run(ctx)
}

// checkLoopback refuses a debugging address that is not on loopback: the
// plain HTTP history view has no authentication.
func checkLoopback(addr string) error {
	if addr == "" || addr == "0" {
		return nil
	}
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("history debug address %q: %w", addr, err)
	}
	if host == "localhost" {
		return nil
	}
	if ip := net.ParseIP(host); ip == nil || !ip.IsLoopback() {
		return fmt.Errorf("history debug address %q: the unauthenticated HTTP view binds loopback only (127.0.0.1:PORT); read the history through the API server (history.flowforge.io)", addr)
	}
	return nil
}
