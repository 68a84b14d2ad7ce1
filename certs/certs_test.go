package certs

import (
	"crypto/tls"
	"crypto/x509"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

var now = time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)

func TestCAIssuesVerifiableLeaves(t *testing.T) {
	ca, err := NewCA("test-ca", now, 24*time.Hour)
	require.NoError(t, err)
	assert.True(t, ca.Certificate().IsCA)

	server, err := ca.Issue(Leaf{CommonName: "webhook", Server: true, DNSNames: []string{"flowforge-webhook.flowforge-system.svc"}, IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}}, now, time.Hour)
	require.NoError(t, err)
	client, err := ca.Issue(Leaf{CommonName: "admin", Organizations: []string{"system:masters"}, Client: true}, now, time.Hour)
	require.NoError(t, err)

	pool := x509.NewCertPool()
	require.True(t, pool.AppendCertsFromPEM(ca.CertPEM))
	srv, err := ParseCertificate(server.CertPEM)
	require.NoError(t, err)
	_, err = srv.Verify(x509.VerifyOptions{Roots: pool, DNSName: "flowforge-webhook.flowforge-system.svc", CurrentTime: now, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}})
	require.NoError(t, err)
	require.NoError(t, srv.VerifyHostname("127.0.0.1"))

	cl, err := ParseCertificate(client.CertPEM)
	require.NoError(t, err)
	assert.Equal(t, []string{"system:masters"}, cl.Subject.Organization)
	_, err = cl.Verify(x509.VerifyOptions{Roots: pool, CurrentTime: now, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}})
	require.NoError(t, err)
	_, err = tls.X509KeyPair(server.CertPEM, server.KeyPEM)
	require.NoError(t, err, "the pair loads as a TLS certificate")
}

func TestLeafNeverOutlivesItsCA(t *testing.T) {
	ca, err := NewCA("short", now, time.Hour)
	require.NoError(t, err)
	kp, err := ca.Issue(Leaf{CommonName: "x", Server: true}, now, 48*time.Hour)
	require.NoError(t, err)
	c, err := ParseCertificate(kp.CertPEM)
	require.NoError(t, err)
	assert.Equal(t, ca.Certificate().NotAfter, c.NotAfter)
}

func TestLoadCA(t *testing.T) {
	ca, err := NewCA("reload", now, time.Hour)
	require.NoError(t, err)
	again, err := LoadCA(ca.CertPEM, ca.KeyPEM)
	require.NoError(t, err)
	_, err = again.Issue(Leaf{CommonName: "x", Client: true}, now, time.Minute)
	require.NoError(t, err)

	leaf, err := ca.Issue(Leaf{CommonName: "leaf", Server: true}, now, time.Minute)
	require.NoError(t, err)
	_, err = LoadCA(leaf.CertPEM, leaf.KeyPEM)
	assert.ErrorContains(t, err, "not a CA")
	_, err = LoadCA(ca.CertPEM, []byte("junk"))
	assert.ErrorContains(t, err, "not PEM")
	_, err = LoadCA([]byte("junk"), ca.KeyPEM)
	assert.ErrorContains(t, err, "no PEM certificate")
}

func TestBadArguments(t *testing.T) {
	_, err := NewCA("", now, time.Hour)
	assert.Error(t, err)
	_, err = NewCA("x", now, 0)
	assert.Error(t, err)
	ca, err := NewCA("x", now, time.Hour)
	require.NoError(t, err)
	_, err = ca.Issue(Leaf{CommonName: "", Server: true}, now, time.Hour)
	assert.Error(t, err)
	_, err = ca.Issue(Leaf{CommonName: "neither"}, now, time.Hour)
	assert.ErrorContains(t, err, "server or a client")
	_, err = ca.Issue(Leaf{CommonName: "x", Server: true}, now, -time.Second)
	assert.Error(t, err)
	_, err = WriteSelfSigned(t.TempDir(), nil, now, time.Hour)
	assert.Error(t, err)
}

func TestWriteSelfSigned(t *testing.T) {
	dir := t.TempDir()
	files, err := WriteSelfSigned(dir, []string{"127.0.0.1", "localhost"}, now, time.Hour)
	require.NoError(t, err)
	pair, err := tls.LoadX509KeyPair(files.CertPath, files.KeyPath)
	require.NoError(t, err)
	leaf, err := x509.ParseCertificate(pair.Certificate[0])
	require.NoError(t, err)
	assert.NoError(t, leaf.VerifyHostname("localhost"))
	assert.NoError(t, leaf.VerifyHostname("127.0.0.1"))
	ca, err := os.ReadFile(filepath.Join(dir, "ca.crt"))
	require.NoError(t, err)
	assert.Equal(t, files.CAPEM, ca)
	info, err := os.Stat(files.KeyPath)
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o600), info.Mode().Perm(), "the key is private")
}

func TestWriteFileAtomicReplaces(t *testing.T) {
	path := filepath.Join(t.TempDir(), "f")
	require.NoError(t, WriteFileAtomic(path, []byte("one"), 0o644))
	require.NoError(t, WriteFileAtomic(path, []byte("two"), 0o644))
	data, err := os.ReadFile(path)
	require.NoError(t, err)
	assert.Equal(t, "two", string(data))
	entries, err := os.ReadDir(filepath.Dir(path))
	require.NoError(t, err)
	assert.Len(t, entries, 1, "no temporary file is left behind")
	assert.Error(t, WriteFileAtomic(filepath.Join(path, "under-a-file"), nil, 0o644))
}

func TestSigningKey(t *testing.T) {
	priv, pub, err := NewSigningKey()
	require.NoError(t, err)
	assert.Contains(t, string(priv), "EC PRIVATE KEY")
	assert.Contains(t, string(pub), "PUBLIC KEY")
}
