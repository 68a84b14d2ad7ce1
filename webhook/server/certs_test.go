package server

import (
	"testing"
	"time"

	"github.com/go-logr/logr"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/flowforge/flowforge/certs"
)

func TestServingCertsByMode(t *testing.T) {
	cfg := &rest.Config{Host: "https://127.0.0.1:1"}
	scheme := runtime.NewScheme()
	for _, mode := range []string{"", certs.ModeFiles} {
		s, err := newServingCerts(cfg, scheme, Options{Certs: certs.Config{Mode: mode}}, logr.Discard())
		require.NoError(t, err)
		assert.Nil(t, s, "files mode: controller-runtime watches CertDir")
		assert.Nil(t, s.readyCheck())
		assert.Len(t, s.withSecret(map[client.Object]cache.ByObject{}), 0)
	}
	_, err := newServingCerts(cfg, scheme, Options{Certs: certs.Config{Mode: certs.ModeRotate, Secret: "no-namespace"}}, logr.Discard())
	require.ErrorContains(t, err, "namespace/name")

	s, err := newServingCerts(cfg, scheme, Options{Certs: certs.DefaultConfig()}, logr.Discard())
	require.NoError(t, err)
	byObject := s.withSecret(map[client.Object]cache.ByObject{})
	require.Len(t, byObject, 1)
	for obj, by := range byObject {
		assert.IsType(t, &corev1.Secret{}, obj)
		assert.Equal(t, "metadata.name=flowforge-webhook-tls", by.Field.String(), "the one Secret, by name")
		assert.Contains(t, by.Namespaces, "flowforge-system")
	}
	check := s.readyCheck()
	require.NotNil(t, check)
	_, err = check()
	require.ErrorContains(t, err, "no serving certificate")

	ca, err := certs.NewCA("test-ca", time.Now(), time.Hour)
	require.NoError(t, err)
	kp, err := ca.Issue(certs.Leaf{CommonName: "w", DNSNames: []string{"w"}, Server: true}, time.Now(), time.Hour)
	require.NoError(t, err)
	_, err = s.keeper.Load(map[string][]byte{certs.SecretCert: kp.CertPEM, certs.SecretKey: kp.KeyPEM})
	require.NoError(t, err)
	detail, err := check()
	require.NoError(t, err)
	assert.Contains(t, detail, "from test-ca")
	assert.Contains(t, detail, "Secret flowforge-system/flowforge-webhook-tls")
}
