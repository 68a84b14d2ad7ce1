package render

import (
	"encoding/json"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"

	"github.com/flowforge/flowforge/internal/images"
	"github.com/flowforge/flowforge/policies"
	"github.com/flowforge/flowforge/policies/engine"
)

const (
	deployDir   = ".."
	overlaysDir = "../../overlays"
)

// objects renders the overlay (no image digests) and decodes it.
func objects(t *testing.T, overlay string) []*unstructured.Unstructured {
	t.Helper()
	dir := deployDir
	if overlay != BaseName {
		dir = filepath.Join(overlaysDir, overlay)
	}
	out, err := Render(dir, nil)
	require.NoError(t, err)
	return decode(t, out)
}

func decode(t *testing.T, data []byte) []*unstructured.Unstructured {
	t.Helper()
	var objs []*unstructured.Unstructured
	for _, doc := range strings.Split(string(data), "\n---\n") {
		js, err := utilyaml.ToJSON([]byte(doc))
		require.NoError(t, err)
		if string(js) == "null" {
			continue
		}
		u := &unstructured.Unstructured{}
		require.NoError(t, u.UnmarshalJSON(js))
		objs = append(objs, u)
	}
	return objs
}

func find(objs []*unstructured.Unstructured, kind, namePrefix string) []*unstructured.Unstructured {
	var out []*unstructured.Unstructured
	for _, o := range objs {
		if o.GetKind() == kind && strings.HasPrefix(o.GetName(), namePrefix) {
			out = append(out, o)
		}
	}
	return out
}

func one(t *testing.T, objs []*unstructured.Unstructured, kind, namePrefix string) *unstructured.Unstructured {
	t.Helper()
	got := find(objs, kind, namePrefix)
	require.Len(t, got, 1, "%s %s*", kind, namePrefix)
	return got[0]
}

func TestEveryOverlayRenders(t *testing.T) {
	overlays, err := Overlays(deployDir, overlaysDir)
	require.NoError(t, err)
	var names []string
	for _, o := range overlays {
		names = append(names, o.Name)
		objs := objects(t, o.Name)
		require.NotEmpty(t, find(objs, "Deployment", "flowforge-webhook"), o.Name)
		require.NotEmpty(t, find(objs, "Deployment", "flowforge-controller"), o.Name)
		dash := one(t, objs, "ConfigMap", "flowforge-grafana-dashboard")
		require.Equal(t, "1", dash.GetLabels()["grafana_dashboard"], "Grafana's sidecar loads it")
		data, _, _ := unstructured.NestedStringMap(dash.Object, "data")
		require.Contains(t, data["grafana-dashboard.json"], `"uid": "flowforge"`)
	}
	require.Equal(t, []string{BaseName, "cert-manager", "gke-sandbox", "policy-configmap", "runsc"}, names)
}

// policyFiles lists the modules and the data the binaries embed (what the
// policy loader reads), as ConfigMap keys.
func policyFiles(t *testing.T) []string {
	t.Helper()
	var keys []string
	require.NoError(t, fs.WalkDir(policies.Embedded(), ".", func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() && (strings.HasSuffix(p, ".rego") || p == "data.yaml") {
			keys = append(keys, strings.ReplaceAll(p, "/", "."))
		}
		return err
	}))
	sort.Strings(keys)
	return keys
}

func keys(m map[string]any) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func TestThePolicyConfigMapHoldsEveryPolicyAndIsMountedInBoth(t *testing.T) {
	objs := objects(t, "policy-configmap")
	cm := one(t, objs, "ConfigMap", "flowforge-policies-")
	data, _, _ := unstructured.NestedMap(cm.Object, "data")
	require.Equal(t, policyFiles(t), keys(data),
		"policies/kustomization.yaml lists every file the binaries embed (add new policies there)")
	for _, name := range []string{"flowforge-webhook", "flowforge-controller"} {
		d := one(t, objs, "Deployment", name)
		spec, _, _ := unstructured.NestedMap(d.Object, "spec", "template", "spec")
		js, err := json.Marshal(spec)
		require.NoError(t, err)
		require.Contains(t, string(js), `"--policy-dir=/etc/flowforge/policies"`, name)
		require.Contains(t, string(js), `"configMap":{"name":"`+cm.GetName()+`"}`, name+" mounts the generated, hashed ConfigMap")
		require.Contains(t, string(js), `"mountPath":"/etc/flowforge/policies"`, name)
	}
}

// servedPolicy loads the policies of an overlay's ConfigMap as the
// programs do from its mount.
func servedPolicy(t *testing.T, overlay string) *engine.Policy {
	t.Helper()
	cm := one(t, objects(t, overlay), "ConfigMap", "flowforge-policies-")
	data, _, _ := unstructured.NestedStringMap(cm.Object, "data")
	dir := t.TempDir()
	for k, v := range data {
		require.NoError(t, os.WriteFile(filepath.Join(dir, k), []byte(v), 0o644))
	}
	p, err := engine.Load(t.Context(), os.DirFS(dir))
	require.NoError(t, err, overlay)
	return p
}

func TestGKESandboxUsesGKEsRuntimeClassAndNodes(t *testing.T) {
	objs := objects(t, "gke-sandbox")
	require.Empty(t, find(objs, "RuntimeClass", ""), "GKE owns the gvisor RuntimeClass")
	p := servedPolicy(t, "gke-sandbox")
	require.Equal(t, "gvisor", p.Config("runtimeClass", "default"))
	require.Equal(t, map[string]any{"sandbox.gke.io/runtime": "gvisor"}, p.Config("scheduling", "nodeSelector"))
	require.Equal(t, []any{map[string]any{"key": "sandbox.gke.io/runtime", "operator": "Equal", "value": "gvisor", "effect": "NoSchedule"}},
		p.Config("scheduling", "tolerations"))
	require.Equal(t, map[string]any{"type": "RuntimeDefault"}, p.Config("seccomp", "default"))
}

func TestRunscHasOverheadAndDeliversTheSeccompProfileThePolicyNames(t *testing.T) {
	objs := objects(t, "runsc")
	rc := one(t, objs, "RuntimeClass", "gvisor")
	require.Equal(t, "runsc", rc.Object["handler"])
	overhead, _, _ := unstructured.NestedStringMap(rc.Object, "overhead", "podFixed")
	require.Equal(t, map[string]string{"cpu": "100m", "memory": "128Mi"}, overhead)
	sel, _, _ := unstructured.NestedStringMap(rc.Object, "scheduling", "nodeSelector")
	require.Equal(t, map[string]string{"flowforge.io/sandbox": "gvisor"}, sel)

	sp := one(t, objs, "SeccompProfile", "")
	require.Empty(t, sp.GetNamespace(), "the operator's v1 SeccompProfile is cluster-scoped")
	raw, err := os.ReadFile(filepath.Join(deployDir, "seccomp", "claude-worker.json"))
	require.NoError(t, err)
	var profile map[string]any
	require.NoError(t, json.Unmarshal(raw, &profile))
	spec, err := json.Marshal(sp.Object["spec"])
	require.NoError(t, err)
	var fromCR map[string]any
	require.NoError(t, json.Unmarshal(spec, &fromCR))
	require.Equal(t, profile, fromCR, "the SeccompProfile carries claude-worker.json as it is")

	p := servedPolicy(t, "runsc")
	require.Equal(t, map[string]any{"type": "Localhost", "localhostProfile": "operator/" + sp.GetName() + ".json"},
		p.Config("seccomp", "default"), "the policy names the file the operator writes")
}

func TestCertManagerChainsTheServingCertificateToALongLivedCA(t *testing.T) {
	objs := objects(t, "cert-manager")
	ca := one(t, objs, "Certificate", "flowforge-ca")
	isCA, _, _ := unstructured.NestedBool(ca.Object, "spec", "isCA")
	require.True(t, isCA)
	caIssuer, _, _ := unstructured.NestedString(ca.Object, "spec", "issuerRef", "name")
	self := one(t, objs, "Issuer", caIssuer)
	_, selfSigned, _ := unstructured.NestedMap(self.Object, "spec", "selfSigned")
	require.True(t, selfSigned)
	issuer := one(t, objs, "Issuer", "flowforge-ca")
	secret, _, _ := unstructured.NestedString(issuer.Object, "spec", "ca", "secretName")
	caSecret, _, _ := unstructured.NestedString(ca.Object, "spec", "secretName")
	require.Equal(t, caSecret, secret)
	leaf := one(t, objs, "Certificate", "flowforge-webhook")
	leafIssuer, _, _ := unstructured.NestedString(leaf.Object, "spec", "issuerRef", "name")
	require.Equal(t, "flowforge-ca", leafIssuer)
	for _, kind := range []string{"MutatingWebhookConfiguration", "ValidatingWebhookConfiguration"} {
		for _, w := range find(objs, kind, "") {
			require.Equal(t, "flowforge-system/flowforge-ca", w.GetAnnotations()["cert-manager.io/inject-ca-from"], kind)
		}
	}
}

func TestImagesAreDeployedByDigest(t *testing.T) {
	dir := t.TempDir()
	res := images.Results{Images: []images.Result{
		{Name: "flowforge-webhook", Image: "registry.example.com/ff/flowforge-webhook", Digest: "sha256:" + strings.Repeat("a", 64)},
		{Name: "flowforge-controller", Image: "registry.example.com/ff/flowforge-controller", Digest: "sha256:" + strings.Repeat("b", 64)},
	}}
	js, err := json.Marshal(res)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(dir, images.ResultsFile), js, 0o644))
	out := t.TempDir()
	written, err := All(Options{DeployDir: deployDir, OverlaysDir: overlaysDir, OutDir: out, ImagesDir: dir})
	require.NoError(t, err)
	require.Len(t, written, 5)
	for _, f := range written {
		data, err := os.ReadFile(f)
		require.NoError(t, err)
		for _, o := range decode(t, data) {
			if o.GetKind() != "Deployment" {
				continue
			}
			cs, _, _ := unstructured.NestedSlice(o.Object, "spec", "template", "spec", "containers")
			img := cs[0].(map[string]any)["image"]
			want := res.Images[0].Reference()
			if o.GetName() == "flowforge-controller" {
				want = res.Images[1].Reference()
			}
			require.Equal(t, want, img, f)
		}
	}

	// An image without a digest is an error, not a tag left in the release.
	res.Images = res.Images[:1]
	js, err = json.Marshal(res)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(dir, images.ResultsFile), js, 0o644))
	_, err = All(Options{DeployDir: deployDir, OverlaysDir: overlaysDir, OutDir: out, ImagesDir: dir})
	require.ErrorContains(t, err, "no digest for ghcr.io/flowforge/flowforge-controller:")
}
