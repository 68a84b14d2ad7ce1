package controller

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	eventsclient "k8s.io/client-go/kubernetes/typed/events/v1"

	"github.com/go-logr/logr"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/kubernetes/fake"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	k8stesting "k8s.io/client-go/testing"
	clocktesting "k8s.io/utils/clock/testing"
)

func eventScheme(t *testing.T) *runtime.Scheme {
	t.Helper()
	s := runtime.NewScheme()
	require.NoError(t, clientgoscheme.AddToScheme(s))
	return s
}

// runWriter starts w and returns a function that stops it and waits
// until it has returned (having drained its queue).
func runWriter(t *testing.T, w *EventWriter) func() {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- w.Start(ctx) }()
	return func() {
		cancel()
		require.NoError(t, <-done)
	}
}

func listEvents(t *testing.T, cs *fake.Clientset, ns string) []eventsv1.Event {
	t.Helper()
	list, err := cs.EventsV1().Events(ns).List(context.Background(), metav1.ListOptions{})
	require.NoError(t, err)
	return list.Items
}

func TestEventWriterWritesEventsAsTheRecorderBuildsThem(t *testing.T) {
	cs := fake.NewClientset()
	clk := clocktesting.NewFakeClock(now)
	w := NewEventWriter(cs.EventsV1(), eventScheme(t), "flowforge-controller", clk, logr.Discard(), EventWriterOptions{})
	job := newJob("ev1")
	pod := newPod(job, "ev1-a", corev1.PodRunning, nil, now)
	stop := runWriter(t, w)
	w.Eventf(job, pod, corev1.EventTypeNormal, "Started", "Start", "attempt %d started on node %s", 1, "kwok-worker-0")
	clk.Step(time.Millisecond) // event names hold the time
	w.Eventf(job, nil, corev1.EventTypeWarning, "Terminating", "Terminate", "%s", strings.Repeat("x", 2000))
	stop()

	evs := listEvents(t, cs, "agents")
	require.Len(t, evs, 2)
	byReason := map[string]eventsv1.Event{}
	for _, e := range evs {
		byReason[e.Reason] = e
	}
	started := byReason["Started"]
	assert.Equal(t, corev1.EventTypeNormal, started.Type)
	assert.Equal(t, "Start", started.Action)
	assert.Equal(t, "attempt 1 started on node kwok-worker-0", started.Note)
	assert.Equal(t, "flowforge-controller", started.ReportingController)
	assert.True(t, strings.HasPrefix(started.ReportingInstance, "flowforge-controller-"), started.ReportingInstance)
	assert.Equal(t, job.UID, started.Regarding.UID)
	assert.Equal(t, "Job", started.Regarding.Kind)
	assert.Equal(t, job.Name, started.Regarding.Name)
	require.NotNil(t, started.Related)
	assert.Equal(t, pod.UID, started.Related.UID)
	assert.True(t, started.EventTime.Time.Equal(now), "%s", started.EventTime)
	assert.True(t, strings.HasPrefix(started.Name, job.Name+"."), started.Name)

	long := byReason["Terminating"]
	assert.Len(t, long.Note, maxNoteLength, "a note is cut to the API server's limit")
	assert.Nil(t, long.Related)
}

func TestEventWriterRefusesWhatTheRecorderRefuses(t *testing.T) {
	cs := fake.NewClientset()
	w := NewEventWriter(cs.EventsV1(), eventScheme(t), "c", clocktesting.NewFakeClock(now), logr.Discard(), EventWriterOptions{})
	stop := runWriter(t, w)
	w.Eventf(newJob("ev2"), nil, "Strange", "R", "A", "unsupported type")
	w.Eventf(&unregistered{}, nil, corev1.EventTypeNormal, "R", "A", "no kind for this object")
	stop()
	assert.Empty(t, listEvents(t, cs, "agents"))
	assert.Zero(t, w.Dropped())
}

// unregistered is an object no scheme knows.
type unregistered struct{ metav1.ObjectMeta }

func (u *unregistered) GetObjectKind() schema.ObjectKind { return schema.EmptyObjectKind }
func (u *unregistered) DeepCopyObject() runtime.Object {
	return &unregistered{ObjectMeta: *u.DeepCopy()}
}

func TestEventWriterDropsWhenTheQueueIsFullInsteadOfBlocking(t *testing.T) {
	cs := fake.NewClientset()
	clk := clocktesting.NewFakeClock(now)
	w := NewEventWriter(cs.EventsV1(), eventScheme(t), "c", clk, logr.Discard(), EventWriterOptions{QueueSize: 2})
	job := newJob("ev3")
	// Not started: nothing takes from the queue, and Eventf returns anyway.
	for i := range 5 {
		w.Eventf(job, nil, corev1.EventTypeNormal, "R", "A", "event %d", i)
		clk.Step(time.Millisecond)
	}
	assert.Equal(t, int64(3), w.Dropped())
	runWriter(t, w)()
	evs := listEvents(t, cs, "agents")
	require.Len(t, evs, 2, "the queued events are written, the dropped ones not")
	notes := []string{evs[0].Note, evs[1].Note}
	assert.ElementsMatch(t, []string{"event 0", "event 1"}, notes)
}

func TestEventWriterRetriesTransientErrorsOnly(t *testing.T) {
	cases := []struct {
		name    string
		err     error
		fails   int
		written bool
		tries   int
	}{
		{name: "server busy, then written", err: apierrors.NewTooManyRequests("busy", 1), fails: 2, written: true, tries: 3},
		{name: "network error, then written", err: errors.New("connection refused"), fails: 1, written: true, tries: 2},
		{name: "invalid event: given up at once", err: apierrors.NewInvalid(schema.GroupKind{Group: "events.k8s.io", Kind: "Event"}, "x", nil), fails: 10, written: false, tries: 1},
		{name: "still failing after 5 tries", err: apierrors.NewInternalError(errors.New("etcd")), fails: 10, written: false, tries: 5},
		{name: "already written", err: apierrors.NewAlreadyExists(schema.GroupResource{Group: "events.k8s.io", Resource: "events"}, "x"), fails: 10, written: false, tries: 1},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cs := fake.NewClientset()
			var mu sync.Mutex
			tries := 0
			cs.PrependReactor("create", "events", func(k8stesting.Action) (bool, runtime.Object, error) {
				mu.Lock()
				defer mu.Unlock()
				tries++
				if tries <= tc.fails {
					return true, nil, tc.err
				}
				return false, nil, nil
			})
			w := NewEventWriter(cs.EventsV1(), eventScheme(t), "c", clocktesting.NewFakeClock(now), logr.Discard(), EventWriterOptions{RetryDelay: time.Millisecond})
			w.Eventf(newJob("ev4"), nil, corev1.EventTypeWarning, "R", "A", "note")
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			w.write(ctx, <-w.queue)
			mu.Lock()
			defer mu.Unlock()
			assert.Equal(t, tc.tries, tries)
			assert.Len(t, listEvents(t, cs, "agents"), map[bool]int{true: 1, false: 0}[tc.written])
		})
	}
}

func TestEventWriterRunsOnEveryReplica(t *testing.T) {
	w := NewEventWriter(fake.NewClientset().EventsV1(), eventScheme(t), "c", clocktesting.NewFakeClock(now), logr.Discard(), EventWriterOptions{})
	assert.False(t, w.NeedLeaderElection(), "a standby replica has no events to write, and a new leader's must not wait for an election")
}

// blockingEvents holds each Create until release is closed, then fails it
// if its context has ended, as a real client does.
type blockingEvents struct {
	eventsclient.EventsGetter
	started chan struct{}
	release chan struct{}
}

func (b *blockingEvents) Events(ns string) eventsclient.EventInterface {
	return &blockingEventInterface{EventInterface: b.EventsGetter.Events(ns), b: b}
}

type blockingEventInterface struct {
	eventsclient.EventInterface
	b *blockingEvents
}

func (e *blockingEventInterface) Create(ctx context.Context, ev *eventsv1.Event, opts metav1.CreateOptions) (*eventsv1.Event, error) {
	select {
	case e.b.started <- struct{}{}:
	default:
	}
	<-e.b.release
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	return e.EventInterface.Create(ctx, ev, opts)
}

// An event being written when the writer stops (the controller shutting
// down right after a Job's end) is written, not dropped with the stopped
// context.
func TestEventWriterFinishesTheWriteUnderWayWhenStopped(t *testing.T) {
	cs := fake.NewClientset()
	client := &blockingEvents{EventsGetter: cs.EventsV1(), started: make(chan struct{}, 1), release: make(chan struct{})}
	w := NewEventWriter(client, eventScheme(t), "c", clocktesting.NewFakeClock(now), logr.Discard(), EventWriterOptions{Workers: 1})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- w.Start(ctx) }()
	w.Eventf(newJob("ev-stop"), nil, corev1.EventTypeNormal, "Succeeded", "Finish", "job succeeded")
	<-client.started
	cancel()
	close(client.release)
	require.NoError(t, <-done)
	evs := listEvents(t, cs, "agents")
	require.Len(t, evs, 1)
	assert.Equal(t, "Succeeded", evs[0].Reason)
}
