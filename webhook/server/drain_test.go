package server

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/go-logr/logr"
	"github.com/stretchr/testify/require"
	clocktesting "k8s.io/utils/clock/testing"
	crwebhook "sigs.k8s.io/controller-runtime/pkg/webhook"

	"github.com/flowforge/flowforge/certs"
)

// drainFixture is a drainServer without SO_REUSEPORT (as in a pod) on a
// free port, on a fake clock, and an HTTP/1.1 keep-alive client.
type drainFixture struct {
	s      *drainServer
	clk    *clocktesting.FakeClock
	url    string
	client *http.Client
	stop   context.CancelFunc
	done   chan error
}

func newDrainFixture(t *testing.T, opts drainOptions, handler http.Handler) *drainFixture {
	t.Helper()
	dir := t.TempDir()
	files, err := certs.WriteSelfSigned(dir, []string{"127.0.0.1"}, time.Now(), time.Hour)
	require.NoError(t, err)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	port := l.Addr().(*net.TCPAddr).Port
	require.NoError(t, l.Close())
	f := &drainFixture{clk: clocktesting.NewFakeClock(time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)), done: make(chan error, 1)}
	opts.Clock = f.clk
	f.s, err = newDrainServer(crwebhook.NewServer(crwebhook.Options{Host: "127.0.0.1", Port: port, CertDir: dir}), logr.Discard(), opts)
	require.NoError(t, err)
	f.s.Register("/admit", handler)
	ctx, cancel := context.WithCancel(context.Background())
	f.stop = cancel
	go func() { f.done <- f.s.Start(ctx) }()
	require.Eventually(t, func() bool { return f.s.StartedChecker()(nil) == nil }, 10*time.Second, 10*time.Millisecond)
	pool := x509.NewCertPool()
	require.True(t, pool.AppendCertsFromPEM(files.CAPEM))
	f.client = &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12},
	}}
	f.url = "https://" + net.JoinHostPort("127.0.0.1", strconv.Itoa(port)) + "/admit"
	t.Cleanup(func() {
		cancel()
		f.clk.Step(time.Hour)
		f.client.CloseIdleConnections()
	})
	return f
}

// post sends one request; fresh, on a new connection, if asked.
func (f *drainFixture) post(fresh bool) (*http.Response, string, error) {
	c := f.client
	if fresh {
		tr := f.client.Transport.(*http.Transport).Clone()
		tr.DisableKeepAlives = true
		c = &http.Client{Timeout: f.client.Timeout, Transport: tr}
	}
	resp, err := c.Post(f.url, "application/json", strings.NewReader("{}"))
	if err != nil {
		return nil, "", err
	}
	body, err := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	return resp, string(body), err
}

var okHandler = http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "ok") })

// On SIGTERM a pod's replica fails its readiness at once, and serves every
// request, on new connections too, for the drain delay, asking HTTP/1.1
// clients to close theirs; only then does it stop accepting connections.
func TestDrainServerServesThroughTheDelay(t *testing.T) {
	f := newDrainFixture(t, drainOptions{Delay: 5 * time.Second}, okHandler)
	resp, _, err := f.post(false)
	require.NoError(t, err)
	require.False(t, resp.Close, "keep-alive while serving")

	f.s.Drain()
	require.ErrorContains(t, f.s.StartedChecker()(nil), "draining", "readiness fails at once")
	f.s.Drain() // again: nothing changes
	f.stop()    // the manager stops the server before the delay has passed
	require.Eventually(t, f.clk.HasWaiters, 10*time.Second, 5*time.Millisecond, "the stop waits for the drain delay")

	// The kept connection still answers, and asks to be closed.
	resp, body, err := f.post(false)
	require.NoError(t, err)
	require.Equal(t, "ok", body)
	require.True(t, resp.Close, "Connection: close while draining")
	// So does a new connection: a node whose kube-proxy has not seen the
	// endpoint change yet still sends them.
	resp, body, err = f.post(true)
	require.NoError(t, err)
	require.Equal(t, "ok", body)
	require.True(t, resp.Close)
	select {
	case err := <-f.done:
		t.Fatalf("the server stopped before the drain delay: %v", err)
	default:
	}

	f.clk.Step(5 * time.Second)
	require.NoError(t, <-f.done)
	_, _, err = f.post(true)
	require.Error(t, err, "no connection is accepted after the shutdown")
}

// Admissions in flight at shutdown finish, with a context the stop does
// not cancel.
func TestDrainServerLetsAdmissionsInFlightFinish(t *testing.T) {
	entered, release := make(chan struct{}), make(chan struct{})
	ctxErr := make(chan error, 1)
	f := newDrainFixture(t, drainOptions{Delay: time.Second}, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		close(entered)
		<-release
		ctxErr <- r.Context().Err()
		_, _ = io.WriteString(w, "late but ok")
	}))
	answered := make(chan string, 1)
	go func() {
		_, body, err := f.post(false)
		if err != nil {
			body = err.Error()
		}
		answered <- body
	}()
	<-entered
	f.stop()
	require.Eventually(t, f.clk.HasWaiters, 10*time.Second, 5*time.Millisecond)
	f.clk.Step(time.Second)
	// Shutting down, it waits for the admission.
	require.Eventually(t, func() bool {
		_, _, err := f.post(true)
		return err != nil
	}, 10*time.Second, 10*time.Millisecond, "the listener closes at the shutdown")
	select {
	case err := <-f.done:
		t.Fatalf("the server stopped with an admission in flight: %v", err)
	default:
	}
	close(release)
	require.Equal(t, "late but ok", <-answered)
	require.NoError(t, <-ctxErr, "the admission's context was not cancelled")
	require.NoError(t, <-f.done)
}

// An admission that never ends does not hold the stop beyond the shutdown
// timeout.
func TestDrainServerShutdownIsBounded(t *testing.T) {
	entered, release := make(chan struct{}), make(chan struct{})
	defer close(release)
	f := newDrainFixture(t, drainOptions{Delay: -1, ShutdownTimeout: 50 * time.Millisecond}, http.HandlerFunc(func(http.ResponseWriter, *http.Request) {
		close(entered)
		<-release
	}))
	failed := make(chan error, 1)
	go func() {
		_, _, err := f.post(false)
		failed <- err
	}()
	<-entered
	f.stop()
	require.NoError(t, <-f.done, "no drain delay, and the shutdown gave up on the admission")
	require.Error(t, <-failed, "the admission was cut off")
}

// runDraining drains the server as soon as the signal comes and stops the
// manager only once the delay has passed.
func TestRunDrainingStopsTheManagerAfterTheDelay(t *testing.T) {
	clk := clocktesting.NewFakeClock(time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC))
	d, err := newDrainServer(crwebhook.NewServer(crwebhook.Options{}), logr.Discard(), drainOptions{Delay: 5 * time.Second, Clock: clk})
	require.NoError(t, err)
	signal, sigterm := context.WithCancel(context.Background())
	mgrCtx := make(chan context.Context, 1)
	result := make(chan error, 1)
	go func() {
		result <- runDraining(signal, d, func(ctx context.Context) error {
			mgrCtx <- ctx
			<-ctx.Done()
			return nil
		})
	}()
	ctx := <-mgrCtx
	require.False(t, d.draining())
	sigterm()
	require.Eventually(t, d.draining, 10*time.Second, 5*time.Millisecond, "the signal starts the drain")
	require.Eventually(t, clk.HasWaiters, 10*time.Second, 5*time.Millisecond)
	require.NoError(t, ctx.Err(), "the manager runs on through the delay")
	clk.Step(5 * time.Second)
	require.NoError(t, <-result)
	require.Error(t, ctx.Err())

	// A manager that stops on its own ends the drain watcher too.
	d2, err := newDrainServer(crwebhook.NewServer(crwebhook.Options{}), logr.Discard(), drainOptions{Clock: clk})
	require.NoError(t, err)
	require.Equal(t, DefaultDrainDelay, d2.opts.Delay)
	require.Equal(t, DefaultShutdownTimeout, d2.opts.ShutdownTimeout)
	require.ErrorIs(t, runDraining(context.Background(), d2, func(context.Context) error { return context.Canceled }), context.Canceled)
	require.False(t, d2.draining())
}
