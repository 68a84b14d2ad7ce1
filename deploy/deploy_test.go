package deploy

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	nodev1 "k8s.io/api/node/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
)

// TestWebhookConfigurationsAreSafe pins the registration choices the
// issues require, so that an edit of the manifest cannot quietly weaken them.
func TestWebhookConfigurationsAreSafe(t *testing.T) {
	m, v, err := WebhookConfigurations()
	require.NoError(t, err)
	// Labelled Jobs, and labelled Pods (issue 12, class 7).
	require.Len(t, m.Webhooks, 2)
	for i, resource := range []string{"jobs", "pods"} {
		mw := m.Webhooks[i]
		assert.Equal(t, []string{resource}, mw.Rules[0].Resources, mw.Name)
		assert.Equal(t, map[string]string{"app": "flowforge"}, mw.ObjectSelector.MatchLabels, mw.Name)
		assert.Equal(t, admissionregistrationv1.IfNeededReinvocationPolicy, *mw.ReinvocationPolicy, mw.Name)
		assert.Equal(t, admissionregistrationv1.SideEffectClassNone, *mw.SideEffects, mw.Name)
		assert.Equal(t, admissionregistrationv1.Equivalent, *mw.MatchPolicy, mw.Name)
		assert.LessOrEqual(t, *mw.TimeoutSeconds, int32(5), mw.Name)
		assert.Equal(t, []admissionregistrationv1.OperationType{admissionregistrationv1.Create}, mw.Rules[0].Operations, mw.Name)
	}

	require.Len(t, v.Webhooks, 8)
	byName := map[string]admissionregistrationv1.ValidatingWebhook{}
	for _, w := range v.Webhooks {
		byName[w.Name] = w
	}
	// Class 8: every connect subresource, with no objectSelector (the API
	// server's connect options carry no labels, so one would never match).
	connect := byName["pods-connect.validate.flowforge.io"]
	require.Len(t, connect.Rules, 1)
	assert.Equal(t, []admissionregistrationv1.OperationType{admissionregistrationv1.Connect}, connect.Rules[0].Operations)
	assert.ElementsMatch(t, []string{"pods/exec", "pods/attach", "pods/portforward", "pods/proxy"}, connect.Rules[0].Resources)
	assert.Nil(t, connect.ObjectSelector)
	assert.Contains(t, byName["pods.validate.flowforge.io"].Rules[0].Resources, "pods/resize")
	assert.Equal(t, []string{"cronjobs"}, byName["cronjobs.validate.flowforge.io"].Rules[0].Resources)
	assert.Equal(t, map[string]string{"flowforge.io/managed": "true"}, byName["managed-cronjobs.validate.flowforge.io"].NamespaceSelector.MatchLabels)
	for _, w := range append([]admissionregistrationv1.MutatingWebhook{}, m.Webhooks...) {
		assertExcludesSystemNamespaces(t, w.Name, w.NamespaceSelector, *w.FailurePolicy)
	}
	for _, w := range v.Webhooks {
		assertExcludesSystemNamespaces(t, w.Name, w.NamespaceSelector, *w.FailurePolicy)
		assert.Equal(t, admissionregistrationv1.SideEffectClassNone, *w.SideEffects, w.Name)
		assert.LessOrEqual(t, *w.TimeoutSeconds, int32(5), w.Name)
	}
}

func assertExcludesSystemNamespaces(t *testing.T, name string, sel *metav1.LabelSelector, fp admissionregistrationv1.FailurePolicyType) {
	t.Helper()
	assert.Equal(t, admissionregistrationv1.Fail, fp, "%s fails closed", name)
	require.NotNil(t, sel, name)
	found := false
	for _, e := range sel.MatchExpressions {
		if e.Key == "kubernetes.io/metadata.name" && e.Operator == metav1.LabelSelectorOpNotIn {
			assert.ElementsMatch(t, []string{"kube-system", "flowforge-system"}, e.Values, name)
			found = true
		}
	}
	assert.True(t, found, "%s excludes kube-system and flowforge-system", name)
}

func TestClusterObjects(t *testing.T) {
	objs, err := ClusterObjects()
	require.NoError(t, err)
	names := map[string]bool{}
	for _, o := range objs {
		names[o.GetName()] = true
		if rc, ok := o.(*nodev1.RuntimeClass); ok {
			assert.Equal(t, "runsc", rc.Handler)
		}
	}
	assert.Equal(t, map[string]bool{"gvisor": true, "flowforge-worker": true}, names)
}

func TestRegisterLocalPointsTheWebhooksAtAURL(t *testing.T) {
	scheme := runtime.NewScheme()
	require.NoError(t, clientgoscheme.AddToScheme(scheme))
	c := fake.NewClientBuilder().WithScheme(scheme).Build()
	ctx := context.Background()
	require.NoError(t, RegisterLocal(ctx, c, "https://127.0.0.1:9443", []byte("CA")))
	require.NoError(t, RegisterLocal(ctx, c, "https://127.0.0.1:9444/", []byte("CA2")), "registering again replaces")

	var m admissionregistrationv1.MutatingWebhookConfiguration
	require.NoError(t, c.Get(ctx, client.ObjectKey{Name: "flowforge-mutating"}, &m))
	assert.Equal(t, "https://127.0.0.1:9444/mutate-batch-v1-job", *m.Webhooks[0].ClientConfig.URL)
	assert.Nil(t, m.Webhooks[0].ClientConfig.Service)
	assert.Equal(t, []byte("CA2"), m.Webhooks[0].ClientConfig.CABundle)
	assert.Equal(t, "https://127.0.0.1:9444/mutate-v1-pod", *m.Webhooks[1].ClientConfig.URL)
	assert.Nil(t, m.Webhooks[1].ClientConfig.Service)
	var v admissionregistrationv1.ValidatingWebhookConfiguration
	require.NoError(t, c.Get(ctx, client.ObjectKey{Name: "flowforge-validating"}, &v))
	paths := map[string]bool{}
	for _, w := range v.Webhooks {
		paths[*w.ClientConfig.URL] = true
	}
	assert.Equal(t, map[string]bool{"https://127.0.0.1:9444/validate-batch-v1-job": true, "https://127.0.0.1:9444/validate-v1-pod": true,
		"https://127.0.0.1:9444/validate-v1-namespace": true, "https://127.0.0.1:9444/validate-v1-pod-connect": true,
		"https://127.0.0.1:9444/validate-batch-v1-cronjob": true}, paths)
	var rc nodev1.RuntimeClass
	require.NoError(t, c.Get(ctx, client.ObjectKey{Name: "gvisor"}, &rc))

	assert.ErrorContains(t, RegisterLocal(ctx, c, "http://127.0.0.1:9443", nil), "must be https")
}

func TestDecodeAllRejectsGarbage(t *testing.T) {
	_, err := decodeAll([]byte("apiVersion: v1\nkind: Nope\n"))
	assert.Error(t, err)
	_, err = decodeAll([]byte(":\n\t- not yaml"))
	assert.Error(t, err)
}

func TestApplyRBACCreatesTheIdentitiesAndIsRepeatable(t *testing.T) {
	scheme := runtime.NewScheme()
	require.NoError(t, clientgoscheme.AddToScheme(scheme))
	c := fake.NewClientBuilder().WithScheme(scheme).Build()
	for range 2 {
		require.NoError(t, ApplyRBAC(context.Background(), c), "applying twice replaces")
	}
	for _, sa := range []string{WebhookServiceAccount, ControllerServiceAccount} {
		var got corev1.ServiceAccount
		require.NoError(t, c.Get(context.Background(), client.ObjectKey{Namespace: Namespace, Name: sa}, &got), sa)
		var binding rbacv1.ClusterRoleBinding
		require.NoError(t, c.Get(context.Background(), client.ObjectKey{Name: sa}, &binding), sa)
		user, groups := ServiceAccountUser(sa)
		assert.Equal(t, "system:serviceaccount:"+binding.Subjects[0].Namespace+":"+binding.Subjects[0].Name, user)
		assert.Contains(t, groups, "system:authenticated")
	}
}
