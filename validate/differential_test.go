package validate

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"
	admissionv1 "k8s.io/api/admission/v1"
	"k8s.io/utils/clock"

	"github.com/flowforge/flowforge/policies/engine"
)

// differentialPolicy answers from the cached engine, and checks on every
// request that the cached decision (a miss, then a hit) is exactly the
// decision of a full evaluation without the cache.
type differentialPolicy struct {
	t                *testing.T
	cached, uncached *engine.Engine
}

func (d differentialPolicy) Current() *engine.Policy { return d.cached.Current() }

func (d differentialPolicy) Mutate(ctx context.Context, in engine.Input) (*engine.Mutation, error) {
	want, wantErr := d.uncached.Mutate(ctx, in)
	var got *engine.Mutation
	for _, pass := range []string{"first", "second"} {
		var err error
		got, err = d.cached.Mutate(ctx, in)
		if wantErr != nil {
			require.Error(d.t, err, pass)
			continue
		}
		require.NoError(d.t, err, pass)
		require.ElementsMatch(d.t, want.Ops, got.Ops, pass)
		require.Equal(d.t, want.Warnings, got.Warnings, pass)
	}
	return got, wantErr
}

func (d differentialPolicy) Validate(ctx context.Context, in engine.Input) (*engine.Validation, error) {
	want, wantErr := d.uncached.Validate(ctx, in)
	var got *engine.Validation
	for _, pass := range []string{"first", "second"} {
		var err error
		got, err = d.cached.Validate(ctx, in)
		if wantErr != nil {
			require.Error(d.t, err, pass)
			continue
		}
		require.NoError(d.t, err, pass)
		require.Equal(d.t, want, got, pass)
	}
	return got, wantErr
}

// TestAdversarialTableCachedEqualsUncached sends every row of the
// adversarial table (escapes and legitimate variations) through the
// admission chain with the differential policy, and checks the verdicts
// too.
func TestAdversarialTableCachedEqualsUncached(t *testing.T) {
	uncached, err := engine.New(context.Background(), engine.Options{DisableCache: true, Tested: testedPolicies})
	require.NoError(t, err)
	cached, err := engine.New(context.Background(), engine.Options{Tested: testedPolicies})
	require.NoError(t, err)
	table := loadAdversarial(t)
	for _, group := range []struct {
		name    string
		cases   []adversarialCase
		allowed bool
	}{{"escapes", table.Escapes, false}, {"legitimate", table.Legitimate, true}} {
		for _, c := range group.cases {
			t.Run(group.name+"/"+c.Name, func(t *testing.T) {
				resp := admitWith(t, c, differentialPolicy{t: t, cached: cached, uncached: uncached})
				require.Equal(t, group.allowed, resp.Allowed, "%+v", resp.Result)
			})
		}
	}
	st := cached.CacheStats()["validate"]
	require.NotZero(t, st.Hits)
	require.NotZero(t, st.Misses)
}

// FuzzCachedValidationEqualsUncached: on any Pod, as CREATE and as UPDATE
// of a seed, the cached validation equals a full evaluation (on a miss and
// on a hit), and the handler's answer is the uncached handler's.
func FuzzCachedValidationEqualsUncached(f *testing.F) {
	for _, s := range []string{privilegedPod, plainPod,
		`{"metadata":{"labels":{"app":"flowforge"}},"spec":{"volumes":[{"name":"h","hostPath":{"path":"/"}}],"containers":[{"name":"c","env":[{"name":"ANTHROPIC_API_KEY","value":"x"}]}]}}`,
		`{"metadata":{"labels":{"app":"flowforge"}},"spec":{"ephemeralContainers":[{"name":"d"}],"securityContext":{"sysctls":[{"name":"kernel.msgmax"}]}}}`,
		`null`, `{"metadata":{"labels":{"app":"flowforge"}},"spec":{"containers":[{"name":"c","securityContext":{}}]}}`,
	} {
		f.Add(s)
	}
	uncached, err := engine.New(context.Background(), engine.Options{DisableCache: true, Tested: testedPolicies})
	require.NoError(f, err)
	cached := sharedEngine(f)
	f.Fuzz(func(t *testing.T, object string) {
		diff := differentialPolicy{t: t, cached: cached, uncached: uncached}
		for _, op := range []admissionv1.Operation{admissionv1.Create, admissionv1.Update} {
			old := ""
			if op == admissionv1.Update {
				old = privilegedPod
			}
			got := NewPodHandler(diff, managed, clock.RealClock{}).Handle(context.Background(), podRequest(op, object, old))
			want := NewPodHandler(uncached, managed, clock.RealClock{}).Handle(context.Background(), podRequest(op, object, old))
			require.Equal(t, want.Allowed, got.Allowed)
			require.Equal(t, want.Result, got.Result)
			require.Equal(t, want.Warnings, got.Warnings)
		}
	})
}
