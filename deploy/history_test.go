package deploy

import (
	"context"
	"encoding/base64"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/kubernetes/scheme"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
)

func TestHistoryObjects(t *testing.T) {
	apiService, svc, err := HistoryObjects()
	require.NoError(t, err)
	ref, _, _ := unstructured.NestedMap(apiService.Object, "spec", "service")
	assert.Equal(t, map[string]any{"namespace": Namespace, "name": HistoryServiceName, "port": int64(443)}, ref)
	group, _, _ := unstructured.NestedString(apiService.Object, "spec", "group")
	version, _, _ := unstructured.NestedString(apiService.Object, "spec", "version")
	assert.Equal(t, "history.flowforge.io/v1alpha1", group+"/"+version)
	skip, found, _ := unstructured.NestedBool(apiService.Object, "spec", "insecureSkipTLSVerify")
	assert.False(t, found && skip, "the API server verifies the history API's certificate")
	require.Len(t, svc.Spec.Ports, 1)
	assert.Equal(t, "https", svc.Spec.Ports[0].Name)
	assert.Equal(t, "history", svc.Spec.Ports[0].TargetPort.String())
	assert.Equal(t, map[string]string{"app.kubernetes.io/name": "flowforge-controller"}, svc.Spec.Selector)
}

func TestRegisterHistoryLocal(t *testing.T) {
	ctx := context.Background()
	c := fake.NewClientBuilder().WithScheme(scheme.Scheme).Build()
	require.NoError(t, RegisterHistoryLocal(ctx, c, "127.99.3.11", 8443, []byte("CA")))
	require.NoError(t, RegisterHistoryLocal(ctx, c, "127.99.3.11", 8443, []byte("CA")), "again: replaced")

	svc := &corev1.Service{}
	require.NoError(t, c.Get(ctx, client.ObjectKey{Namespace: Namespace, Name: HistoryServiceName}, svc))
	assert.Equal(t, "127.99.3.11", svc.Spec.ClusterIP)
	assert.Equal(t, int32(8443), svc.Spec.Ports[0].Port)
	u := &unstructured.Unstructured{}
	u.SetGroupVersionKind(schema.GroupVersionKind{Group: "apiregistration.k8s.io", Version: "v1", Kind: "APIService"})
	require.NoError(t, c.Get(ctx, client.ObjectKey{Name: HistoryAPIServiceName}, u))
	port, _, _ := unstructured.NestedInt64(u.Object, "spec", "service", "port")
	assert.Equal(t, int64(8443), port)
	bundle, _, _ := unstructured.NestedString(u.Object, "spec", "caBundle")
	assert.Equal(t, base64.StdEncoding.EncodeToString([]byte("CA")), bundle)
	crb := &rbacv1.ClusterRoleBinding{}
	require.NoError(t, c.Get(ctx, client.ObjectKey{Name: "flowforge-controller:system:auth-delegator"}, crb))
	assert.Equal(t, "system:auth-delegator", crb.RoleRef.Name)
	rb := &rbacv1.RoleBinding{}
	require.NoError(t, c.Get(ctx, client.ObjectKey{Namespace: "kube-system", Name: "flowforge-controller:extension-apiserver-authentication-reader"}, rb))
	reader := &rbacv1.ClusterRole{}
	require.NoError(t, c.Get(ctx, client.ObjectKey{Name: "flowforge-history-reader"}, reader))
	for _, role := range []string{"view", "edit", "admin"} {
		assert.Equal(t, "true", reader.Labels["rbac.authorization.k8s.io/aggregate-to-"+role], role)
	}
	assert.Equal(t, []string{"get", "list", "watch"}, reader.Rules[0].Verbs, "read-only")

	for _, bad := range []struct {
		ip   string
		port int32
		ca   []byte
		want string
	}{
		{"not-an-ip", 0, []byte("CA"), "not an IP address"},
		{"127.99.3.11", 70000, []byte("CA"), "out of range"},
		{"127.99.3.11", 0, nil, "caBundle"},
	} {
		assert.ErrorContains(t, RegisterHistoryLocal(ctx, c, bad.ip, bad.port, bad.ca), bad.want)
	}
}
