package deploy

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/kyaml/filesys"

	"github.com/flowforge/flowforge/certs"
)

// kustomize builds an overlay of deploy/ with the given components, as an
// installer would.
func kustomize(t *testing.T, components ...string) []*unstructured.Unstructured {
	t.Helper()
	abs, err := filepath.Abs(".")
	require.NoError(t, err)
	dir := t.TempDir()
	rel, err := filepath.Rel(dir, abs)
	require.NoError(t, err)
	k := "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources: [" + rel + "]\n"
	if len(components) > 0 {
		var cs []string
		for _, c := range components {
			cs = append(cs, filepath.Join(rel, c))
		}
		k += "components: [" + strings.Join(cs, ", ") + "]\n"
	}
	require.NoError(t, os.WriteFile(filepath.Join(dir, "kustomization.yaml"), []byte(k), 0o644))
	m, err := krusty.MakeKustomizer(krusty.MakeDefaultOptions()).Run(filesys.MakeFsOnDisk(), dir)
	require.NoError(t, err)
	var out []*unstructured.Unstructured
	for _, r := range m.Resources() {
		js, err := r.MarshalJSON()
		require.NoError(t, err)
		u := &unstructured.Unstructured{}
		require.NoError(t, u.UnmarshalJSON(js))
		out = append(out, u)
	}
	return out
}

func only(t *testing.T, objs []*unstructured.Unstructured, kind, name string) *unstructured.Unstructured {
	t.Helper()
	var got []*unstructured.Unstructured
	for _, o := range objs {
		if o.GetKind() == kind && o.GetName() == name {
			got = append(got, o)
		}
	}
	require.Len(t, got, 1, "%s %s", kind, name)
	return got[0]
}

func webhookContainer(t *testing.T, objs []*unstructured.Unstructured) (args []string, mounts []any, volumes []any) {
	t.Helper()
	d := only(t, objs, "Deployment", "flowforge-webhook")
	containers, _, err := unstructured.NestedSlice(d.Object, "spec", "template", "spec", "containers")
	require.NoError(t, err)
	c := containers[0].(map[string]any)
	for _, a := range c["args"].([]any) {
		args = append(args, a.(string))
	}
	mounts, _, _ = unstructured.NestedSlice(c, "volumeMounts")
	volumes, _, _ = unstructured.NestedSlice(d.Object, "spec", "template", "spec", "volumes")
	return args, mounts, volumes
}

// lastFlag is what Go's flag package keeps for a repeated flag.
func lastFlag(args []string, name string) string {
	v := ""
	for _, a := range args {
		if rest, ok := strings.CutPrefix(a, "--"+name+"="); ok {
			v = rest
		}
	}
	return v
}

func TestBaseWebhookRotatesItsOwnCertificate(t *testing.T) {
	objs := kustomize(t)
	args, _, volumes := webhookContainer(t, objs)
	assert.Equal(t, certs.ModeRotate, lastFlag(args, "cert-mode"))
	for _, v := range volumes {
		assert.Nil(t, v.(map[string]any)["secret"], "no Secret volume: a pod would wait for a Secret only a running replica creates")
	}
	for _, o := range objs {
		assert.NotContains(t, []string{"Certificate", "Issuer"}, o.GetKind(), "no cert-manager object in the base")
		assert.Empty(t, o.GetAnnotations()["cert-manager.io/inject-ca-from"], o.GetName())
	}
}

func TestCertManagerComponentChainsToALongLivedCA(t *testing.T) {
	objs := kustomize(t, "cert-manager")
	args, mounts, volumes := webhookContainer(t, objs)
	assert.Equal(t, certs.ModeFiles, lastFlag(args, "cert-mode"), "the component's --cert-mode wins")
	assert.Equal(t, "/etc/flowforge/tls", lastFlag(args, "cert-dir"))
	assert.Contains(t, mounts, map[string]any{"name": "tls", "mountPath": "/etc/flowforge/tls", "readOnly": true})
	assert.Contains(t, volumes, map[string]any{"name": "tls", "secret": map[string]any{"secretName": "flowforge-webhook-tls"}})

	ca := only(t, objs, "Certificate", "flowforge-ca")
	isCA, _, _ := unstructured.NestedBool(ca.Object, "spec", "isCA")
	assert.True(t, isCA)
	selfIssuer, _, _ := unstructured.NestedString(ca.Object, "spec", "issuerRef", "name")
	_, selfSigned, _ := unstructured.NestedMap(only(t, objs, "Issuer", selfIssuer).Object, "spec", "selfSigned")
	assert.True(t, selfSigned, "the CA is self-signed")
	caSecret, _, _ := unstructured.NestedString(ca.Object, "spec", "secretName")
	issuerSecret, _, _ := unstructured.NestedString(only(t, objs, "Issuer", "flowforge-ca").Object, "spec", "ca", "secretName")
	assert.Equal(t, caSecret, issuerSecret, "the CA Issuer signs with the CA Certificate")

	leaf := only(t, objs, "Certificate", "flowforge-webhook")
	leafIssuer, _, _ := unstructured.NestedString(leaf.Object, "spec", "issuerRef", "name")
	assert.Equal(t, "flowforge-ca", leafIssuer, "the serving certificate comes from the CA Issuer, not a self-signed one")
	leafSecret, _, _ := unstructured.NestedString(leaf.Object, "spec", "secretName")
	assert.Equal(t, "flowforge-webhook-tls", leafSecret)
	caDuration, _, _ := unstructured.NestedString(ca.Object, "spec", "duration")
	leafDuration, _, _ := unstructured.NestedString(leaf.Object, "spec", "duration")
	assert.Equal(t, "87600h", caDuration)
	assert.Equal(t, "2160h", leafDuration)
	injected := 0
	for _, kind := range []string{"MutatingWebhookConfiguration", "ValidatingWebhookConfiguration", "APIService"} {
		for _, o := range objs {
			if o.GetKind() == kind {
				assert.Equal(t, "flowforge-system/flowforge-ca", o.GetAnnotations()["cert-manager.io/inject-ca-from"], kind)
				injected++
			}
		}
	}
	assert.Equal(t, 3, injected, "both webhook configurations and the history APIService")
	// The controller's history API serves the same Secret, so the
	// certificate must name its Service too (as the rotator's --cert-hosts do).
	dnsNames, _, _ := unstructured.NestedStringSlice(leaf.Object, "spec", "dnsNames")
	hosts := strings.Split(lastFlag(args, "cert-hosts"), ",")
	assert.ElementsMatch(t, hosts, dnsNames, "the cert-manager certificate names what the rotator's would")
}

// TestRBACGrantsTheRotatorByName: the webhook's certificate rights name
// exactly the Secret, the Lease and the configurations the defaults use.
func TestRBACGrantsTheRotatorByName(t *testing.T) {
	objs, err := decodeAll(rbac)
	require.NoError(t, err)
	cfg := certs.DefaultConfig()
	key, err := cfg.SecretKey()
	require.NoError(t, err)
	rules := map[string][]rbacv1.PolicyRule{}
	for _, o := range objs {
		switch r := o.(type) {
		case *rbacv1.Role:
			rules[r.Name] = r.Rules
			assert.Equal(t, Namespace, r.Namespace)
		case *rbacv1.ClusterRole:
			rules[r.Name] = r.Rules
		}
	}
	named := func(role, resource string, verbs ...string) []string {
		for _, r := range rules[role] {
			if slices.Contains(r.Resources, resource) && slices.Equal(r.Verbs, verbs) {
				return r.ResourceNames
			}
		}
		return nil
	}
	assert.Equal(t, Namespace, key.Namespace)
	assert.Equal(t, []string{key.Name}, named("flowforge-webhook-certificates", "secrets", "get", "list", "watch", "update"))
	assert.Equal(t, []string{cfg.LeaseName()}, named("flowforge-webhook-certificates", "leases", "get", "update"))
	assert.Equal(t, cfg.MutatingWebhooks, named("flowforge-webhook-ca-injection", "mutatingwebhookconfigurations", "get", "update"))
	assert.Equal(t, cfg.ValidatingWebhooks, named("flowforge-webhook-ca-injection", "validatingwebhookconfigurations", "get", "update"))
	m, v, err := WebhookConfigurations()
	require.NoError(t, err)
	assert.Equal(t, []string{m.Name}, cfg.MutatingWebhooks)
	assert.Equal(t, []string{v.Name}, cfg.ValidatingWebhooks)
	// Nothing but create is granted without a name, and only in Namespace.
	for _, role := range []string{"flowforge-webhook-certificates", "flowforge-webhook-ca-injection"} {
		for _, r := range rules[role] {
			if len(r.ResourceNames) == 0 {
				assert.Equal(t, []string{"create"}, r.Verbs, "%s: %v", role, r.Resources)
			}
		}
	}
}
