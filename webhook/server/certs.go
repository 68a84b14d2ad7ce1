package server

import (
	"context"
	"crypto/tls"
	"fmt"
	"time"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/rest"
	"k8s.io/utils/clock"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/manager"

	"github.com/flowforge/flowforge/certs"
)

// servingCerts is the serving certificate in rotate mode: every replica
// serves the Secret's pair through a Keeper fed by an informer on that one
// Secret, and the replica holding the Lease runs the Rotator. In files
// mode (opts.Certs.Mode "files", or empty for callers that only set
// CertDir) it is nil and controller-runtime watches CertDir.
type servingCerts struct {
	cfg     certs.Config
	key     types.NamespacedName
	keeper  *certs.Keeper
	rotator *certs.Rotator
	rest    *rest.Config
}

func newServingCerts(cfg *rest.Config, scheme *runtime.Scheme, opts Options, log logr.Logger) (*servingCerts, error) {
	c := opts.Certs
	if c.Mode == "" || c.Mode == certs.ModeFiles {
		return nil, nil
	}
	if err := c.Validate(); err != nil {
		return nil, err
	}
	key, err := c.SecretKey()
	if err != nil {
		return nil, err
	}
	// The rotator reads and writes the API server's objects directly: a
	// cache could hand it a stale Secret.
	direct, err := client.New(cfg, client.Options{Scheme: scheme})
	if err != nil {
		return nil, fmt.Errorf("certificate rotator client: %w", err)
	}
	r, err := certs.NewRotator(c, direct, clock.RealClock{}, log.WithName("cert-rotator"))
	if err != nil {
		return nil, err
	}
	return &servingCerts{cfg: c, key: key, keeper: certs.NewKeeper(log.WithName("cert-keeper")), rotator: r, rest: cfg}, nil
}

// tlsOpt serves the Keeper's certificate.
func (s *servingCerts) tlsOpt() func(*tls.Config) {
	return func(c *tls.Config) { c.GetCertificate = s.keeper.GetCertificate }
}

// withSecret adds the one Secret to the cache's objects (the RBAC grants
// get, list and watch on it by name only). Nil-safe: files mode.
func (s *servingCerts) withSecret(byObject map[client.Object]cache.ByObject) map[client.Object]cache.ByObject {
	if s != nil {
		byObject[&corev1.Secret{}] = cache.ByObject{
			Namespaces: map[string]cache.Config{s.key.Namespace: {}},
			Field:      fields.OneTermEqualSelector("metadata.name", s.key.Name),
		}
	}
	return byObject
}

// start loads every change of the Secret and runs the leader-elected
// rotator with the manager.
func (s *servingCerts) start(ctx context.Context, mgr manager.Manager) error {
	inf, err := mgr.GetCache().GetInformer(ctx, &corev1.Secret{})
	if err != nil {
		return fmt.Errorf("certificate Secret informer: %w", err)
	}
	if _, err := inf.AddEventHandler(s.keeper.Handler(s.rotator.Kick)); err != nil {
		return fmt.Errorf("certificate Secret handler: %w", err)
	}
	return mgr.Add(manager.RunnableFunc(func(ctx context.Context) error {
		return s.rotator.RunLeaderElected(ctx, s.rest)
	}))
}

// readyCheck is ready, or nil in files mode.
func (s *servingCerts) readyCheck() func() (string, error) {
	if s == nil {
		return nil
	}
	return s.ready
}

// ready fails until a certificate is served, and names the one served:
// /readyz?verbose shows which certificate each replica serves.
func (s *servingCerts) ready() (string, error) {
	if err := s.keeper.Ready(); err != nil {
		return "", err
	}
	leaf := s.keeper.Leaf()
	return fmt.Sprintf("serial %s from %s, not after %s, from Secret %s", leaf.SerialNumber.Text(16), leaf.Issuer.CommonName, leaf.NotAfter.UTC().Format(time.RFC3339), s.key), nil
}
