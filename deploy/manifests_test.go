package deploy

import (
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/utils/clock"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"

	"github.com/flowforge/flowforge/controller"
	"github.com/flowforge/flowforge/internal/metrics"
)

// manifests returns every object of every YAML file in deploy/.
func manifests(t *testing.T) []*unstructured.Unstructured {
	t.Helper()
	files, err := filepath.Glob("*.yaml")
	require.NoError(t, err)
	more, err := filepath.Glob("monitoring/*.yaml")
	require.NoError(t, err)
	var out []*unstructured.Unstructured
	for _, f := range append(files, more...) {
		if f == "kustomization.yaml" {
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
			require.NoError(t, err, f)
			if len(bytes.TrimSpace(doc)) == 0 {
				continue
			}
			u := &unstructured.Unstructured{}
			require.NoError(t, u.UnmarshalJSON(mustJSON(t, doc)), f)
			require.NotEmpty(t, u.GetKind(), f)
			out = append(out, u)
		}
	}
	return out
}

func mustJSON(t *testing.T, doc []byte) []byte {
	t.Helper()
	j, err := utilyaml.ToJSON(doc)
	require.NoError(t, err)
	return j
}

func TestKustomizationListsEveryManifest(t *testing.T) {
	data, err := os.ReadFile("kustomization.yaml")
	require.NoError(t, err)
	files, err := filepath.Glob("*.yaml")
	require.NoError(t, err)
	for _, f := range files {
		if f != "kustomization.yaml" {
			assert.Contains(t, string(data), "- "+f, "kustomization.yaml lists %s", f)
		}
	}
	assert.NotEmpty(t, manifests(t))
}

func TestWorkloadsAreHardenedToo(t *testing.T) {
	for _, u := range manifests(t) {
		if u.GetKind() != "Deployment" {
			continue
		}
		containers, _, err := unstructured.NestedSlice(u.Object, "spec", "template", "spec", "containers")
		require.NoError(t, err)
		for _, c := range containers {
			sc, _, _ := unstructured.NestedMap(c.(map[string]any), "securityContext")
			assert.Equal(t, false, sc["allowPrivilegeEscalation"], u.GetName())
			assert.Equal(t, true, sc["readOnlyRootFilesystem"], u.GetName())
		}
		nonRoot, _, _ := unstructured.NestedBool(u.Object, "spec", "template", "spec", "securityContext", "runAsNonRoot")
		assert.True(t, nonRoot, u.GetName())
	}
}

// TestAlertsAndDashboardUseRealMetrics catches a renamed metric that an
// alert or a dashboard panel still refers to.
func TestAlertsAndDashboardUseRealMetrics(t *testing.T) {
	reg := prometheus.NewRegistry()
	require.NoError(t, metrics.RegisterWebhook(reg))
	require.NoError(t, metrics.RegisterController(reg, controller.NewStateCollector(fake.NewClientBuilder().Build(), clock.RealClock{}, "x")))
	known := map[string]bool{}
	ch := make(chan *prometheus.Desc, 64)
	go func() {
		for _, c := range []prometheus.Collector{metrics.AdmissionDuration, metrics.PolicyEvalDuration, metrics.Mutations, metrics.Denials, metrics.PolicyReloads, metrics.PolicyReloadErrors, metrics.PolicyInfo,
			metrics.JobDuration, metrics.QueueWait, metrics.Timeouts, metrics.Cancellations, metrics.Retries, metrics.ExportLag, metrics.ExportFailures, metrics.LogBytesShipped, metrics.LogLinesShipped,
			metrics.HistoryRecords, metrics.HistoryArchiveBytes, metrics.HistoryStoreBytes, metrics.HistoryVolumeCapacity, metrics.HistoryVolumeAvailable,
			metrics.HistoryPrunedRecords, metrics.HistoryPrunedBytes, metrics.HistoryPrunedClaims, metrics.HistoryLastPrune, metrics.HistoryPruneFailures, metrics.HistoryStoreErrors,
			controller.NewStateCollector(nil, clock.RealClock{}, "x")} {
			c.Describe(ch)
		}
		close(ch)
	}()
	nameRE := regexp.MustCompile(`fqName: "([^"]+)"`)
	for d := range ch {
		if m := nameRE.FindStringSubmatch(d.String()); m != nil {
			known[m[1]] = true
		}
	}
	require.Greater(t, len(known), 15)
	used := regexp.MustCompile(`flowforge_[a-z_]+`)
	for _, f := range []string{"monitoring/prometheus-rule.yaml", "monitoring/grafana-dashboard.json"} {
		data, err := os.ReadFile(f)
		require.NoError(t, err)
		for _, name := range used.FindAllString(string(data), -1) {
			base := strings.TrimSuffix(strings.TrimSuffix(strings.TrimSuffix(name, "_bucket"), "_count"), "_sum")
			assert.True(t, known[base], "%s refers to unknown metric %s", f, name)
		}
	}
}
