package admission

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"k8s.io/apimachinery/pkg/util/wait"

	"github.com/flowforge/flowforge/test/framework"
)

// cacheLookups is the number of mutate decisions the webhook made, from
// the decision cache or by evaluating and caching.
func cacheLookups(t *testing.T, ctx context.Context) float64 {
	t.Helper()
	total := 0.0
	for _, result := range []string{"hit", "miss"} {
		v, err := framework.ScrapeMetric(ctx, hook.MetricsURL, `flowforge_policy_cache_lookups_total{query="mutate",result="`+result+`"}`)
		if err == nil {
			total += v
		}
	}
	return total
}

// TestPolicyDecisionCache: admissions are decided through the decision
// cache, a policy that reads input outside its views is refused by the
// running webhook (the previous one keeps serving), and reloads under a
// steady stream of admissions cost no admission an error. It is not
// parallel: it changes the policy every other test sees.
func TestPolicyDecisionCache(t *testing.T) {
	ns := framework.Namespace(t, clientset, "cache", nil)
	ctx := context.Background()
	dataPath := filepath.Join(policyDir, "data.yaml")
	original, err := os.ReadFile(dataPath)
	require.NoError(t, err)
	t.Cleanup(func() { _ = os.WriteFile(dataPath, original, 0o644) })
	first, err := dryRunRevision(ctx, ns)
	require.NoError(t, err)
	// The tests after this one expect the first revision served by every
	// replica: wait for it, as a reload takes a while.
	restored := func(t *testing.T) {
		require.NoError(t, wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, 60*time.Second, true, func(ctx context.Context) (bool, error) {
			revision, err := dryRunRevision(ctx, ns)
			return err == nil && revision == first && everyReplica(t, func(readyz string) bool {
				return strings.Contains(readyz, "revision "+first) && !strings.Contains(readyz, "last reload refused")
			}), nil
		}), "every replica serves the first revision again")
	}

	t.Run("admissions go through the cache", func(t *testing.T) {
		before := cacheLookups(t, ctx)
		_, err := dryRunRevision(ctx, ns)
		require.NoError(t, err)
		assert.Greater(t, cacheLookups(t, ctx), before, "the mutation was decided through the cache")
	})

	t.Run("a rule reading outside its views is refused", func(t *testing.T) {
		serving, err := dryRunRevision(ctx, ns)
		require.NoError(t, err)
		outside := filepath.Join(policyDir, "validate", "outside.rego")
		require.NoError(t, os.WriteFile(outside, []byte(`package flowforge.validate

violation contains {"msg": "extra", "field": "userInfo"} if input.request.userInfo.extra.team
`), 0o644))
		t.Cleanup(func() { _ = os.Remove(outside) })
		require.NoError(t, wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, 90*time.Second, true, func(context.Context) (bool, error) {
			return everyReplica(t, func(readyz string) bool { return strings.Contains(readyz, "last reload refused") }), nil
		}), "every replica refuses the policy")
		assert.Contains(t, readyzVerbose(t), "input.request.userInfo.extra.team read by data.flowforge.validate.violation at validate/outside.rego:3")
		revision, err := dryRunRevision(ctx, ns)
		require.NoError(t, err, "admissions continue")
		assert.Equal(t, serving, revision, "under the previous policy")
		require.NoError(t, os.Remove(outside))
		restored(t)
	})

	t.Run("reloads under a stream of admissions cost no error", func(t *testing.T) {
		stop := make(chan struct{})
		var sent, failed atomic.Int64
		var firstErr atomic.Value
		var wg sync.WaitGroup
		for range 4 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for {
					select {
					case <-stop:
						return
					default:
					}
					if _, err := dryRunRevision(ctx, ns); err != nil {
						failed.Add(1)
						firstErr.CompareAndSwap(nil, err.Error())
					}
					sent.Add(1)
				}
			}()
		}
		for i, release := range []string{"cache-reload-1", "cache-reload-2"} {
			edited := strings.Replace(string(original), `release: "2026-11-27"`, `release: "`+release+`"`, 1)
			require.NotEqual(t, string(original), edited, "step %d", i)
			require.NoError(t, os.WriteFile(dataPath, []byte(edited), 0o644))
			require.NoError(t, wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, 90*time.Second, true, func(ctx context.Context) (bool, error) {
				revision, err := dryRunRevision(ctx, ns)
				return err == nil && strings.HasPrefix(revision, release+"-"), nil
			}))
		}
		require.NoError(t, os.WriteFile(dataPath, original, 0o644))
		restored(t)
		close(stop)
		wg.Wait()
		assert.Zero(t, failed.Load(), "of %d admissions; first error: %v", sent.Load(), firstErr.Load())
		assert.Greater(t, sent.Load(), int64(10))
	})
}
