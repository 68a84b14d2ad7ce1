package apiserver

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/go-logr/logr"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apiserver/pkg/authentication/user"
	"k8s.io/apiserver/pkg/authorization/authorizer"
	"k8s.io/client-go/kubernetes/fake"

	"github.com/flowforge/flowforge/certs"
	historystore "github.com/flowforge/flowforge/history/store"
)

// authConfigMap is what kube-apiserver publishes for aggregated servers.
func authConfigMap(t *testing.T) *corev1.ConfigMap {
	t.Helper()
	clientCA, err := certs.NewCA("client-ca", t0, 24*60*60*1e9)
	require.NoError(t, err)
	proxyCA, err := certs.NewCA("front-proxy-ca", t0, 24*60*60*1e9)
	require.NoError(t, err)
	return &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{Namespace: "kube-system", Name: "extension-apiserver-authentication"},
		Data: map[string]string{
			"client-ca-file":                     string(clientCA.CertPEM),
			"requestheader-client-ca-file":       string(proxyCA.CertPEM),
			"requestheader-allowed-names":        `["front-proxy-client"]`,
			"requestheader-username-headers":     `["X-Remote-User"]`,
			"requestheader-group-headers":        `["X-Remote-Group"]`,
			"requestheader-extra-headers-prefix": `["X-Remote-Extra-"]`,
		},
	}
}

func TestDelegatedAuthentication(t *testing.T) {
	ctx := context.Background()
	t.Run("refuses requests without credentials and forged headers", func(t *testing.T) {
		kube := fake.NewClientset(authConfigMap(t))
		store, err := historystore.OpenSQLite(ctx, ":memory:")
		require.NoError(t, err)
		defer store.Close() //nolint:errcheck // test
		l, err := net.Listen("tcp", "127.0.0.1:0")
		require.NoError(t, err)
		defer l.Close() //nolint:errcheck // test
		s, err := New(ctx, Options{Store: store, Kube: kube, Listener: l, Log: logr.Discard()})
		require.NoError(t, err)
		srv := httptest.NewServer(s.Handler())
		defer srv.Close()
		for _, headers := range []map[string]string{{}, {"X-Remote-User": "admin", "X-Remote-Group": "system:masters"}} {
			req, err := http.NewRequest(http.MethodGet, srv.URL+base+"/namespaces/a/executions", nil)
			require.NoError(t, err)
			for k, v := range headers {
				req.Header.Set(k, v)
			}
			resp, err := srv.Client().Do(req)
			require.NoError(t, err)
			_ = resp.Body.Close()
			assert.Equal(t, http.StatusUnauthorized, resp.StatusCode, "headers %v", headers)
		}
	})
	t.Run("a cluster without the front proxy's configuration", func(t *testing.T) {
		kube := fake.NewClientset()
		store, err := historystore.OpenSQLite(ctx, ":memory:")
		require.NoError(t, err)
		defer store.Close() //nolint:errcheck // test
		l, err := net.Listen("tcp", "127.0.0.1:0")
		require.NoError(t, err)
		defer l.Close() //nolint:errcheck // test
		_, err = New(ctx, Options{Store: store, Kube: kube, Listener: l, Log: logr.Discard()})
		require.ErrorContains(t, err, "kube-system/extension-apiserver-authentication")
	})
}

// TestDelegatedAuthorization: system:masters is allowed without a
// SubjectAccessReview (the API server never denies it anyway); every other
// user is asked about with a SubjectAccessReview, which
// test/integration/history covers on a real API server.
func TestDelegatedAuthorization(t *testing.T) {
	authz, err := delegateAuthorization(fake.NewClientset())
	require.NoError(t, err)
	decision, reason, err := authz.Authorize(context.Background(), authorizer.AttributesRecord{
		User: &user.DefaultInfo{Name: "root", Groups: []string{"system:masters"}},
		Verb: "get", APIGroup: "history.flowforge.io", Resource: "executions", Subresource: "log", Namespace: "team-b", Name: "x", ResourceRequest: true,
	})
	require.NoError(t, err)
	assert.Equal(t, authorizer.DecisionAllow, decision, reason)
}
