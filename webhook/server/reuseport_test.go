package server

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/go-logr/logr"
	"github.com/stretchr/testify/require"
	crwebhook "sigs.k8s.io/controller-runtime/pkg/webhook"

	"github.com/flowforge/flowforge/certs"
)

func TestListenReusePortSharesAnAddress(t *testing.T) {
	a, err := listenReusePort(context.Background(), "127.0.0.1:0")
	require.NoError(t, err)
	defer a.Close() //nolint:errcheck // test cleanup
	b, err := listenReusePort(context.Background(), a.Addr().String())
	require.NoError(t, err, "a second SO_REUSEPORT listener binds the same address")
	defer b.Close() //nolint:errcheck // test cleanup

	// A listener without SO_REUSEPORT cannot join them.
	_, err = net.Listen("tcp", a.Addr().String())
	require.Error(t, err)

	_, err = listenReusePort(context.Background(), "256.0.0.1:1")
	require.ErrorContains(t, err, "SO_REUSEPORT")
}

func TestNewDrainServerNeedsTheDefaultServer(t *testing.T) {
	_, err := newDrainServer(otherServer{}, logr.Discard(), drainOptions{ReusePort: true})
	require.ErrorContains(t, err, "unexpected webhook server")
}

type otherServer struct{ crwebhook.Server }

// Two replicas on one address: the kernel spreads new connections over
// both, and while one stops, every request is answered by the other.
func TestReusePortReplicasShareConnections(t *testing.T) {
	dir := t.TempDir()
	files, err := certs.WriteSelfSigned(dir, []string{"127.0.0.1"}, time.Now(), time.Hour)
	require.NoError(t, err)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	port := l.Addr().(*net.TCPAddr).Port
	require.NoError(t, l.Close())

	start := func(name string) (*drainServer, context.CancelFunc, chan error) {
		s, err := newDrainServer(crwebhook.NewServer(crwebhook.Options{Host: "127.0.0.1", Port: port, CertDir: dir}), logr.Discard(), drainOptions{ReusePort: true})
		require.NoError(t, err)
		s.opts.Delay = 100 * time.Millisecond
		s.Register("/who", http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, name) }))
		require.Error(t, s.StartedChecker()(nil), "not started yet")
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- s.Start(ctx) }()
		require.Eventually(t, func() bool { return s.StartedChecker()(nil) == nil }, 10*time.Second, 10*time.Millisecond)
		return s, cancel, done
	}
	a, stopA, doneA := start("a")
	_, stopB, doneB := start("b")
	defer func() {
		stopB()
		require.NoError(t, <-doneB)
	}()

	pool := x509.NewCertPool()
	require.True(t, pool.AppendCertsFromPEM(files.CAPEM))
	// A new connection per request, as the kernel balances connections.
	client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{
		TLSClientConfig:   &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12},
		DisableKeepAlives: true,
	}}
	url := "https://" + net.JoinHostPort("127.0.0.1", strconv.Itoa(port)) + "/who"
	get := func() (string, error) {
		resp, err := client.Get(url)
		if err != nil {
			return "", err
		}
		defer resp.Body.Close() //nolint:errcheck // read below
		body, err := io.ReadAll(resp.Body)
		if err != nil {
			return "", err
		}
		if resp.StatusCode != http.StatusOK {
			return "", fmt.Errorf("status %s", resp.Status)
		}
		return string(body), nil
	}
	seen := map[string]int{}
	for range 200 {
		who, err := get()
		require.NoError(t, err)
		seen[who]++
	}
	require.Positive(t, seen["a"], "replica a got no connection: %v", seen)
	require.Positive(t, seen["b"], "replica b got no connection: %v", seen)

	// Once a has stopped, b answers every request.
	stopA()
	require.NoError(t, <-doneA)
	require.ErrorContains(t, a.StartedChecker()(nil), "stopping")
	for range 50 {
		who, err := get()
		require.NoError(t, err)
		require.Equal(t, "b", who)
	}
}

// A stopping reuse-port server takes no new connection (the kernel gives
// them to the other replicas) and closes its idle ones, while a request in
// flight on a kept connection is answered, asking the client to close it.
func TestReusePortServerDrainsKeepAliveConnections(t *testing.T) {
	dir := t.TempDir()
	files, err := certs.WriteSelfSigned(dir, []string{"127.0.0.1"}, time.Now(), time.Hour)
	require.NoError(t, err)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	port := l.Addr().(*net.TCPAddr).Port
	require.NoError(t, l.Close())
	s, err := newDrainServer(crwebhook.NewServer(crwebhook.Options{Host: "127.0.0.1", Port: port, CertDir: dir}), logr.Discard(), drainOptions{ReusePort: true, Delay: time.Second})
	require.NoError(t, err)
	entered, release := make(chan struct{}, 1), make(chan struct{})
	s.Register("/ok", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Query().Get("wait") != "" {
			entered <- struct{}{}
			<-release
		}
		_, _ = io.WriteString(w, "ok")
	}))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Start(ctx) }()
	require.Eventually(t, func() bool { return s.StartedChecker()(nil) == nil }, 10*time.Second, 10*time.Millisecond)

	pool := x509.NewCertPool()
	require.True(t, pool.AppendCertsFromPEM(files.CAPEM))
	// HTTP/1.1 with keep-alive, as kube-apiserver calls webhooks.
	client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12},
	}}
	url := "https://" + net.JoinHostPort("127.0.0.1", strconv.Itoa(port)) + "/ok"
	post := func(query string) (*http.Response, error) {
		resp, err := client.Post(url+query, "application/json", strings.NewReader("{}"))
		if err != nil {
			return nil, err
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		return resp, resp.Body.Close()
	}
	resp, err := post("")
	require.NoError(t, err)
	require.False(t, resp.Close, "keep-alive while serving")

	answered := make(chan *http.Response, 1)
	go func() {
		resp, err := post("?wait=1")
		if err != nil {
			resp = nil
		}
		answered <- resp
	}()
	<-entered
	cancel()
	require.Eventually(t, func() bool { return s.StartedChecker()(nil) != nil }, 10*time.Second, 5*time.Millisecond)
	close(release)
	resp = <-answered
	require.NotNil(t, resp, "the admission in flight is answered")
	require.True(t, resp.Close, "Connection: close while draining")
	require.NoError(t, <-done)
	// No new connection is accepted.
	_, err = post("")
	require.Error(t, err)
}

func TestReusePortTLSConfig(t *testing.T) {
	dir := t.TempDir()
	_, err := certs.WriteSelfSigned(dir, []string{"127.0.0.1"}, time.Now(), time.Hour)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(dir, "junk.crt"), []byte("not a certificate"), 0o600))
	ownCert := func(*tls.ClientHelloInfo) (*tls.Certificate, error) { return nil, errors.New("own") }
	for _, tc := range []struct {
		name    string
		opts    crwebhook.Options
		wantErr string
		check   func(t *testing.T, cfg *tls.Config)
	}{
		{name: "the certificate files, watched", opts: crwebhook.Options{CertDir: dir}, check: func(t *testing.T, cfg *tls.Config) {
			cert, err := cfg.GetCertificate(&tls.ClientHelloInfo{})
			require.NoError(t, err)
			require.NotNil(t, cert)
			require.Equal(t, []string{"h2"}, cfg.NextProtos)
		}},
		{name: "TLSOpts' GetCertificate wins", opts: crwebhook.Options{TLSOpts: []func(*tls.Config){func(c *tls.Config) { c.GetCertificate = ownCert }}}, check: func(t *testing.T, cfg *tls.Config) {
			_, err := cfg.GetCertificate(&tls.ClientHelloInfo{})
			require.EqualError(t, err, "own")
		}},
		{name: "client certificates verified", opts: crwebhook.Options{CertDir: dir, ClientCAName: "ca.crt"}, check: func(t *testing.T, cfg *tls.Config) {
			require.Equal(t, tls.RequireAndVerifyClientCert, cfg.ClientAuth)
			require.NotNil(t, cfg.ClientCAs)
		}},
		{name: "no certificate directory", opts: crwebhook.Options{}, wantErr: "no certificate directory"},
		{name: "missing certificate", opts: crwebhook.Options{CertDir: dir, CertName: "nope.crt"}, wantErr: "nope.crt"},
		{name: "missing client CA", opts: crwebhook.Options{CertDir: dir, ClientCAName: "nope.crt"}, wantErr: "read client CA"},
		{name: "client CA without a certificate", opts: crwebhook.Options{CertDir: dir, ClientCAName: "junk.crt"}, wantErr: "client CA: no certificate"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, err := newDrainServer(crwebhook.NewServer(tc.opts), logr.Discard(), drainOptions{ReusePort: true})
			require.NoError(t, err)
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			cfg, err := s.tlsConfig(ctx)
			if tc.wantErr != "" {
				require.ErrorContains(t, err, tc.wantErr)
				return
			}
			require.NoError(t, err)
			tc.check(t, cfg)
		})
	}
}
