package metrics

import (
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestLint runs client_golang's metric linter over every FlowForge metric.
func TestLint(t *testing.T) {
	reg := prometheus.NewPedanticRegistry()
	require.NoError(t, RegisterWebhook(reg))
	require.NoError(t, RegisterController(reg))
	// Give the vectors a series each, so that the linter sees them.
	AdmissionDuration.WithLabelValues("mutate", OutcomePatched).Observe(0.001)
	PolicyEvalDuration.WithLabelValues("mutate").Observe(0.0001)
	Mutations.WithLabelValues("runtimeClassName").Inc()
	Denials.WithLabelValues("validate-job").Inc()
	PolicyInfo.WithLabelValues("r1").Set(1)
	JobDuration.WithLabelValues("Succeeded").Observe(10)
	Timeouts.WithLabelValues("deadline").Inc()
	Retries.WithLabelValues("Error").Inc()
	HistoryPrunedBytes.WithLabelValues("age").Add(1)
	HistoryStoreErrors.WithLabelValues("PutLogArchive").Inc()
	problems, err := testutil.GatherAndLint(reg)
	require.NoError(t, err)
	assert.Empty(t, problems)
	families, err := reg.Gather()
	require.NoError(t, err)
	for _, f := range families {
		assert.Regexp(t, `^flowforge_`, f.GetName())
	}
}

func TestRegisterTwiceIsFine(t *testing.T) {
	reg := prometheus.NewRegistry()
	require.NoError(t, RegisterWebhook(reg))
	require.NoError(t, RegisterWebhook(reg), "a second server in one process")
	require.Error(t, register(reg, prometheus.NewCounter(prometheus.CounterOpts{Name: "flowforge_policy_reloads_total", Help: "different"})))
}

func TestPolicyRecorder(t *testing.T) {
	r := PolicyRecorder{}
	before, errsBefore := testutil.ToFloat64(PolicyReloads), testutil.ToFloat64(PolicyReloadErrors)
	r.PolicyReload(true)
	r.PolicyReload(false)
	assert.Equal(t, before+1, testutil.ToFloat64(PolicyReloads))
	assert.Equal(t, errsBefore+1, testutil.ToFloat64(PolicyReloadErrors))
	r.PolicyRevision("a")
	r.PolicyRevision("b")
	assert.Equal(t, 1, testutil.CollectAndCount(PolicyInfo), "only the revision being served")
	assert.Equal(t, 1.0, testutil.ToFloat64(PolicyInfo.WithLabelValues("b")))
	r.PolicyEval("validate", time.Millisecond)
	assert.GreaterOrEqual(t, testutil.CollectAndCount(PolicyEvalDuration), 1)
}

func TestPolicyCacheLookup(t *testing.T) {
	r := PolicyRecorder{}
	hits := testutil.ToFloat64(PolicyCacheLookups.WithLabelValues("mutate", "hit"))
	misses := testutil.ToFloat64(PolicyCacheLookups.WithLabelValues("mutate", "miss"))
	r.PolicyCacheLookup("mutate", "miss", 1)
	r.PolicyCacheLookup("mutate", "hit", 1)
	r.PolicyCacheLookup("mutate", "hit", 1)
	assert.Equal(t, hits+2, testutil.ToFloat64(PolicyCacheLookups.WithLabelValues("mutate", "hit")))
	assert.Equal(t, misses+1, testutil.ToFloat64(PolicyCacheLookups.WithLabelValues("mutate", "miss")))
	assert.Equal(t, 1.0, testutil.ToFloat64(PolicyCacheEntries.WithLabelValues("mutate")))
	reg := prometheus.NewPedanticRegistry()
	require.NoError(t, RegisterWebhook(reg))
	problems, err := testutil.GatherAndLint(reg)
	require.NoError(t, err)
	assert.Empty(t, problems)
}
