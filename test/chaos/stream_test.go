package chaos

import (
	"context"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"
	"k8s.io/utils/clock"
)

// TestStreamKeepsItsSchedule makes the API server unavailable for two
// seconds (a restart) in the middle of a stream: the creates due then
// start on time and retry until it is back, so that the stream still
// makes its rate over the run.
func TestStreamKeepsItsSchedule(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		start := time.Now()
		stallFrom, stallTo := start.Add(2*time.Second), start.Add(4*time.Second)
		cs := fake.NewClientset()
		cs.PrependReactor("create", "jobs", func(k8stesting.Action) (bool, runtime.Object, error) {
			if now := time.Now(); !now.Before(stallFrom) && now.Before(stallTo) {
				return true, nil, apierrors.NewServiceUnavailable("apiserver is shutting down")
			}
			return false, nil, nil
		})
		s := NewStream(cs, StreamOptions{Namespace: "jobs", Run: "t", Rate: 50, RealRate: 5, Clock: clock.RealClock{}})
		ctx, cancel := context.WithTimeout(t.Context(), 5990*time.Millisecond)
		defer cancel()
		s.Run(ctx, 256)

		results := s.Results()
		// Due at 0, 20 ms, ..., 5.98 s: 300 creates, every one sent
		// although a third of the run's creates could not start on time.
		require.Equal(t, 300, len(results))
		real, late, retried := 0, 0, 0
		for _, r := range results {
			if r.Retries > 0 {
				retried++
			}
			assert.Equal(t, Admitted, r.Class, r.ID)
			assert.False(t, r.Start.Before(r.Due), "%s started before it was due", r.ID)
			if r.Start.Sub(r.Due) > 0 {
				late++
			}
			if !r.DryRun {
				real++
			}
		}
		assert.Equal(t, 30, real, "one create in ten is real")
		assert.Equal(t, 100, retried, "the creates due in the stall retried")
		assert.Zero(t, late, "the stall holds creates in flight, not the schedule: 100 fit in 256")

		rep := &Report{Rate: 50, Totals: map[Class]int{}, Phases: []Phase{
			{Name: "steady", Start: start, SettleStart: start, End: stallFrom},
			{Name: "fault", Start: stallFrom, SettleStart: stallTo, End: start.Add(6 * time.Second)},
		}}
		rep.measureRates(results, start, time.Now())
		assert.InDelta(t, 50, rep.AchievedRate, 0.5, "every create due was made over the run")
		assert.True(t, rep.RateHolds())
		assert.InDelta(t, 50, rep.Phases[0].Rate, 0.5)
		assert.InDelta(t, 50, rep.Phases[1].Rate, 0.5, "the stalled creates are answered when the stall ends, in the same window")
		assert.Greater(t, rep.Phases[1].SettleRate, 50.0, "the settling time catches up")
		assert.Greater(t, rep.SteadyRate, 50.0)
	})
}

// TestStreamFallsBehindBeyondItsBound: with one create in flight at most
// and every create taking 100 ms, a 50/s stream makes 10/s; the creates
// start late, and the report says so.
func TestStreamFallsBehindBeyondItsBound(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		start := time.Now()
		cs := fake.NewClientset()
		cs.PrependReactor("create", "jobs", func(k8stesting.Action) (bool, runtime.Object, error) {
			time.Sleep(100 * time.Millisecond)
			return false, nil, nil
		})
		s := NewStream(cs, StreamOptions{Namespace: "jobs", Run: "t", Rate: 50})
		ctx, cancel := context.WithTimeout(t.Context(), 1990*time.Millisecond)
		defer cancel()
		s.Run(ctx, 1)
		results := s.Results()
		require.Equal(t, 20, len(results))

		rep := &Report{Rate: 50, MinRate: 50, Totals: map[Class]int{}, Phases: []Phase{{Name: "steady", Start: start, SettleStart: start, End: time.Now()}}}
		rep.measureRates(results, start, time.Now())
		assert.InDelta(t, 10, rep.AchievedRate, 0.1)
		assert.False(t, rep.RateHolds())
		assert.Equal(t, 1520*time.Millisecond, rep.LateMax, "the 20th create was due at 380 ms and started at 1.9 s")
		require.Len(t, rep.Problems, 1)
		assert.Contains(t, rep.Problems[0], "10.0 admitted creates/s over the run, under the 50 required")
		assert.Contains(t, rep.Summary(), "the 50/s claim does NOT hold")
	})
}
