package jobs

import (
	"context"
	"errors"
	"sync"
	"testing"

	"github.com/flowforge/flowforge/contract"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	batchv1 "k8s.io/api/batch/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"
)

// watchStep is what one Watch call of the script answers: an error, or a
// watch that delivers events and then closes (or stays open if !close).
type watchStep struct {
	err    error
	events []watch.Event
	close  bool
}

// script answers the Job lists and watches of a test in order, and records
// the resource versions the watches asked for.
type script struct {
	mu      sync.Mutex
	lists   []*batchv1.JobList
	watches []watchStep
	rvs     []string
	nlist   int
}

func (s *script) install(cs *fake.Clientset) {
	cs.PrependReactor("list", "jobs", func(k8stesting.Action) (bool, runtime.Object, error) {
		s.mu.Lock()
		defer s.mu.Unlock()
		if s.nlist >= len(s.lists) {
			return true, nil, errors.New("script: no more lists")
		}
		s.nlist++
		return true, s.lists[s.nlist-1], nil
	})
	cs.PrependWatchReactor("jobs", func(a k8stesting.Action) (bool, watch.Interface, error) {
		s.mu.Lock()
		defer s.mu.Unlock()
		s.rvs = append(s.rvs, a.(k8stesting.WatchActionImpl).WatchRestrictions.ResourceVersion)
		if len(s.rvs) > len(s.watches) {
			return true, nil, errors.New("script: no more watches")
		}
		step := s.watches[len(s.rvs)-1]
		if step.err != nil {
			return true, nil, step.err
		}
		w := watch.NewFakeWithChanSize(len(step.events), false)
		for _, ev := range step.events {
			w.Action(ev.Type, ev.Object)
		}
		if step.close {
			w.Stop()
		}
		return true, w, nil
	})
}

func (s *script) watchRVs() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.rvs...)
}

func at(rv string, j *batchv1.Job) *batchv1.Job {
	j = j.DeepCopy()
	j.ResourceVersion = rv
	j.UID = "uid-1"
	return j
}

func listOf(rv string, jobs ...*batchv1.Job) *batchv1.JobList {
	l := &batchv1.JobList{ListMeta: metav1.ListMeta{ResourceVersion: rv}}
	for _, j := range jobs {
		l.Items = append(l.Items, *j)
	}
	return l
}

func expired() *metav1.Status {
	return &metav1.Status{Status: metav1.StatusFailure, Code: 410, Reason: metav1.StatusReasonExpired, Message: "too old resource version: 1 (20)"}
}

var (
	pendingJob = flowJob("w")
	runningJob = flowJob("w", withCounts(1, 1, 0, 0))
	doneJob    = flowJob("w", withCounts(0, 0, 1, 0), withConditions(cond(batchv1.JobComplete, "CompletionsReached", t2)))
)

func runWatch(t *testing.T, s *script, rv string) ([]contract.Phase, contract.Status, error) {
	t.Helper()
	cs := fake.NewClientset()
	s.install(cs)
	var phases []contract.Phase
	final, err := newTestClient(t, cs).WatchFrom(context.Background(), "w", rv, func(st contract.Status) error {
		phases = append(phases, st.Phase)
		return nil
	})
	return phases, final, err
}

func TestWatchResumesAndRelists(t *testing.T) {
	s := &script{
		lists: []*batchv1.JobList{listOf("10", at("9", pendingJob)), listOf("20", at("19", runningJob))},
		watches: []watchStep{
			{events: []watch.Event{{Type: watch.Modified, Object: at("11", runningJob)}}, close: true}, // closes: resume from 11
			{events: []watch.Event{{Type: watch.Error, Object: expired()}}},                            // 410: list again
			{events: []watch.Event{{Type: watch.Bookmark, Object: at("25", &batchv1.Job{})}}, close: true},
			{events: []watch.Event{{Type: watch.Modified, Object: at("26", runningJob)}, {Type: watch.Modified, Object: at("30", doneJob)}}},
		},
	}
	phases, final, err := runWatch(t, s, "")
	require.NoError(t, err)
	assert.Equal(t, []contract.Phase{contract.PhasePending, contract.PhaseRunning, contract.PhaseSucceeded}, phases, "fn runs on changes only")
	assert.Equal(t, contract.PhaseSucceeded, final.Phase)
	assert.Equal(t, "30", final.ResourceVersion)
	assert.Equal(t, []string{"10", "11", "20", "25"}, s.watchRVs())
}

func TestWatchFromATooOldVersion(t *testing.T) {
	t.Run("the watch call answers 410", func(t *testing.T) {
		s := &script{
			lists:   []*batchv1.JobList{listOf("40", at("35", doneJob))},
			watches: []watchStep{{err: apierrors.NewResourceExpired("too old resource version: 1 (40)")}},
		}
		phases, final, err := runWatch(t, s, "1")
		require.NoError(t, err)
		assert.Equal(t, []contract.Phase{contract.PhaseSucceeded}, phases)
		assert.Equal(t, contract.PhaseSucceeded, final.Phase)
		assert.Equal(t, []string{"1"}, s.watchRVs())
	})
	t.Run("the watch sends a 410 Gone event", func(t *testing.T) {
		gone := expired()
		gone.Reason = metav1.StatusReasonGone
		s := &script{
			lists: []*batchv1.JobList{listOf("40", at("35", runningJob))},
			watches: []watchStep{
				{events: []watch.Event{{Type: watch.Error, Object: gone}}},
				{events: []watch.Event{{Type: watch.Modified, Object: at("41", doneJob)}}},
			},
		}
		phases, _, err := runWatch(t, s, "1")
		require.NoError(t, err)
		assert.Equal(t, []contract.Phase{contract.PhaseRunning, contract.PhaseSucceeded}, phases)
		assert.Equal(t, []string{"1", "40"}, s.watchRVs())
	})
}

func TestWatchRidesOutTransientFailures(t *testing.T) {
	down := apierrors.NewServiceUnavailable("apiserver restarting")
	s := &script{
		lists: []*batchv1.JobList{listOf("10", at("9", runningJob)), listOf("50", at("49", runningJob))},
		watches: []watchStep{
			{close: true}, // the connection drops without an event
			{err: down},
			{events: []watch.Event{{Type: watch.Error, Object: &apierrors.NewInternalError(errors.New("decode")).ErrStatus}}},
			{err: apierrors.NewResourceExpired("too old")}, // the restarted server's cache starts later
			{events: []watch.Event{{Type: watch.Modified, Object: at("51", doneJob)}}},
		},
	}
	phases, final, err := runWatch(t, s, "")
	require.NoError(t, err)
	assert.Equal(t, []contract.Phase{contract.PhaseRunning, contract.PhaseSucceeded}, phases)
	assert.Equal(t, contract.PhaseSucceeded, final.Phase)
	assert.Equal(t, []string{"10", "10", "10", "10", "50"}, s.watchRVs())
}

func TestWatchGivesUp(t *testing.T) {
	t.Run("after ReconnectBackoff.Steps failures, naming the server", func(t *testing.T) {
		refused := errors.New("dial tcp 127.0.0.1:6443: connect: connection refused")
		s := &script{lists: []*batchv1.JobList{listOf("10", at("9", runningJob))}}
		for range 10 {
			s.watches = append(s.watches, watchStep{err: &netOpErr{refused}})
		}
		_, final, err := runWatch(t, s, "")
		require.Error(t, err)
		assert.Equal(t, contract.PhaseRunning, final.Phase, "the last status seen is returned")
		assert.Contains(t, err.Error(), "gave up after 5 failed attempts to reconnect to the API server at https://apiserver.test:6443")
		assert.Len(t, s.watchRVs(), 5)
	})
	t.Run("on a permanent error", func(t *testing.T) {
		s := &script{
			lists:   []*batchv1.JobList{listOf("10", at("9", runningJob))},
			watches: []watchStep{{err: apierrors.NewForbidden(jobsGR, "", errors.New("no watch for you"))}},
		}
		_, _, err := runWatch(t, s, "")
		require.Error(t, err)
		assert.True(t, apierrors.IsForbidden(err))
	})
	t.Run("on a permanent error event", func(t *testing.T) {
		s := &script{
			lists:   []*batchv1.JobList{listOf("10", at("9", runningJob))},
			watches: []watchStep{{events: []watch.Event{{Type: watch.Error, Object: &apierrors.NewForbidden(jobsGR, "", errors.New("revoked")).ErrStatus}}}},
		}
		_, _, err := runWatch(t, s, "")
		require.Error(t, err)
		assert.Contains(t, err.Error(), "revoked")
	})
}

// netOpErr makes an error look like a refused connection to IsTransient.
type netOpErr struct{ err error }

func (e *netOpErr) Error() string { return e.err.Error() }
func (e *netOpErr) Timeout() bool { return true }
func (e *netOpErr) Temporary() bool {
	return true
}

func TestWatchDeletedJob(t *testing.T) {
	deleting := at("12", runningJob)
	deleting.DeletionTimestamp = &metav1.Time{Time: t2}
	replaced := at("12", runningJob)
	replaced.UID = types.UID("uid-2")
	for _, tc := range []struct {
		name  string
		s     *script
		want  error
		words string
	}{
		{"never existed", &script{lists: []*batchv1.JobList{listOf("10")}}, ErrNotFound, `job "w" not found in namespace jobs-test`},
		{"deleted while running", &script{
			lists:   []*batchv1.JobList{listOf("10", at("9", runningJob))},
			watches: []watchStep{{events: []watch.Event{{Type: watch.Deleted, Object: at("11", runningJob)}}}},
		}, ErrDeleted, "was deleted while Running"},
		{"being deleted", &script{
			lists:   []*batchv1.JobList{listOf("10", at("9", runningJob))},
			watches: []watchStep{{events: []watch.Event{{Type: watch.Modified, Object: deleting}}}},
		}, ErrDeleted, "is being deleted"},
		{"gone at the relist", &script{
			lists:   []*batchv1.JobList{listOf("10", at("9", runningJob)), listOf("20")},
			watches: []watchStep{{err: apierrors.NewResourceExpired("too old")}},
		}, ErrDeleted, "was deleted"},
		{"another Job with the id is not followed", &script{
			lists: []*batchv1.JobList{listOf("10", at("9", runningJob))},
			watches: []watchStep{{events: []watch.Event{
				{Type: watch.Modified, Object: replaced},
				{Type: watch.Deleted, Object: at("13", runningJob)},
			}}},
		}, ErrDeleted, "was deleted while Running"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := runWatch(t, tc.s, "")
			require.ErrorIs(t, err, tc.want)
			assert.Contains(t, err.Error(), tc.words)
		})
	}
}

func TestWatchStops(t *testing.T) {
	t.Run("when fn fails", func(t *testing.T) {
		cs := fake.NewClientset()
		(&script{lists: []*batchv1.JobList{listOf("10", at("9", runningJob))}}).install(cs)
		stop := errors.New("enough")
		_, err := newTestClient(t, cs).Watch(context.Background(), "w", func(contract.Status) error { return stop })
		require.ErrorIs(t, err, stop)
	})
	t.Run("when the context ends", func(t *testing.T) {
		cs := fake.NewClientset()
		(&script{
			lists:   []*batchv1.JobList{listOf("10", at("9", runningJob))},
			watches: []watchStep{{}}, // open, silent
		}).install(cs)
		ctx, cancel := context.WithCancel(context.Background())
		final, err := newTestClient(t, cs).Watch(ctx, "w", func(st contract.Status) error {
			cancel()
			return nil
		})
		require.ErrorIs(t, err, context.Canceled)
		assert.Equal(t, contract.PhaseRunning, final.Phase)
	})
	t.Run("the fake clientset's own watch", func(t *testing.T) {
		job := at("", runningJob)
		cs := fake.NewClientset(job)
		c := newTestClient(t, cs)
		seen := make(chan contract.Phase, 10)
		errc := make(chan error, 1)
		go func() {
			_, err := c.Watch(context.Background(), "w", func(st contract.Status) error {
				seen <- st.Phase
				return nil
			})
			errc <- err
		}()
		require.Equal(t, contract.PhaseRunning, <-seen)
		// The fake's watch starts after the list; update until it is seen.
		require.Eventually(t, func() bool {
			done := doneJob.DeepCopy()
			done.UID = job.UID
			_, err := cs.BatchV1().Jobs(testNS).UpdateStatus(context.Background(), done, metav1.UpdateOptions{})
			require.NoError(t, err)
			select {
			case err := <-errc:
				require.NoError(t, err)
				return true
			default:
				return false
			}
		}, 10e9, 1e6)
	})
}

func TestWatchPhaseNeverGoesBack(t *testing.T) {
	// Between the last pod's end and the Complete condition the Job
	// controller can report nothing active: not a new Pending.
	lull := flowJob("w", withCounts(0, 0, 0, 0))
	s := &script{
		lists: []*batchv1.JobList{listOf("10", at("9", pendingJob))},
		watches: []watchStep{{events: []watch.Event{
			{Type: watch.Modified, Object: at("11", runningJob)},
			{Type: watch.Modified, Object: at("12", lull)},
			{Type: watch.Modified, Object: at("13", doneJob)},
		}}},
	}
	phases, final, err := runWatch(t, s, "")
	require.NoError(t, err)
	assert.NotContains(t, phases[1:], contract.PhasePending, "once Running, never Pending again: %v", phases)
	assert.Equal(t, contract.PhaseSucceeded, final.Phase)
}

func TestForward(t *testing.T) {
	for _, tc := range []struct{ last, next, want contract.Phase }{
		{contract.PhasePending, contract.PhasePending, contract.PhasePending},
		{contract.PhasePending, contract.PhaseRunning, contract.PhaseRunning},
		{contract.PhaseRunning, contract.PhasePending, contract.PhaseRunning},
		{contract.PhaseCancelling, contract.PhasePending, contract.PhaseCancelling},
		{contract.PhaseRunning, contract.PhaseSucceeded, contract.PhaseSucceeded},
		{contract.PhaseRunning, contract.PhaseCancelling, contract.PhaseCancelling},
	} {
		assert.Equal(t, tc.want, forward(tc.last, tc.next), "%s then %s", tc.last, tc.next)
	}
}
