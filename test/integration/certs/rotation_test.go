package certs

import (
	"bytes"
	"context"
	"crypto/x509"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/flowforge/flowforge/certs"
)

// admissions sends dry-run creates of a labelled Job through the API
// server, which calls both webhooks, from a few workers until stopped, and
// counts the failures: an error, or a Job admitted without FlowForge's
// hardening.
type admissions struct {
	ok, failed atomic.Int64
	mu         sync.Mutex
	errs       []string
	stop       context.CancelFunc
	wg         sync.WaitGroup
}

func startAdmissions(workers int) *admissions {
	ctx, cancel := context.WithCancel(context.Background())
	a := &admissions{stop: cancel}
	job := &batchv1.Job{
		ObjectMeta: metav1.ObjectMeta{GenerateName: "rotation-", Namespace: metav1.NamespaceDefault, Labels: map[string]string{"app": "flowforge", "user-id": "u1"}},
		Spec: batchv1.JobSpec{Template: corev1.PodTemplateSpec{Spec: corev1.PodSpec{
			RestartPolicy: corev1.RestartPolicyNever,
			Containers:    []corev1.Container{{Name: "agent", Image: "ghcr.io/flowforge/claude-worker:1.4.0"}},
		}}},
	}
	var n atomic.Int64
	for range workers {
		a.wg.Add(1)
		go func() {
			defer a.wg.Done()
			for ctx.Err() == nil {
				j := job.DeepCopy()
				j.Labels["job-id"] = fmt.Sprintf("rotation-%d", n.Add(1))
				got, err := clientset.BatchV1().Jobs(j.Namespace).Create(ctx, j, metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}})
				switch {
				case ctx.Err() != nil:
					return
				case err != nil:
					a.fail(err.Error())
				case got.Annotations["flowforge.io/policy-revision"] == "":
					a.fail("admitted without FlowForge's hardening")
				default:
					a.ok.Add(1)
				}
			}
		}()
	}
	return a
}

func (a *admissions) fail(msg string) {
	a.failed.Add(1)
	a.mu.Lock()
	defer a.mu.Unlock()
	if len(a.errs) < 10 {
		a.errs = append(a.errs, time.Now().Format(time.RFC3339Nano)+" "+msg)
	}
}

func (a *admissions) finish(t *testing.T) {
	t.Helper()
	a.stop()
	a.wg.Wait()
	t.Logf("admissions: %d succeeded, %d failed", a.ok.Load(), a.failed.Load())
	require.Zero(t, a.failed.Load(), "failed admissions: %v", a.errs)
	require.Greater(t, a.ok.Load(), int64(100), "the stream of admissions ran")
}

func secret(t *testing.T) *corev1.Secret {
	t.Helper()
	key, err := certCfg.SecretKey()
	require.NoError(t, err)
	s := &corev1.Secret{}
	require.NoError(t, admin.Get(context.Background(), key, s))
	return s
}

// signingCA is the CA that signs the Secret's serving certificate now.
func signingCA(t *testing.T, s *corev1.Secret) string {
	t.Helper()
	c, err := certs.ParseCertificate(s.Data[certs.SecretCA])
	require.NoError(t, err)
	return c.Subject.CommonName
}

func servingCert(t *testing.T, s *corev1.Secret) *x509.Certificate {
	t.Helper()
	c, err := certs.ParseCertificate(s.Data[certs.SecretCert])
	require.NoError(t, err)
	return c
}

// caBundles are the webhook configurations' caBundles.
func caBundles(t *testing.T) [][]byte {
	t.Helper()
	ctx := context.Background()
	m := &admissionregistrationv1.MutatingWebhookConfiguration{}
	require.NoError(t, admin.Get(ctx, client.ObjectKey{Name: certs.DefaultMutating}, m))
	v := &admissionregistrationv1.ValidatingWebhookConfiguration{}
	require.NoError(t, admin.Get(ctx, client.ObjectKey{Name: certs.DefaultValidating}, v))
	var out [][]byte
	for _, w := range m.Webhooks {
		out = append(out, w.ClientConfig.CABundle)
	}
	for _, w := range v.Webhooks {
		out = append(out, w.ClientConfig.CABundle)
	}
	return out
}

// served is the serial of the certificate each replica serves, from its
// readiness check.
func served(t *testing.T) []string {
	t.Helper()
	var out []string
	for i, r := range hook.Replicas {
		resp, err := http.Get(r.ProbeURL + "/readyz?verbose") //nolint:noctx // a test probe
		require.NoError(t, err, "replica %d", i)
		body, _ := io.ReadAll(resp.Body)
		_ = resp.Body.Close()
		serial := ""
		for _, line := range strings.Split(string(body), "\n") {
			if rest, ok := strings.CutPrefix(line, "[+]certificate ok: serial "); ok {
				serial, _, _ = strings.Cut(rest, " ")
			}
		}
		out = append(out, serial)
	}
	return out
}

// requireConverged waits until the caBundles equal the Secret's ca.crt and
// every replica serves the Secret's certificate, and returns the Secret.
func requireConverged(t *testing.T) *corev1.Secret {
	t.Helper()
	var s *corev1.Secret
	require.EventuallyWithT(t, func(c *assert.CollectT) {
		s = secret(t)
		for i, b := range caBundles(t) {
			assert.True(c, bytes.Equal(s.Data[certs.SecretCA], b), "caBundle %d is the Secret's", i)
		}
		want := servingCert(t, s).SerialNumber.Text(16)
		for i, got := range served(t) {
			assert.Equal(c, want, got, "replica %d serves the Secret's certificate", i)
		}
	}, 30*time.Second, 100*time.Millisecond)
	return s
}

// waitRotated waits until the Secret's serving certificate comes from a
// CA other than ca, with the old one still trusted until it expires.
func waitRotated(t *testing.T, ca string, within time.Duration) {
	t.Helper()
	require.EventuallyWithT(t, func(c *assert.CollectT) {
		s := secret(t)
		assert.NotEqual(c, ca, servingCert(t, s).Issuer.CommonName)
	}, within, 200*time.Millisecond, "the serving certificate moves to a new CA")
}

func TestRotationUnderLoadFailsNoAdmission(t *testing.T) {
	first := requireConverged(t)
	firstCA := signingCA(t, first)
	firstSerial := servingCert(t, first).SerialNumber.Text(16)
	firstBundle := caBundles(t)[0]

	load := startAdmissions(4)

	// 1. On their own: the serving certificate at 20s, the CA at 40s and
	// the serving certificate from the new CA a propagation later.
	waitRotated(t, firstCA, 90*time.Second)
	rotated := requireConverged(t)
	assert.NotEqual(t, firstSerial, servingCert(t, rotated).SerialNumber.Text(16))
	assert.NotEqual(t, firstBundle, caBundles(t)[0], "the caBundle changed")
	t.Logf("rotated on schedule: CA %s -> %s", firstCA, signingCA(t, rotated))

	// 2. Forced (what `make chaos` does): a new CA at once.
	ca := signingCA(t, rotated)
	require.NoError(t, certs.ForceRotation(context.Background(), admin, client.ObjectKeyFromObject(rotated), time.Now()))
	waitRotated(t, ca, 20*time.Second)
	forced := requireConverged(t)
	assert.NotContains(t, forced.Annotations, certs.RotateAnnotation)
	assert.GreaterOrEqual(t, len(bytes.Split(forced.Data[certs.SecretCA], []byte("BEGIN CERTIFICATE")))-1, 2, "the previous CA is still trusted")

	load.finish(t)
}

// TestRotationContinuesWithoutTheLeader: with the first replica stopped
// (it may have been leading; it releases the Lease as it stops) the other
// rotates, and the first serves the Secret's certificate again when it
// comes back. (No admission stream here: stopping a replica is the
// replica tests' subject, test/integration/chaos.)
func TestRotationContinuesWithoutTheLeader(t *testing.T) {
	forced := requireConverged(t)
	require.NoError(t, hook.StopReplica(0))
	ca := signingCA(t, forced)
	require.NoError(t, certs.ForceRotation(context.Background(), admin, client.ObjectKeyFromObject(forced), time.Now()))
	waitRotated(t, ca, 40*time.Second)
	require.NoError(t, hook.StartReplica(context.Background(), 0))
	requireConverged(t)
}
