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
		assert.LessOrEqual(t, *mw.TimeoutSeconds, int32(10), mw.Name)
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
		assert.LessOrEqual(t, *w.TimeoutSeconds, int32(10), w.Name)
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

func TestRegisterLocalUsesServiceReferences(t *testing.T) {
	scheme := runtime.NewScheme()
	require.NoError(t, clientgoscheme.AddToScheme(scheme))
	c := fake.NewClientBuilder().WithScheme(scheme).Build()
	ctx := context.Background()
	require.NoError(t, RegisterLocal(ctx, c, "127.99.7.10", 0, []byte("CA")))
	require.NoError(t, RegisterLocal(ctx, c, "127.99.7.10", 0, []byte("CA2")), "registering again replaces")

	deployedM, deployedV, err := WebhookConfigurations()
	require.NoError(t, err)
	var m admissionregistrationv1.MutatingWebhookConfiguration
	require.NoError(t, c.Get(ctx, client.ObjectKey{Name: "flowforge-mutating"}, &m))
	var v admissionregistrationv1.ValidatingWebhookConfiguration
	require.NoError(t, c.Get(ctx, client.ObjectKey{Name: "flowforge-validating"}, &v))
	require.Len(t, m.Webhooks, len(deployedM.Webhooks))
	require.Len(t, v.Webhooks, len(deployedV.Webhooks))
	configs := make([]admissionregistrationv1.WebhookClientConfig, 0, len(m.Webhooks)+len(v.Webhooks))
	deployed := make([]admissionregistrationv1.WebhookClientConfig, 0, cap(configs))
	for i := range m.Webhooks {
		configs, deployed = append(configs, m.Webhooks[i].ClientConfig), append(deployed, deployedM.Webhooks[i].ClientConfig)
	}
	for i := range v.Webhooks {
		configs, deployed = append(configs, v.Webhooks[i].ClientConfig), append(deployed, deployedV.Webhooks[i].ClientConfig)
	}
	for i, cc := range configs {
		assert.Nil(t, cc.URL, "no url: the API server finds the webhook through its Service")
		require.NotNil(t, cc.Service)
		assert.Equal(t, *deployed[i].Service, *cc.Service, "the reference is the deployed one")
		assert.Equal(t, []byte("CA2"), cc.CABundle)
	}

	var svc corev1.Service
	require.NoError(t, c.Get(ctx, client.ObjectKey{Namespace: Namespace, Name: WebhookServiceName}, &svc))
	assert.Equal(t, "127.99.7.10", svc.Spec.ClusterIP)
	deployedSvc, err := WebhookService()
	require.NoError(t, err)
	assert.Equal(t, deployedSvc.Spec.Ports, svc.Spec.Ports)
	var rc nodev1.RuntimeClass
	require.NoError(t, c.Get(ctx, client.ObjectKey{Name: "gvisor"}, &rc))

	t.Run("another port changes the Service and every reference alike", func(t *testing.T) {
		c := fake.NewClientBuilder().WithScheme(scheme).Build()
		require.NoError(t, RegisterLocal(ctx, c, "127.99.7.10", 10443, []byte("CA")))
		var svc corev1.Service
		require.NoError(t, c.Get(ctx, client.ObjectKey{Namespace: Namespace, Name: WebhookServiceName}, &svc))
		ports := map[string]int32{}
		for _, p := range svc.Spec.Ports {
			ports[p.Name] = p.Port
		}
		assert.Equal(t, int32(10443), ports["https"])
		assert.Equal(t, int32(8080), ports["metrics"], "other ports stay")
		var v admissionregistrationv1.ValidatingWebhookConfiguration
		require.NoError(t, c.Get(ctx, client.ObjectKey{Name: "flowforge-validating"}, &v))
		for _, w := range v.Webhooks {
			require.NotNil(t, w.ClientConfig.Service.Port)
			assert.Equal(t, int32(10443), *w.ClientConfig.Service.Port, w.Name)
		}
	})

	for _, bad := range []struct {
		ip   string
		port int32
		want string
	}{
		{"https://127.0.0.1:9443", 0, "not an IP address"},
		{"", 0, "not an IP address"},
		{"127.99.7.10", -1, "out of range"},
		{"127.99.7.10", 70000, "out of range"},
	} {
		assert.ErrorContains(t, RegisterLocal(ctx, c, bad.ip, bad.port, nil), bad.want)
	}
}

func TestSetCABundle(t *testing.T) {
	m, v, err := WebhookConfigurations()
	require.NoError(t, err)
	SetCABundle(m, v, []byte("CA"))
	for _, w := range m.Webhooks {
		assert.Equal(t, []byte("CA"), w.ClientConfig.CABundle, w.Name)
	}
	for _, w := range v.Webhooks {
		assert.Equal(t, []byte("CA"), w.ClientConfig.CABundle, w.Name)
	}
}

func TestWebhookServiceAndNames(t *testing.T) {
	svc, err := WebhookService()
	require.NoError(t, err)
	assert.Equal(t, Namespace, svc.Namespace)
	assert.Equal(t, []string{"flowforge-webhook.flowforge-system.svc", "flowforge-webhook.flowforge-system.svc.cluster.local"}, ServiceDNSNames(svc.Name))

	objs, err := decodeKnown([]byte("apiVersion: example.com/v1\nkind: Monitor\nmetadata: {name: m}\n---\napiVersion: v1\nkind: Service\nmetadata: {name: s}\n"))
	require.NoError(t, err, "unknown kinds are skipped")
	require.Len(t, objs, 1)
	_, err = decodeAll([]byte("apiVersion: example.com/v1\nkind: Monitor\nmetadata: {name: m}\n"))
	require.Error(t, err, "but not by decodeAll")
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
