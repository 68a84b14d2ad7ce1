package controller

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/watch"
	fakeclientset "k8s.io/client-go/kubernetes/fake"
	toolscache "k8s.io/client-go/tools/cache"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/flowforge/flowforge/history"
)

// fullEvent is an event as the API server serves it, with everything the
// book drops (labels, annotations, managed fields, source, counts).
func fullEvent(name, jobUID, reason string, at time.Time) *corev1.Event {
	return &corev1.Event{
		ObjectMeta: metav1.ObjectMeta{
			Name: name, Namespace: "agents", UID: types.UID("e-" + name), ResourceVersion: "7",
			Labels: map[string]string{"a": "b"}, Annotations: map[string]string{"big": strings.Repeat("x", 1000)},
			ManagedFields: []metav1.ManagedFieldsEntry{{Manager: "kcm"}},
		},
		InvolvedObject: corev1.ObjectReference{Kind: "Job", Namespace: "agents", Name: "claude-job-" + jobUID, UID: types.UID(jobUID), APIVersion: "batch/v1", ResourceVersion: "9"},
		Type:           corev1.EventTypeNormal, Reason: reason, Message: reason + " happened",
		Source:        corev1.EventSource{Component: "job-controller"},
		LastTimestamp: metav1.NewTime(at),
		Count:         3,
	}
}

func listBook(t *testing.T, b *JobEventBook, uid string, opts ...client.ListOption) []corev1.Event {
	t.Helper()
	var list corev1.EventList
	opts = append(opts, client.MatchingFields{EventObjectUIDField: uid})
	require.NoError(t, b.List(context.Background(), &list, opts...))
	return list.Items
}

func TestJobEventBookKeepsWhatTheExportCopies(t *testing.T) {
	b := NewJobEventBook(nil)
	full := fullEvent("j.1", "u1", "Completed", now)
	require.NoError(t, b.Replace([]any{full}, "1"))
	got := listBook(t, b, "u1", client.InNamespace("agents"))
	require.Len(t, got, 1)
	e := got[0]
	assert.Equal(t, "j.1", e.Name)
	assert.Equal(t, "agents", e.Namespace)
	assert.Equal(t, "Completed", e.Reason)
	assert.Equal(t, "Completed happened", e.Message)
	assert.Equal(t, corev1.EventTypeNormal, e.Type)
	assert.Equal(t, corev1.ObjectReference{Kind: "Job", Namespace: "agents", Name: "claude-job-u1", UID: "u1"}, e.InvolvedObject)
	assert.True(t, e.LastTimestamp.Equal(&full.LastTimestamp))
	assert.Empty(t, e.Annotations)
	assert.Empty(t, e.Labels)
	assert.Empty(t, e.Source.Component)

	// Without a last timestamp, the event time; without it, the creation.
	series := fullEvent("j.2", "u1", "Series", time.Time{})
	series.LastTimestamp = metav1.Time{}
	series.EventTime = metav1.NewMicroTime(now.Add(time.Second))
	created := fullEvent("j.3", "u1", "Old", time.Time{})
	created.LastTimestamp = metav1.Time{}
	created.CreationTimestamp = metav1.NewTime(now.Add(2 * time.Second))
	require.NoError(t, b.Add(series))
	require.NoError(t, b.Add(created))
	times := map[string]time.Time{}
	for _, e := range listBook(t, b, "u1") {
		times[e.Reason] = e.LastTimestamp.Time
	}
	assert.True(t, times["Series"].Equal(now.Add(time.Second)), "%v", times)
	assert.True(t, times["Old"].Equal(now.Add(2*time.Second)), "%v", times)
}

func TestJobEventBookFollowsTheWatch(t *testing.T) {
	exported := &ExportedJobs{}
	b := NewJobEventBook(exported.Has)
	assert.False(t, b.HasSynced())
	require.NoError(t, b.Replace([]any{fullEvent("a.1", "a", "SuccessfulCreate", now), fullEvent("b.1", "b", "SuccessfulCreate", now)}, "1"))
	assert.True(t, b.HasSynced())

	// An update replaces the event; a new one is added.
	changed := fullEvent("a.1", "a", "SuccessfulCreate", now)
	changed.Message = "again"
	require.NoError(t, b.Update(changed))
	require.NoError(t, b.Add(fullEvent("a.2", "a", "Completed", now)))
	got := listBook(t, b, "a")
	require.Len(t, got, 2)
	assert.Equal(t, "again", got[0].Message)
	n, jobs := b.Len()
	assert.Equal(t, 3, n)
	assert.Equal(t, 2, jobs)

	// Deletions, also as the informer's tombstone.
	require.NoError(t, b.Delete(fullEvent("a.1", "a", "", now)))
	require.NoError(t, b.Delete(toolscache.DeletedFinalStateUnknown{Key: "agents/a.2", Obj: fullEvent("a.2", "a", "", now)}))
	require.NoError(t, b.Delete(fullEvent("gone", "a", "", now)), "an unknown event is not an error")
	assert.Empty(t, listBook(t, b, "a"))
	n, jobs = b.Len()
	assert.Equal(t, 1, n)
	assert.Equal(t, 1, jobs)

	// Other namespaces' events of the same UID are not listed.
	assert.Len(t, listBook(t, b, "b", client.InNamespace("agents")), 1)
	assert.Empty(t, listBook(t, b, "b", client.InNamespace("other")))

	// A Job exported for good: its events go, and later ones are not kept,
	// not even by a relist.
	exported.Add("b")
	b.Forget("b")
	require.NoError(t, b.Add(fullEvent("b.2", "b", "Late", now)))
	require.NoError(t, b.Replace([]any{fullEvent("b.1", "b", "SuccessfulCreate", now), fullEvent("c.1", "c", "SuccessfulCreate", now)}, "2"))
	assert.Empty(t, listBook(t, b, "b"))
	assert.Len(t, listBook(t, b, "c"), 1)
	n, jobs = b.Len()
	assert.Equal(t, 1, n)
	assert.Equal(t, 1, jobs)

	// Events without an involved UID are not kept; other objects are errors.
	noUID := fullEvent("x.1", "", "X", now)
	require.NoError(t, b.Add(noUID))
	n, _ = b.Len()
	assert.Equal(t, 1, n)
	require.ErrorContains(t, b.Add(&corev1.Pod{}), "unexpected object *v1.Pod")
	require.ErrorContains(t, b.Delete("nonsense"), "unexpected object string")
	require.ErrorContains(t, b.Replace([]any{fullEvent("c.1", "c", "S", now), 42}, "3"), "unexpected object int")
	assert.Len(t, listBook(t, b, "c"), 1, "the rest of a relist is kept")
	require.NoError(t, b.Resync())
}

func TestJobEventBookListRefusesWhatItCannotAnswer(t *testing.T) {
	b := NewJobEventBook(nil)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Millisecond)
	defer cancel()
	var list corev1.EventList
	err := b.List(ctx, &list, client.MatchingFields{EventObjectUIDField: "u"})
	require.ErrorIs(t, err, context.DeadlineExceeded, "an export never copies a list the book has not had yet")
	require.ErrorContains(t, err, "not synced")

	require.NoError(t, b.Replace(nil, "1"))
	require.ErrorContains(t, b.List(context.Background(), &list), "needs a involvedObject.uid field selector")
	require.ErrorContains(t, b.List(context.Background(), &list, client.MatchingFieldsSelector{Selector: fields.OneTermEqualSelector("reason", "x")}), "field selector")
	require.ErrorContains(t, b.List(context.Background(), &corev1.PodList{}, client.MatchingFields{EventObjectUIDField: "u"}), "cannot list into *v1.PodList")
}

func TestJobEventBookRunsAReflector(t *testing.T) {
	cs := fakeclientset.NewClientset(fullEvent("r.1", "r", "SuccessfulCreate", now))
	// The fake clientset does not stream lists (watch-list): say so, as
	// client-go's informers built on it do.
	lw := toolscache.ToListWatcherWithWatchListSemantics(&toolscache.ListWatch{
		ListWithContextFunc: func(ctx context.Context, o metav1.ListOptions) (runtime.Object, error) {
			return cs.CoreV1().Events(metav1.NamespaceAll).List(ctx, o)
		},
		WatchFuncWithContext: func(ctx context.Context, o metav1.ListOptions) (watch.Interface, error) {
			return cs.CoreV1().Events(metav1.NamespaceAll).Watch(ctx, o)
		},
	}, cs)
	b := NewJobEventBook(nil)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- b.RunReflector(ctx, lw) }()
	require.Eventually(t, b.HasSynced, 10*time.Second, 10*time.Millisecond)
	assert.Len(t, listBook(t, b, "r"), 1)
	_, err := cs.CoreV1().Events("agents").Create(context.Background(), fullEvent("r.2", "r", "Completed", now), metav1.CreateOptions{})
	require.NoError(t, err)
	require.Eventually(t, func() bool {
		var list corev1.EventList
		return b.List(context.Background(), &list, client.MatchingFields{EventObjectUIDField: "r"}) == nil && len(list.Items) == 2
	}, 10*time.Second, 10*time.Millisecond)
	cancel()
	require.NoError(t, <-done)
}

// TestExportFromTheBookEqualsExportFromFullEvents exports the same Job
// twice, once listing its whole events and once through the book, and
// compares the history: the book keeps every field the export copies.
// Once the Job is exported for good, the book has forgotten its events.
func TestExportFromTheBookEqualsExportFromFullEvents(t *testing.T) {
	export := func(t *testing.T, useBook bool) ([]history.Event, *JobEventBook) {
		job := newJob("bk", finishedJob(batchv1.JobComplete, "CompletionsReached"))
		pod := newPod(job, "bk-a", corev1.PodSucceeded, ptr.To[int32](0), now.Add(-40*time.Second))
		e := newEnv(t, job, pod)
		e.r.Exported = &ExportedJobs{}
		evs := []*corev1.Event{
			fullEvent("bk.1", string(job.UID), "SuccessfulCreate", now.Add(-50*time.Second)),
			fullEvent("bk.2", string(job.UID), "Completed", now.Add(-10*time.Second)),
		}
		for _, ev := range evs {
			ev.InvolvedObject.Name = job.Name
		}
		var book *JobEventBook
		if useBook {
			book = NewJobEventBook(e.r.Exported.Has)
			require.NoError(t, book.Replace([]any{evs[0], evs[1]}, "1"))
			e.r.JobEvents = book
		} else {
			e.r.JobEvents = fakeEvents{byUID: map[string][]corev1.Event{string(job.UID): {*evs[0], *evs[1]}}}
		}
		e.reconcile(t, job.Name)
		rec, err := e.store.Job(context.Background(), "bk")
		require.NoError(t, err)
		require.True(t, e.r.Exported.Has(job.UID))
		return rec.Events, book
	}
	want, _ := export(t, false)
	got, book := export(t, true)
	require.Len(t, want, 2)
	assert.Equal(t, want, got)
	n, jobs := book.Len()
	assert.Zero(t, n, "an exported Job's events are forgotten")
	assert.Zero(t, jobs)
}
