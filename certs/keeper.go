package certs

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	toolscache "k8s.io/client-go/tools/cache"
)

// Keeper holds the serving certificate a replica serves. Load swaps it
// atomically, so a TLS handshake sees either the old certificate or the
// new one, and the server never restarts.
type Keeper struct {
	cur    atomic.Pointer[served]
	log    logr.Logger
	loaded chan struct{}
	once   sync.Once
}

type served struct {
	cert *tls.Certificate
	pem  []byte
}

// NewKeeper returns a Keeper with no certificate yet.
func NewKeeper(log logr.Logger) *Keeper { return &Keeper{log: log, loaded: make(chan struct{})} }

// firstCertWait bounds how long a handshake waits for the first
// certificate: a replica that just started and shares its address with
// others (SO_REUSEPORT) may get connections before its informer has
// delivered the Secret.
const firstCertWait = 10 * time.Second

// Load serves the pair in a Secret's data (tls.crt, tls.key) from now on.
// It reports whether the certificate changed; an invalid pair is refused
// and the current one kept.
func (k *Keeper) Load(data map[string][]byte) (bool, error) {
	certPEM := data[SecretCert]
	if cur := k.cur.Load(); cur != nil && bytes.Equal(cur.pem, certPEM) {
		return false, nil
	}
	pair, err := tls.X509KeyPair(certPEM, data[SecretKey])
	if err != nil {
		return false, fmt.Errorf("certs: serving pair: %w", err)
	}
	leaf, err := x509.ParseCertificate(pair.Certificate[0])
	if err != nil {
		return false, fmt.Errorf("certs: serving certificate: %w", err)
	}
	pair.Leaf = leaf
	k.cur.Store(&served{cert: &pair, pem: certPEM})
	k.once.Do(func() { close(k.loaded) })
	k.log.Info("Serving certificate loaded", "serial", leaf.SerialNumber.Text(16), "notAfter", leaf.NotAfter, "issuer", leaf.Issuer.CommonName)
	return true, nil
}

// GetCertificate is a tls.Config's GetCertificate. Until the first
// certificate is loaded it waits, for at most 10s or the handshake's
// context.
func (k *Keeper) GetCertificate(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
	ctx := context.Background()
	if hello != nil && hello.Context() != nil {
		ctx = hello.Context()
	}
	return k.certificate(ctx)
}

func (k *Keeper) certificate(ctx context.Context) (*tls.Certificate, error) {
	if cur := k.cur.Load(); cur != nil {
		return cur.cert, nil
	}
	t := time.NewTimer(firstCertWait)
	defer t.Stop()
	select {
	case <-k.loaded:
		return k.cur.Load().cert, nil
	case <-ctx.Done():
	case <-t.C:
	}
	return nil, errors.New("certs: no serving certificate loaded yet")
}

// Leaf is the certificate served now, or nil.
func (k *Keeper) Leaf() *x509.Certificate {
	if cur := k.cur.Load(); cur != nil {
		return cur.cert.Leaf
	}
	return nil
}

// Ready fails until a certificate is loaded (a readiness check).
func (k *Keeper) Ready() error {
	if k.cur.Load() == nil {
		return errors.New("no serving certificate loaded from the Secret yet")
	}
	return nil
}

// Handler returns informer callbacks for the Secret: every add or update
// is loaded, then changed is called (for example a Rotator's Kick), as it
// is on a deletion.
func (k *Keeper) Handler(changed func()) toolscache.ResourceEventHandler {
	load := func(obj any) {
		if s, ok := obj.(*corev1.Secret); ok {
			if _, err := k.Load(s.Data); err != nil {
				k.log.Error(err, "Ignoring the Secret's serving certificate", "secret", s.Namespace+"/"+s.Name)
			}
		}
		if changed != nil {
			changed()
		}
	}
	return toolscache.ResourceEventHandlerFuncs{
		AddFunc:    func(obj any) { load(obj) },
		UpdateFunc: func(_, obj any) { load(obj) },
		DeleteFunc: func(any) {
			if changed != nil {
				changed()
			}
		},
	}
}
