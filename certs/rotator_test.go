package certs

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"testing"
	"time"

	"github.com/go-logr/logr"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	clocktesting "k8s.io/utils/clock/testing"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
)

const host = "flowforge-webhook.flowforge-system.svc"

func testConfig() Config {
	c := DefaultConfig()
	c.Hosts = []string{host, "127.0.0.1"}
	c.Validity = 30 * time.Minute
	c.CAValidity = time.Hour
	c.Propagation = time.Minute
	c.LeaderElection = false
	c.APIServices = []string{"v1alpha1.history.flowforge.io"}
	return c
}

// fixture is a fake cluster with both webhook configurations (two
// webhooks each) and the APIService, and a rotator on a fake clock.
type fixture struct {
	t     *testing.T
	ctx   context.Context
	c     client.WithWatch
	clock *clocktesting.FakeClock
	r     *Rotator
}

func newFixture(t *testing.T, cfg Config) *fixture {
	t.Helper()
	scheme := runtime.NewScheme()
	require.NoError(t, clientgoscheme.AddToScheme(scheme))
	scheme.AddKnownTypeWithName(APIServiceGVK, &unstructured.Unstructured{})
	hooks := func() []admissionregistrationv1.WebhookClientConfig {
		return []admissionregistrationv1.WebhookClientConfig{{CABundle: []byte("stale")}, {}}
	}
	m := &admissionregistrationv1.MutatingWebhookConfiguration{ObjectMeta: metav1.ObjectMeta{Name: DefaultMutating}}
	for _, h := range hooks() {
		m.Webhooks = append(m.Webhooks, admissionregistrationv1.MutatingWebhook{Name: "m.flowforge.io", ClientConfig: h})
	}
	v := &admissionregistrationv1.ValidatingWebhookConfiguration{ObjectMeta: metav1.ObjectMeta{Name: DefaultValidating}}
	for _, h := range hooks() {
		v.Webhooks = append(v.Webhooks, admissionregistrationv1.ValidatingWebhook{Name: "v.flowforge.io", ClientConfig: h})
	}
	api := &unstructured.Unstructured{}
	api.SetGroupVersionKind(APIServiceGVK)
	api.SetName("v1alpha1.history.flowforge.io")
	require.NoError(t, unstructured.SetNestedField(api.Object, "history.flowforge.io", "spec", "group"))
	c := fake.NewClientBuilder().WithScheme(scheme).WithObjects(m, v, api).Build()
	clk := clocktesting.NewFakeClock(time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC))
	r, err := NewRotator(cfg, c, clk, logr.Discard())
	require.NoError(t, err)
	return &fixture{t: t, ctx: context.Background(), c: c, clock: clk, r: r}
}

func (f *fixture) reconcile() time.Time {
	f.t.Helper()
	wake, err := f.r.Reconcile(f.ctx)
	require.NoError(f.t, err)
	return wake
}

func (f *fixture) secret() *corev1.Secret {
	f.t.Helper()
	s := &corev1.Secret{}
	require.NoError(f.t, f.c.Get(f.ctx, client.ObjectKey{Namespace: "flowforge-system", Name: "flowforge-webhook-tls"}, s))
	return s
}

// caBundles returns every caBundle the rotator manages.
func (f *fixture) caBundles() [][]byte {
	f.t.Helper()
	var out [][]byte
	m := &admissionregistrationv1.MutatingWebhookConfiguration{}
	require.NoError(f.t, f.c.Get(f.ctx, client.ObjectKey{Name: DefaultMutating}, m))
	for _, w := range m.Webhooks {
		out = append(out, w.ClientConfig.CABundle)
	}
	v := &admissionregistrationv1.ValidatingWebhookConfiguration{}
	require.NoError(f.t, f.c.Get(f.ctx, client.ObjectKey{Name: DefaultValidating}, v))
	for _, w := range v.Webhooks {
		out = append(out, w.ClientConfig.CABundle)
	}
	api := &unstructured.Unstructured{}
	api.SetGroupVersionKind(APIServiceGVK)
	require.NoError(f.t, f.c.Get(f.ctx, client.ObjectKey{Name: "v1alpha1.history.flowforge.io"}, api))
	b64, _, _ := unstructured.NestedString(api.Object, "spec", "caBundle")
	decoded := make([]byte, len(b64))
	n, err := base64Decode(decoded, b64)
	require.NoError(f.t, err)
	return append(out, decoded[:n])
}

// requireTrusted checks that certPEM verifies, for every host, against
// every caBundle the API server would use.
func (f *fixture) requireTrusted(certPEM []byte, what string) {
	f.t.Helper()
	cert, err := ParseCertificate(certPEM)
	require.NoError(f.t, err)
	for i, bundle := range f.caBundles() {
		pool := x509.NewCertPool()
		require.True(f.t, pool.AppendCertsFromPEM(bundle), "caBundle %d is PEM", i)
		for _, h := range []string{host, "127.0.0.1"} {
			_, err := cert.Verify(x509.VerifyOptions{Roots: pool, DNSName: h, CurrentTime: f.clock.Now()})
			require.NoError(f.t, err, "%s verifies against caBundle %d for %s", what, i, h)
		}
	}
}

func issuer(t *testing.T, certPEM []byte) string {
	t.Helper()
	c, err := ParseCertificate(certPEM)
	require.NoError(t, err)
	return c.Issuer.CommonName
}

func TestRotatorBootstrapsTheSecretAndInjectsTheCA(t *testing.T) {
	f := newFixture(t, testConfig())
	wake := f.reconcile()
	s := f.secret()
	assert.Equal(t, corev1.SecretTypeTLS, s.Type)
	for _, k := range []string{SecretCert, SecretKey, SecretCA, SecretCAKey} {
		assert.NotEmpty(t, s.Data[k], k)
	}
	for _, b := range f.caBundles() {
		assert.Equal(t, s.Data[SecretCA], b)
	}
	f.requireTrusted(s.Data[SecretCert], "the serving certificate")
	_, err := tls.X509KeyPair(s.Data[SecretCert], s.Data[SecretKey])
	require.NoError(t, err)
	// Next look: when a third of the serving certificate's life remains.
	assert.Equal(t, f.clock.Now().Add(20*time.Minute), wake)

	// The Secret is the source of truth: another replica's rotator, with
	// no memory, changes nothing.
	rv := s.ResourceVersion
	other, err := NewRotator(testConfig(), f.c, f.clock, logr.Discard())
	require.NoError(t, err)
	_, err = other.Reconcile(f.ctx)
	require.NoError(t, err)
	assert.Equal(t, rv, f.secret().ResourceVersion)
}

func TestRotatorRenewsTheServingCertificateBeforeExpiry(t *testing.T) {
	f := newFixture(t, testConfig())
	f.reconcile()
	first := f.secret()

	f.clock.Step(19 * time.Minute)
	f.reconcile()
	assert.Equal(t, first.ResourceVersion, f.secret().ResourceVersion, "not yet due")

	f.clock.Step(time.Minute)
	f.reconcile()
	renewed := f.secret()
	assert.NotEqual(t, first.Data[SecretCert], renewed.Data[SecretCert])
	assert.Equal(t, first.Data[SecretCA], renewed.Data[SecretCA], "same CA")
	assert.Equal(t, first.Data[SecretCAKey], renewed.Data[SecretCAKey])
	f.requireTrusted(renewed.Data[SecretCert], "the renewed certificate")
	f.requireTrusted(first.Data[SecretCert], "the previous certificate")
}

// TestCARotationKeepsTheOldCATrusted walks a CA rotation: at every step
// both the certificate a replica may still serve and the one in the
// Secret verify against every caBundle.
func TestCARotationKeepsTheOldCATrusted(t *testing.T) {
	f := newFixture(t, testConfig())
	f.reconcile()
	f.clock.Step(20 * time.Minute) // serving renewed with the first CA
	f.reconcile()
	f.clock.Step(20 * time.Minute) // 40m: the 1h CA is due, and so is the serving certificate
	before := f.secret()
	oldCA := issuer(t, before.Data[SecretCert])
	f.reconcile()

	staged := f.secret()
	bundle := parseBundle(staged.Data[SecretCA])
	require.Len(t, bundle, 2, "new and old CA")
	assert.NotEqual(t, oldCA, bundle[0].Subject.CommonName, "the new CA signs")
	assert.Equal(t, oldCA, bundle[1].Subject.CommonName, "the old CA is still trusted")
	assert.Equal(t, before.Data[SecretCert], staged.Data[SecretCert], "the served certificate waits for the new CA to propagate")
	f.requireTrusted(staged.Data[SecretCert], "the old certificate")

	f.clock.Step(30 * time.Second)
	wake := f.reconcile()
	assert.Equal(t, staged.Data[SecretCert], f.secret().Data[SecretCert], "still propagating")
	assert.Equal(t, f.clock.Now().Add(30*time.Second), wake, "wakes when the propagation ends")

	f.clock.Step(30 * time.Second)
	f.reconcile()
	moved := f.secret()
	assert.Equal(t, bundle[0].Subject.CommonName, issuer(t, moved.Data[SecretCert]))
	assert.Equal(t, staged.Data[SecretCA], moved.Data[SecretCA], "the old CA stays in the bundle")
	f.requireTrusted(moved.Data[SecretCert], "the new certificate")
	f.requireTrusted(staged.Data[SecretCert], "the old certificate, still served by a replica that has not reloaded")

	// Once the old CA expires it leaves the bundle.
	f.clock.Step(20 * time.Minute)
	f.reconcile()
	pruned := parseBundle(f.secret().Data[SecretCA])
	require.Len(t, pruned, 1)
	assert.Equal(t, bundle[0].Subject.CommonName, pruned[0].Subject.CommonName)
	f.requireTrusted(f.secret().Data[SecretCert], "the new certificate")
}

func TestForcedRotationAndDeletionKeepTrust(t *testing.T) {
	f := newFixture(t, testConfig())
	f.reconcile()
	first := f.secret()
	key := client.ObjectKeyFromObject(first)

	require.NoError(t, ForceRotation(f.ctx, f.c, key, f.clock.Now()))
	require.NotEmpty(t, f.secret().Annotations[RotateAnnotation])
	f.reconcile()
	forced := f.secret()
	assert.NotContains(t, forced.Annotations, RotateAnnotation, "the request is honoured once")
	assert.Len(t, parseBundle(forced.Data[SecretCA]), 2)
	assert.Equal(t, first.Data[SecretCert], forced.Data[SecretCert])
	f.clock.Step(time.Minute)
	f.reconcile()
	assert.NotEqual(t, issuer(t, first.Data[SecretCert]), issuer(t, f.secret().Data[SecretCert]))
	f.requireTrusted(first.Data[SecretCert], "the first certificate")
	f.requireTrusted(f.secret().Data[SecretCert], "the forced certificate")
	served := f.secret().Data[SecretCert]

	// Deleted: rebuilt from memory with a new CA, the served one kept.
	require.NoError(t, f.c.Delete(f.ctx, f.secret()))
	f.reconcile()
	rebuilt := f.secret()
	assert.Equal(t, served, rebuilt.Data[SecretCert])
	assert.Len(t, parseBundle(rebuilt.Data[SecretCA]), 3)
	f.requireTrusted(served, "the certificate served when the Secret was deleted")

	require.Error(t, ForceRotation(f.ctx, f.c, client.ObjectKey{Namespace: "flowforge-system", Name: "missing"}, f.clock.Now()))
}

func TestRotatorRepairsABrokenSecret(t *testing.T) {
	tests := []struct {
		name     string
		break_   func(map[string][]byte)
		sameCA   bool
		sameCert bool
	}{
		{name: "garbage serving pair", break_: func(d map[string][]byte) { d[SecretCert] = []byte("garbage") }, sameCA: true},
		{name: "key of another pair", break_: func(d map[string][]byte) { d[SecretKey] = d[SecretCAKey] }, sameCA: true},
		{name: "CA key lost", break_: func(d map[string][]byte) { delete(d, SecretCAKey) }, sameCert: true},
		{name: "no CA at all", break_: func(d map[string][]byte) { delete(d, SecretCA); delete(d, SecretCAKey) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := testConfig()
			f := newFixture(t, cfg)
			f.reconcile()
			s := f.secret()
			good := map[string][]byte{}
			for k, v := range s.Data {
				good[k] = v
			}
			tt.break_(s.Data)
			require.NoError(t, f.c.Update(f.ctx, s))
			// A new rotator (a new leader) has no memory of the good Secret.
			r, err := NewRotator(cfg, f.c, f.clock, logr.Discard())
			require.NoError(t, err)
			_, err = r.Reconcile(f.ctx)
			require.NoError(t, err)
			fixed := f.secret()
			_, err = tls.X509KeyPair(fixed.Data[SecretCert], fixed.Data[SecretKey])
			require.NoError(t, err)
			assert.Equal(t, tt.sameCA, string(good[SecretCAKey]) == string(fixed.Data[SecretCAKey]))
			assert.Equal(t, tt.sameCert, string(good[SecretCert]) == string(fixed.Data[SecretCert]))
			f.requireTrusted(fixed.Data[SecretCert], "the repaired certificate")
		})
	}
}

func TestRotatorSkipsMissingTargetsAndFailsOnBrokenOnes(t *testing.T) {
	cfg := testConfig()
	cfg.MutatingWebhooks = []string{DefaultMutating, "not-there"}
	f := newFixture(t, cfg)
	r, err := NewRotator(cfg, interceptorClient(f.c), f.clock, logr.Discard())
	require.NoError(t, err)
	_, err = r.Reconcile(f.ctx)
	require.ErrorContains(t, err, "inject the CA bundle into *v1.ValidatingWebhookConfiguration flowforge-validating")
	bundles := f.caBundles()
	assert.Equal(t, f.secret().Data[SecretCA], bundles[0], "the others are still injected")
	assert.Equal(t, []byte("stale"), bundles[2])

	// A CA that is not in every caBundle never signs the served certificate.
	require.NoError(t, ForceRotation(f.ctx, f.c, client.ObjectKeyFromObject(f.secret()), f.clock.Now()))
	served := f.secret().Data[SecretCert]
	for range 3 {
		_, err = r.Reconcile(f.ctx)
		require.Error(t, err)
		f.clock.Step(5 * time.Minute)
	}
	assert.Equal(t, served, f.secret().Data[SecretCert])

	// The missing configuration is skipped.
	f.reconcile()
	f.requireTrusted(f.secret().Data[SecretCert], "the certificate")
}

func TestRunRotatesOnTheClockAndOnKick(t *testing.T) {
	cfg := testConfig()
	cfg.Resync = time.Hour
	f := newFixture(t, cfg)
	ctx, cancel := context.WithCancel(f.ctx)
	done := make(chan error, 1)
	go func() { done <- f.r.Run(ctx) }()
	secret := func() *corev1.Secret {
		s := &corev1.Secret{}
		if err := f.c.Get(f.ctx, client.ObjectKey{Namespace: "flowforge-system", Name: "flowforge-webhook-tls"}, s); err != nil {
			return nil
		}
		return s
	}
	require.Eventually(t, func() bool { return secret() != nil && f.clock.HasWaiters() }, 10*time.Second, 10*time.Millisecond)
	first := secret().Data[SecretCert]

	f.clock.Step(20 * time.Minute) // the timer fires at the renewal time
	require.Eventually(t, func() bool { return string(secret().Data[SecretCert]) != string(first) }, 10*time.Second, 10*time.Millisecond)

	require.Eventually(t, f.clock.HasWaiters, 10*time.Second, 10*time.Millisecond)
	require.NoError(t, ForceRotation(f.ctx, f.c, client.ObjectKeyFromObject(secret()), f.clock.Now()))
	f.r.Kick()
	require.Eventually(t, func() bool { return len(parseBundle(secret().Data[SecretCA])) == 2 }, 10*time.Second, 10*time.Millisecond)

	cancel()
	require.NoError(t, <-done)
}

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name string
		edit func(*Config)
		err  string
	}{
		{name: "defaults", edit: func(*Config) {}},
		{name: "files mode needs nothing", edit: func(c *Config) { c.Mode, c.Secret = ModeFiles, "" }},
		{name: "unknown mode", edit: func(c *Config) { c.Mode = "magic" }, err: "--cert-mode"},
		{name: "secret without namespace", edit: func(c *Config) { c.Secret = "tls" }, err: "namespace/name"},
		{name: "no hosts", edit: func(c *Config) { c.Hosts = nil }, err: "no hosts"},
		{name: "no validity", edit: func(c *Config) { c.Validity = 0 }, err: "--cert-validity"},
		{name: "CA shorter than leaf", edit: func(c *Config) { c.CAValidity = time.Hour }, err: "--ca-validity"},
		{name: "lookahead too long", edit: func(c *Config) { c.Lookahead = c.Validity }, err: "--cert-lookahead"},
		{name: "propagation too long", edit: func(c *Config) { c.Lookahead, c.Propagation = time.Minute, time.Minute }, err: "--ca-propagation"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := DefaultConfig()
			tt.edit(&c)
			err := c.Validate()
			if tt.err != "" {
				require.ErrorContains(t, err, tt.err)
				return
			}
			require.NoError(t, err)
		})
	}
	c := DefaultConfig()
	require.NoError(t, c.Validate())
	assert.Equal(t, 2*DefaultValidity, c.CAValidity)
	assert.Equal(t, DefaultValidity/3, c.Lookahead)
	assert.Equal(t, 30*time.Second, c.Propagation)
	assert.Equal(t, "flowforge-webhook-tls-rotator", c.LeaseName())
	_, err := NewRotator(Config{Mode: ModeFiles}, nil, nil, logr.Discard())
	require.ErrorContains(t, err, "rotate")
}

func TestConfigFlags(t *testing.T) {
	c := DefaultConfig()
	fs := newFlagSet()
	c.BindFlags(fs)
	require.NoError(t, fs.Parse([]string{"--cert-mode=rotate", "--cert-secret=ns/s", "--cert-hosts=a.svc, 127.0.0.1", "--cert-validity=2m",
		"--ca-validity=10m", "--cert-lookahead=50s", "--ca-propagation=5s", "--ca-inject-mutating=m1,m2", "--ca-inject-validating=",
		"--ca-inject-apiservices=v1.x.io", "--cert-leader-election=false"}))
	require.NoError(t, c.Validate())
	assert.Equal(t, Config{Mode: ModeRotate, Secret: "ns/s", Hosts: []string{"a.svc", "127.0.0.1"}, Validity: 2 * time.Minute, CAValidity: 10 * time.Minute,
		Lookahead: 50 * time.Second, Propagation: 5 * time.Second, Resync: DefaultResync, MutatingWebhooks: []string{"m1", "m2"},
		APIServices: []string{"v1.x.io"}}, c)
	leaf := c.leaf()
	assert.Equal(t, []string{"a.svc"}, leaf.DNSNames)
	require.Len(t, leaf.IPAddresses, 1)
}

var errInjected = apierrors.NewInternalError(assertError("webhook configuration unavailable"))

type assertError string

func (e assertError) Error() string { return string(e) }

func TestRepeatedForcedRotationsKeepTheBundleBounded(t *testing.T) {
	f := newFixture(t, testConfig())
	f.reconcile()
	var previous []byte
	for range 6 {
		s := f.secret()
		previous = s.Data[SecretCert]
		require.NoError(t, ForceRotation(f.ctx, f.c, client.ObjectKeyFromObject(s), f.clock.Now()))
		f.reconcile()
		f.clock.Step(time.Minute)
		f.reconcile()
		require.NotEqual(t, previous, f.secret().Data[SecretCert])
		require.LessOrEqual(t, len(parseBundle(f.secret().Data[SecretCA])), DefaultMaxBundle)
		f.requireTrusted(previous, "the certificate served before the rotation")
		f.requireTrusted(f.secret().Data[SecretCert], "the new certificate")
	}
	assert.Len(t, parseBundle(f.secret().Data[SecretCA]), DefaultMaxBundle)
}
