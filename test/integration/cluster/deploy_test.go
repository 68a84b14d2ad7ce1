package cluster

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"sort"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/discovery/cached/memory"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/restmapper"

	"github.com/flowforge/flowforge/test/localcluster"
)

// TestDeployManifestsAreAcceptedByTheAPIServer creates every object of
// deploy/ with a server-side dry run, so schema errors in the manifests for
// a real cluster are caught here. Kinds whose CRDs this cluster lacks
// (cert-manager, Prometheus Operator) are skipped by kind, not silently.
func TestDeployManifestsAreAcceptedByTheAPIServer(t *testing.T) {
	root, err := localcluster.ModuleRoot()
	require.NoError(t, err)
	files, err := filepath.Glob(filepath.Join(root, "deploy", "*.yaml"))
	require.NoError(t, err)
	more, err := filepath.Glob(filepath.Join(root, "deploy", "monitoring", "*.yaml"))
	require.NoError(t, err)
	dc, err := discovery.NewDiscoveryClientForConfig(testCluster.RESTConfig)
	require.NoError(t, err)
	mapper := restmapper.NewDeferredDiscoveryRESTMapper(memory.NewMemCacheClient(dc))
	dyn, err := dynamic.NewForConfig(testCluster.RESTConfig)
	require.NoError(t, err)
	ctx := context.Background()
	withoutCRD := map[string]bool{"Issuer": true, "Certificate": true, "PrometheusRule": true, "ServiceMonitor": true}
	checked := 0
	// The namespace first: the namespaced objects need it.
	sort.SliceStable(files, func(i, j int) bool {
		return filepath.Base(files[i]) == "namespace.yaml" && filepath.Base(files[j]) != "namespace.yaml"
	})
	for _, f := range append(files, more...) {
		if filepath.Base(f) == "kustomization.yaml" {
			continue
		}
		data, err := os.ReadFile(f)
		require.NoError(t, err)
		r := utilyaml.NewYAMLReader(bufioReader(data))
		for {
			doc, err := r.Read()
			if errors.Is(err, io.EOF) {
				break
			}
			require.NoError(t, err)
			if len(bytes.TrimSpace(doc)) == 0 {
				continue
			}
			js, err := utilyaml.ToJSON(doc)
			require.NoError(t, err)
			u := &unstructured.Unstructured{}
			require.NoError(t, u.UnmarshalJSON(js))
			if withoutCRD[u.GetKind()] {
				t.Logf("%s %s: its CRD is not installed here", u.GetKind(), u.GetName())
				continue
			}
			gvk := u.GroupVersionKind()
			m, err := mapper.RESTMapping(gvk.GroupKind(), gvk.Version)
			require.NoError(t, err, "%s: %s", filepath.Base(f), gvk)
			var ri dynamic.ResourceInterface = dyn.Resource(m.Resource)
			if m.Scope.Name() == meta.RESTScopeNameNamespace {
				ri = dyn.Resource(m.Resource).Namespace(u.GetNamespace())
			}
			opts := metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}}
			if u.GetKind() == "Namespace" {
				opts = metav1.CreateOptions{} // the namespaced objects need it to exist
			}
			_, err = ri.Create(ctx, u, opts)
			if apierrors.IsAlreadyExists(err) {
				err = nil
			}
			assert.NoError(t, err, "%s: %s %s", filepath.Base(f), u.GetKind(), u.GetName())
			checked++
		}
	}
	assert.Greater(t, checked, 15)
}

func bufioReader(data []byte) *bufio.Reader { return bufio.NewReader(bytes.NewReader(data)) }
