package controller

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-logr/logr"
	"github.com/go-logr/logr/funcr"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/rest"
	k8stesting "k8s.io/client-go/testing"
	metricsv1beta1 "k8s.io/metrics/pkg/apis/metrics/v1beta1"
	metricsfake "k8s.io/metrics/pkg/client/clientset/versioned/fake"
	clocktesting "k8s.io/utils/clock/testing"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"

	"github.com/flowforge/flowforge/contract"
)

// usageFixture is a sampler on a fake metrics.k8s.io: Samples answers the
// next list (or Err fails it), and the log lines are kept.
type usageFixture struct {
	u     *UsageSampler
	cs    *metricsfake.Clientset
	clock *clocktesting.FakeClock

	mu        sync.Mutex
	samples   []metricsv1beta1.PodMetrics
	listErr   error
	selectors []string
	lines     []string
}

func newUsageFixture(t *testing.T, served bool, pods ...client.Object) *usageFixture {
	t.Helper()
	f := &usageFixture{cs: metricsfake.NewSimpleClientset(), clock: clocktesting.NewFakeClock(now)}
	if served {
		f.cs.Resources = []*metav1.APIResourceList{{GroupVersion: "metrics.k8s.io/v1beta1", APIResources: []metav1.APIResource{{Name: "pods", Namespaced: true, Kind: "PodMetrics"}}}}
	}
	f.cs.PrependReactor("list", "pods", func(a k8stesting.Action) (bool, runtime.Object, error) {
		f.mu.Lock()
		defer f.mu.Unlock()
		f.selectors = append(f.selectors, a.(k8stesting.ListAction).GetListRestrictions().Labels.String())
		if f.listErr != nil {
			return true, nil, f.listErr
		}
		return true, &metricsv1beta1.PodMetricsList{Items: f.samples}, nil
	})
	log := funcr.New(func(_, args string) {
		f.mu.Lock()
		defer f.mu.Unlock()
		f.lines = append(f.lines, args)
	}, funcr.Options{})
	cache := fake.NewClientBuilder().WithObjects(pods...).Build()
	f.u = &UsageSampler{
		Metrics: f.cs, Pods: cache, Clock: f.clock, Interval: 10 * time.Second, Log: log,
		Selector: func() labels.Selector { return labels.SelectorFromSet(labels.Set{contract.LabelApp: contract.AppName}) },
	}
	return f
}

func (f *usageFixture) set(samples []metricsv1beta1.PodMetrics, err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.samples, f.listErr = samples, err
}

func (f *usageFixture) logged() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.lines...)
}

func (f *usageFixture) lists() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.selectors)
}

// discoveries counts the discovery requests made.
func (f *usageFixture) discoveries() int {
	n := 0
	for _, a := range f.cs.Actions() {
		if a.GetResource().Resource == "resource" {
			n++
		}
	}
	return n
}

// podMetrics is a PodMetrics with one entry per container: "cpu/memory"
// quantities such as "250m/64Mi".
func podMetrics(ns, name string, containers ...string) metricsv1beta1.PodMetrics {
	m := metricsv1beta1.PodMetrics{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, Labels: map[string]string{contract.LabelApp: contract.AppName}}, Window: metav1.Duration{Duration: 15 * time.Second}}
	for i, c := range containers {
		cpu, mem, _ := strings.Cut(c, "/")
		m.Containers = append(m.Containers, metricsv1beta1.ContainerMetrics{
			Name:  fmt.Sprintf("c%d", i),
			Usage: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse(cpu), corev1.ResourceMemory: resource.MustParse(mem)},
		})
	}
	return m
}

func peakOf(u *UsageSampler, ns, name string) (Peak, bool) {
	return u.Peak(&corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}})
}

func TestUsageSamplerKeepsEachPodsPeak(t *testing.T) {
	f := newUsageFixture(t, true,
		&corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "agents", Name: "a"}},
		&corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "agents", Name: "b"}})
	ctx := context.Background()
	for i, tc := range []struct {
		samples []metricsv1beta1.PodMetrics
		want    map[string]Peak
	}{
		{
			samples: []metricsv1beta1.PodMetrics{podMetrics("agents", "a", "250m/64Mi", "50m/16Mi"), podMetrics("agents", "b", "1/1Gi")},
			want:    map[string]Peak{"a": {300, 80 << 20}, "b": {1000, 1 << 30}},
		},
		{
			// a: more CPU, less memory; b: less of both.
			samples: []metricsv1beta1.PodMetrics{podMetrics("agents", "a", "1500m/32Mi", "0/8Mi"), podMetrics("agents", "b", "10m/1Mi")},
			want:    map[string]Peak{"a": {1500, 80 << 20}, "b": {1000, 1 << 30}},
		},
		{
			// b is no longer reported (it ended) and keeps its peak.
			samples: []metricsv1beta1.PodMetrics{podMetrics("agents", "a", "100m/200Mi")},
			want:    map[string]Peak{"a": {1500, 200 << 20}, "b": {1000, 1 << 30}},
		},
	} {
		t.Run(fmt.Sprint("poll ", i+1), func(t *testing.T) {
			f.set(tc.samples, nil)
			f.u.Poll(ctx)
			for name, want := range tc.want {
				got, ok := peakOf(f.u, "agents", name)
				require.True(t, ok, name)
				assert.Equal(t, want, got, name)
			}
		})
	}
	assert.Equal(t, 1, f.discoveries(), "discovery is asked once while the API is served")
	assert.Equal(t, []string{"app=flowforge", "app=flowforge", "app=flowforge"}, f.selectors, "only FlowForge's pods are listed")
	_, ok := peakOf(f.u, "other", "a")
	assert.False(t, ok, "pods are keyed by namespace too")

	f.u.Forget([]corev1.Pod{{ObjectMeta: metav1.ObjectMeta{Namespace: "agents", Name: "a"}}})
	_, ok = peakOf(f.u, "agents", "a")
	assert.False(t, ok, "forgotten at export")
	assert.Equal(t, 1, f.u.Tracked())
}

func TestUsageSamplerIsBoundedByThePodsInFlight(t *testing.T) {
	inCache := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "agents", Name: "ended-awaiting-export"}}
	f := newUsageFixture(t, true, inCache)
	ctx := context.Background()
	f.set([]metricsv1beta1.PodMetrics{
		podMetrics("agents", "ended-awaiting-export", "1/1Gi"),
		podMetrics("agents", "gone", "1/1Gi"),
		podMetrics("agents", "running", "1/1Gi"),
	}, nil)
	f.u.Poll(ctx)
	require.Equal(t, 3, f.u.Tracked(), "a pod in the metrics but not yet in the cache is kept")

	// Next poll: "running" is still reported; the others ended. The one
	// still in the cache waits for its export, the other is gone.
	f.set([]metricsv1beta1.PodMetrics{podMetrics("agents", "running", "2/1Gi")}, nil)
	f.u.Poll(ctx)
	assert.Equal(t, 2, f.u.Tracked())
	_, ok := peakOf(f.u, "agents", "gone")
	assert.False(t, ok)
	p, ok := peakOf(f.u, "agents", "ended-awaiting-export")
	require.True(t, ok)
	assert.Equal(t, Peak{1000, 1 << 30}, p)
}

func TestUsageSamplerWithoutMetricsAPI(t *testing.T) {
	f := newUsageFixture(t, false)
	ctx := context.Background()
	for range 5 {
		f.u.Poll(ctx)
		f.clock.Step(10 * time.Second)
	}
	assert.Zero(t, f.lists(), "nothing is listed while metrics.k8s.io is not served")
	assert.Zero(t, f.u.Tracked())
	assert.Equal(t, 1, f.discoveries(), "discovery is asked again only after a minute")
	lines := f.logged()
	require.Len(t, lines, 1, "said once, no error spam: %v", lines)
	assert.Contains(t, lines[0], "metrics.k8s.io is not served")

	f.clock.Step(15 * time.Second)
	f.u.Poll(ctx)
	assert.Equal(t, 2, f.discoveries())
	assert.Zero(t, f.lists())
	assert.Len(t, f.logged(), 1, "still not served: nothing more to say")

	// metrics-server is installed: the next discovery finds it.
	f.cs.Resources = []*metav1.APIResourceList{{GroupVersion: "metrics.k8s.io/v1beta1"}}
	f.set([]metricsv1beta1.PodMetrics{podMetrics("agents", "a", "250m/1Mi")}, nil)
	f.clock.Step(time.Minute)
	f.u.Poll(ctx)
	assert.Equal(t, 1, f.lists())
	p, ok := peakOf(f.u, "agents", "a")
	require.True(t, ok)
	assert.EqualValues(t, 250, p.CPUMillicores)
	assert.Contains(t, f.logged()[1], "metrics.k8s.io is served")
}

func TestUsageSamplerListFailures(t *testing.T) {
	f := newUsageFixture(t, true)
	ctx := context.Background()
	f.set([]metricsv1beta1.PodMetrics{podMetrics("agents", "a", "250m/1Mi")}, nil)
	f.u.Poll(ctx)
	base := len(f.logged())

	// The APIService is unavailable (metrics-server down): said once.
	f.set(nil, apierrors.NewServiceUnavailable("the server is currently unable to handle the request"))
	for range 4 {
		f.u.Poll(ctx)
	}
	lines := f.logged()[base:]
	require.Len(t, lines, 1, "%v", lines)
	assert.Contains(t, lines[0], "Cannot read pod metrics")
	p, ok := peakOf(f.u, "agents", "a")
	require.True(t, ok, "peaks survive the outage")
	assert.EqualValues(t, 250, p.CPUMillicores)

	f.set([]metricsv1beta1.PodMetrics{podMetrics("agents", "a", "500m/1Mi")}, nil)
	f.u.Poll(ctx)
	assert.Contains(t, f.logged()[base+1], "again")
	p, _ = peakOf(f.u, "agents", "a")
	assert.EqualValues(t, 500, p.CPUMillicores)

	// Uninstalled: NotFound makes the sampler ask discovery again (after
	// a minute), rather than list every interval.
	f.set(nil, apierrors.NewNotFound(schema.GroupResource{Group: "metrics.k8s.io", Resource: "pods"}, ""))
	f.cs.Resources = nil
	f.u.Poll(ctx)
	lists := f.lists()
	f.clock.Step(10 * time.Second)
	f.u.Poll(ctx)
	assert.Equal(t, lists, f.lists(), "no list while discovery says it is gone")
}

func TestUsageSamplerStartPollsUntilCancelled(t *testing.T) {
	f := newUsageFixture(t, true)
	f.set([]metricsv1beta1.PodMetrics{podMetrics("agents", "a", "250m/1Mi")}, nil)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- f.u.Start(ctx) }()
	require.Eventually(t, func() bool { return f.lists() == 1 }, 5*time.Second, 5*time.Millisecond, "first poll at start")
	require.Eventually(t, func() bool { return f.clock.HasWaiters() }, 5*time.Second, 5*time.Millisecond)
	f.clock.Step(10 * time.Second)
	require.Eventually(t, func() bool { return f.lists() == 2 }, 5*time.Second, 5*time.Millisecond, "next poll after the interval")
	cancel()
	require.NoError(t, <-done)
	assert.True(t, f.u.NeedLeaderElection())
}

func TestNilUsageSamplerHasSeenNothing(t *testing.T) {
	var u *UsageSampler
	_, ok := u.Peak(&corev1.Pod{})
	assert.False(t, ok)
	u.Forget([]corev1.Pod{{}})
}

func TestNewUsageSampler(t *testing.T) {
	settings := func() Settings { return Settings{SelectorLabel: "team", SelectorValue: "ai"} }
	u, err := newUsageSampler(restConfigForTest(), -1, nil, settings, clocktesting.NewFakeClock(now), logr.Discard())
	require.NoError(t, err)
	assert.Nil(t, u, "negative interval: off")
	u, err = newUsageSampler(restConfigForTest(), 0, nil, settings, clocktesting.NewFakeClock(now), logr.Discard())
	require.NoError(t, err)
	require.NotNil(t, u)
	assert.Equal(t, DefaultUsageInterval, u.Interval)
	assert.Equal(t, "team=ai", u.Selector().String(), "the policy's selector")
	u, err = newUsageSampler(restConfigForTest(), 0, nil, func() Settings { return Settings{} }, clocktesting.NewFakeClock(now), logr.Discard())
	require.NoError(t, err)
	assert.Equal(t, "app=flowforge", u.Selector().String(), "the contract's default")
}

// TestExportRecordsPeakUsage exports a finished Job whose two attempts
// were sampled (the second only) and checks the history record.
func TestExportRecordsPeakUsage(t *testing.T) {
	job := newJob("use1", finishedJob(batchv1.JobComplete, "CompletionsReached"))
	failed := newPod(job, "use1-a", corev1.PodFailed, ptr.To[int32](1), now.Add(-50*time.Second))
	ok := newPod(job, "use1-b", corev1.PodSucceeded, ptr.To[int32](0), now.Add(-40*time.Second))
	e := newEnv(t, job, failed, ok)
	f := newUsageFixture(t, true)
	f.set([]metricsv1beta1.PodMetrics{podMetrics("agents", "use1-b", "750m/96Mi", "5m/4Mi")}, nil)
	f.u.Poll(context.Background())
	e.r.Usage = f.u
	e.reconcile(t, job.Name)

	rec, err := e.store.Job(context.Background(), "use1")
	require.NoError(t, err)
	require.NotNil(t, rec.Exported)
	require.Len(t, rec.Attempts, 2)
	assert.Zero(t, rec.Attempts[0].PeakCPUMillicores, "never sampled: not measured")
	assert.Zero(t, rec.Attempts[0].PeakMemoryBytes)
	assert.EqualValues(t, 755, rec.Attempts[1].PeakCPUMillicores)
	assert.EqualValues(t, 100<<20, rec.Attempts[1].PeakMemoryBytes)
	assert.Equal(t, "use1-b", rec.Attempts[1].Pod)
	assert.Zero(t, f.u.Tracked(), "exported pods are forgotten")
}

func TestExportWithoutUsageRecordsNoPeaks(t *testing.T) {
	job := newJob("use2", finishedJob(batchv1.JobComplete, "CompletionsReached"))
	e := newEnv(t, job, newPod(job, "use2-a", corev1.PodSucceeded, ptr.To[int32](0), now.Add(-40*time.Second)))
	e.reconcile(t, job.Name)
	rec, err := e.store.Job(context.Background(), "use2")
	require.NoError(t, err)
	require.Len(t, rec.Attempts, 1)
	assert.Zero(t, rec.Attempts[0].PeakCPUMillicores)
}

func TestExportFailsWhenPeaksCannotBeStored(t *testing.T) {
	job := newJob("use3", finishedJob(batchv1.JobComplete, "CompletionsReached"))
	pod := newPod(job, "use3-a", corev1.PodSucceeded, ptr.To[int32](0), now.Add(-40*time.Second))
	e := newEnv(t, job, pod)
	f := newUsageFixture(t, true)
	f.set([]metricsv1beta1.PodMetrics{podMetrics("agents", "use3-a", "1/1Gi")}, nil)
	f.u.Poll(context.Background())
	e.r.Usage = f.u
	require.NoError(t, e.store.Close())
	err := e.r.recordUsage(context.Background(), job, []corev1.Pod{*pod})
	require.Error(t, err)
	assert.False(t, errors.Is(err, context.Canceled))
	assert.Equal(t, 1, f.u.Tracked(), "kept for the retry")
}

// restConfigForTest is a client configuration that is never dialled.
func restConfigForTest() *rest.Config { return &rest.Config{Host: "https://127.0.0.1:1"} }
