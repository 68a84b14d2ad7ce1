package certs

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/go-logr/logr"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/util/retry"
	"k8s.io/utils/clock"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// APIServiceGVK is the kind of the aggregated APIs' registrations,
// handled as unstructured objects (no kube-aggregator dependency).
var APIServiceGVK = schema.GroupVersionKind{Group: "apiregistration.k8s.io", Version: "v1", Kind: "APIService"}

// retryAfterError is how soon the leader tries again after a failure.
const retryAfterError = 2 * time.Second

// Rotator keeps the Secret's CA and serving certificate valid and every
// configured caBundle equal to the Secret's ca.crt. Only one replica runs
// it at a time (RunLeaderElected); every replica reads the Secret through
// a Keeper.
type Rotator struct {
	cfg    Config
	key    types.NamespacedName
	client client.Client
	clock  clock.Clock
	log    logr.Logger
	kick   chan struct{}

	mu sync.Mutex
	// last is the Secret's content as last read or written: if the Secret
	// is deleted it is rebuilt from it, with a forced rotation, so that
	// the certificate being served stays trusted.
	last map[string][]byte
	// trustedCA and trustedSince: since when every caBundle holds trustedCA.
	trustedCA    *x509.Certificate
	trustedSince time.Time
}

// NewRotator returns a Rotator for cfg (validated by NewRotator). c must
// read from the API server, not from a cache.
func NewRotator(cfg Config, c client.Client, clk clock.Clock, log logr.Logger) (*Rotator, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.Mode != ModeRotate {
		return nil, fmt.Errorf("certs: a rotator needs --cert-mode=%s, got %q", ModeRotate, cfg.Mode)
	}
	key, _ := cfg.SecretKey()
	if clk == nil {
		clk = clock.RealClock{}
	}
	return &Rotator{cfg: cfg, key: key, client: c, clock: clk, log: log, kick: make(chan struct{}, 1)}, nil
}

// Kick makes a running rotator look at the Secret now (for example when
// it changed). It never blocks.
func (r *Rotator) Kick() {
	select {
	case r.kick <- struct{}{}:
	default:
	}
}

// Run reconciles until ctx ends: at each renewal time, after every Kick,
// and every Resync.
func (r *Rotator) Run(ctx context.Context) error {
	r.log.Info("Certificate rotator started", "secret", r.key.String(), "validity", r.cfg.Validity.String(), "caValidity", r.cfg.CAValidity.String())
	for {
		wake, err := r.Reconcile(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			r.log.Error(err, "Certificate rotation failed; retrying", "secret", r.key.String())
			wake = r.clock.Now().Add(retryAfterError)
		}
		wait := min(wake.Sub(r.clock.Now()), r.cfg.Resync)
		if wait < 0 {
			wait = 0
		}
		t := r.clock.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-r.kick:
			t.Stop()
		case <-t.C():
		}
	}
}

// Reconcile brings the Secret and the caBundles up to date once and
// returns when it should run again.
func (r *Rotator) Reconcile(ctx context.Context) (time.Time, error) {
	now := r.clock.Now()
	secret := &corev1.Secret{}
	err := r.client.Get(ctx, r.key, secret)
	exists := err == nil
	switch {
	case apierrors.IsNotFound(err):
		secret = &corev1.Secret{
			ObjectMeta: metav1.ObjectMeta{Name: r.key.Name, Namespace: r.key.Namespace, Labels: map[string]string{"app.kubernetes.io/part-of": "flowforge"}},
			Type:       corev1.SecretTypeTLS,
		}
	case err != nil:
		return time.Time{}, fmt.Errorf("certs: read Secret %s: %w", r.key, err)
	}
	data, forced := secret.Data, secret.Annotations[RotateAnnotation] != ""
	r.mu.Lock()
	if !exists && r.last != nil {
		// Deleted: rebuild from what is served, with a new CA.
		data, forced = r.last, true
	}
	trustedSince := r.trustedSinceLocked(parseMaterial(data).signing)
	r.mu.Unlock()

	plan, err := r.cfg.plan(data, forced, trustedSince, now)
	if err != nil {
		return time.Time{}, err
	}
	if plan.Data != nil || plan.DropRotate || !exists {
		if plan.Data != nil {
			secret.Data = plan.Data
		}
		if plan.DropRotate {
			delete(secret.Annotations, RotateAnnotation)
		}
		if secret.Type == "" {
			secret.Type = corev1.SecretTypeTLS
		}
		if exists {
			err = r.client.Update(ctx, secret)
		} else {
			err = r.client.Create(ctx, secret)
		}
		if err != nil {
			return time.Time{}, fmt.Errorf("certs: write Secret %s: %w", r.key, err)
		}
		r.log.Info("Certificates renewed", "secret", r.key.String(), "reasons", plan.Reasons)
	}
	r.mu.Lock()
	r.last = secret.Data
	r.mu.Unlock()

	bundle := secret.Data[SecretCA]
	if err := r.inject(ctx, bundle); err != nil {
		return time.Time{}, err
	}
	signing := parseMaterial(secret.Data).signing
	r.mu.Lock()
	if signing != nil && (r.trustedCA == nil || !r.trustedCA.Equal(signing.cert)) {
		r.trustedCA, r.trustedSince = signing.cert, r.clock.Now()
	}
	wake := plan.Wake
	if signing != nil && r.trustedCA.Equal(signing.cert) && !parseMaterial(secret.Data).servingSignedBy(signing) {
		// A serving certificate waits for this CA's propagation.
		if w := r.trustedSince.Add(r.cfg.Propagation); w.Before(wake) || wake.IsZero() {
			wake = w
		}
	}
	r.mu.Unlock()
	return wake, nil
}

func (r *Rotator) trustedSinceLocked(signing *CA) time.Time {
	if signing == nil || r.trustedCA == nil || !r.trustedCA.Equal(signing.cert) {
		return time.Time{}
	}
	return r.trustedSince
}

func (m *material) servingSignedBy(ca *CA) bool {
	return m.serving != nil && m.serving.CheckSignatureFrom(ca.cert) == nil
}

// inject sets bundle as the caBundle of every configured object that
// exists. It returns an error if any could not be updated.
func (r *Rotator) inject(ctx context.Context, bundle []byte) error {
	if len(bundle) == 0 {
		return errors.New("certs: the Secret has no CA bundle to inject")
	}
	var errs []error
	for _, name := range r.cfg.MutatingWebhooks {
		errs = append(errs, r.injectOne(ctx, &admissionregistrationv1.MutatingWebhookConfiguration{}, name, func(o client.Object) bool {
			m := o.(*admissionregistrationv1.MutatingWebhookConfiguration)
			changed := false
			for i := range m.Webhooks {
				if !bytes.Equal(m.Webhooks[i].ClientConfig.CABundle, bundle) {
					m.Webhooks[i].ClientConfig.CABundle, changed = bundle, true
				}
			}
			return changed
		}))
	}
	for _, name := range r.cfg.ValidatingWebhooks {
		errs = append(errs, r.injectOne(ctx, &admissionregistrationv1.ValidatingWebhookConfiguration{}, name, func(o client.Object) bool {
			v := o.(*admissionregistrationv1.ValidatingWebhookConfiguration)
			changed := false
			for i := range v.Webhooks {
				if !bytes.Equal(v.Webhooks[i].ClientConfig.CABundle, bundle) {
					v.Webhooks[i].ClientConfig.CABundle, changed = bundle, true
				}
			}
			return changed
		}))
	}
	for _, name := range r.cfg.APIServices {
		u := &unstructured.Unstructured{}
		u.SetGroupVersionKind(APIServiceGVK)
		errs = append(errs, r.injectOne(ctx, u, name, func(o client.Object) bool {
			return setAPIServiceCABundle(o.(*unstructured.Unstructured), bundle)
		}))
	}
	return errors.Join(errs...)
}

// injectOne updates one object's caBundle with set, retrying conflicts.
// A missing object is skipped.
func (r *Rotator) injectOne(ctx context.Context, obj client.Object, name string, set func(client.Object) bool) error {
	kind := fmt.Sprintf("%T", obj)
	if u, ok := obj.(*unstructured.Unstructured); ok {
		kind = u.GetKind()
	}
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		if err := r.client.Get(ctx, types.NamespacedName{Name: name}, obj); err != nil {
			return err
		}
		if !set(obj) {
			return nil
		}
		if err := r.client.Update(ctx, obj); err != nil {
			return err
		}
		r.log.Info("CA bundle injected", "kind", kind, "name", name)
		return nil
	})
	if apierrors.IsNotFound(err) {
		r.log.V(1).Info("No object to inject the CA bundle into", "kind", kind, "name", name)
		return nil
	}
	if err != nil {
		return fmt.Errorf("certs: inject the CA bundle into %s %s: %w", kind, name, err)
	}
	return nil
}

// setAPIServiceCABundle sets spec.caBundle (base64 in JSON) and reports
// whether it changed.
func setAPIServiceCABundle(u *unstructured.Unstructured, bundle []byte) bool {
	want := base64.StdEncoding.EncodeToString(bundle)
	if cur, _, _ := unstructured.NestedString(u.Object, "spec", "caBundle"); cur == want {
		return false
	}
	_ = unstructured.SetNestedField(u.Object, want, "spec", "caBundle")
	return true
}

// ForceRotation annotates the Secret so that the leader rotates the CA
// and then the serving certificate, as it does at expiry, with the old CA
// trusted throughout. It is what `kubectl annotate secret` with
// RotateAnnotation does.
func ForceRotation(ctx context.Context, c client.Client, key types.NamespacedName, now time.Time) error {
	secret := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: key.Name, Namespace: key.Namespace}}
	patch := fmt.Appendf(nil, `{"metadata":{"annotations":{%q:%q}}}`, RotateAnnotation, now.UTC().Format(time.RFC3339Nano))
	if err := c.Patch(ctx, secret, client.RawPatch(types.MergePatchType, patch)); err != nil {
		return fmt.Errorf("certs: force a rotation of %s: %w", key, err)
	}
	return nil
}
