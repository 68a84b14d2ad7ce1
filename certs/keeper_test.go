package certs

import (
	"context"
	"crypto/tls"
	"testing"
	"time"

	"github.com/go-logr/logr"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
)

func servingData(t *testing.T, at time.Time) map[string][]byte {
	t.Helper()
	ca, err := NewCA("keeper-ca", at, time.Hour)
	require.NoError(t, err)
	kp, err := ca.Issue(Leaf{CommonName: host, DNSNames: []string{host}, Server: true}, at, time.Hour)
	require.NoError(t, err)
	return map[string][]byte{SecretCert: kp.CertPEM, SecretKey: kp.KeyPEM, SecretCA: ca.CertPEM}
}

func TestKeeperSwapsTheServedCertificate(t *testing.T) {
	k := NewKeeper(logr.Discard())
	require.ErrorContains(t, k.Ready(), "no serving certificate")
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := k.certificate(ctx)
	require.Error(t, err, "no certificate, and the handshake gave up")
	assert.Nil(t, k.Leaf())
	// A handshake that arrives before the first certificate waits for it.
	waited := make(chan error, 1)
	go func() {
		_, err := k.GetCertificate(&tls.ClientHelloInfo{})
		waited <- err
	}()

	first := servingData(t, now)
	changed, err := k.Load(first)
	require.NoError(t, err)
	assert.True(t, changed)
	require.NoError(t, <-waited)
	require.NoError(t, k.Ready())
	got, err := k.GetCertificate(&tls.ClientHelloInfo{})
	require.NoError(t, err)
	want, err := ParseCertificate(first[SecretCert])
	require.NoError(t, err)
	assert.True(t, got.Leaf.Equal(want))

	changed, err = k.Load(first)
	require.NoError(t, err)
	assert.False(t, changed, "the same certificate is not reloaded")

	// A broken pair is refused and the served one kept.
	second := servingData(t, now)
	broken := map[string][]byte{SecretCert: second[SecretCert], SecretKey: first[SecretKey]}
	_, err = k.Load(broken)
	require.ErrorContains(t, err, "serving pair")
	assert.True(t, k.Leaf().Equal(want))

	// Through the informer callbacks.
	calls := 0
	h := k.Handler(func() { calls++ })
	h.OnUpdate(nil, &corev1.Secret{Data: second})
	next, err := ParseCertificate(second[SecretCert])
	require.NoError(t, err)
	assert.True(t, k.Leaf().Equal(next))
	h.OnAdd(&corev1.Secret{Data: broken}, false)
	assert.True(t, k.Leaf().Equal(next), "a broken Secret is ignored")
	h.OnDelete(&corev1.Secret{})
	assert.Equal(t, 3, calls)
	assert.True(t, k.Leaf().Equal(next), "a deleted Secret keeps the served certificate")
}

// TestKeeperServesTLS: a client that trusts the bundle connects before and
// after a swap, without a new listener.
func TestKeeperServesTLS(t *testing.T) {
	k := NewKeeper(logr.Discard())
	first := servingData(t, time.Now())
	_, err := k.Load(first)
	require.NoError(t, err)
	l, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{GetCertificate: k.GetCertificate, MinVersion: tls.VersionTLS12})
	require.NoError(t, err)
	defer l.Close()
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			_ = c.(*tls.Conn).Handshake()
			_ = c.Close()
		}
	}()
	dial := func(ca []byte) (string, error) {
		pool := poolOf(t, ca)
		c, err := tls.Dial("tcp", l.Addr().String(), &tls.Config{RootCAs: pool, ServerName: host, MinVersion: tls.VersionTLS12})
		if err != nil {
			return "", err
		}
		defer c.Close()
		return c.ConnectionState().PeerCertificates[0].Issuer.CommonName, nil
	}
	_, err = dial(first[SecretCA])
	require.NoError(t, err)
	second := servingData(t, time.Now())
	_, err = k.Load(second)
	require.NoError(t, err)
	_, err = dial(first[SecretCA])
	require.Error(t, err, "the new certificate is served")
	_, err = dial(append(append([]byte{}, first[SecretCA]...), second[SecretCA]...))
	require.NoError(t, err)
}
