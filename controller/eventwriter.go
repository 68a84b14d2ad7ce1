package controller

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	eventsclient "k8s.io/client-go/kubernetes/typed/events/v1"
	"k8s.io/client-go/tools/events"
	"k8s.io/client-go/tools/record/util"
	"k8s.io/client-go/tools/reference"
	"k8s.io/utils/clock"
)

// EventWriter is the controller's events.EventRecorder: it writes each
// event (events.k8s.io/v1) to the API server from a bounded queue, and
// keeps nothing once written.
//
// client-go's events broadcaster, which controller-runtime's recorder
// uses, keeps every event it emitted for 6 to 12 minutes to merge
// repeats into series: about 16 MB after a 5,000-Job burst, the
// controller's largest heap entry after its cache. The controller emits
// each of its events once per Job or attempt (the history store's marks
// guard them), so there are no repeats to merge.
//
// Like the broadcaster (whose queue drops events when full), a full queue
// drops the event rather than block a reconcile: events are a courtesy,
// and the history holds the record.
type EventWriter struct {
	client     eventsclient.EventsGetter
	scheme     *runtime.Scheme
	controller string
	instance   string
	clock      clock.PassiveClock
	log        logr.Logger
	queue      chan *eventsv1.Event
	workers    int
	retry      time.Duration
	dropped    atomic.Int64
}

// EventWriterOptions tune an EventWriter (zero values: the defaults).
type EventWriterOptions struct {
	// QueueSize bounds the events waiting to be written (default 1000,
	// the broadcaster's).
	QueueSize int
	// Workers write events at once (default 4).
	Workers int
	// RetryDelay is the first wait before writing an event again after a
	// transient error; it doubles up to 5 tries (default 1 s).
	RetryDelay time.Duration
}

// NewEventWriter returns an EventWriter reporting as controller from
// this host; Start (a manager.Runnable) writes the events.
func NewEventWriter(client eventsclient.EventsGetter, scheme *runtime.Scheme, controller string, clk clock.PassiveClock, log logr.Logger, opts EventWriterOptions) *EventWriter {
	if opts.QueueSize <= 0 {
		opts.QueueSize = 1000
	}
	if opts.Workers <= 0 {
		opts.Workers = 4
	}
	if opts.RetryDelay <= 0 {
		opts.RetryDelay = time.Second
	}
	host, _ := os.Hostname()
	return &EventWriter{
		client: client, scheme: scheme, controller: controller, instance: controller + "-" + host,
		clock: clk, log: log, queue: make(chan *eventsv1.Event, opts.QueueSize),
		workers: opts.Workers, retry: opts.RetryDelay,
	}
}

var _ events.EventRecorder = &EventWriter{}

// Dropped is how many events a full queue has dropped.
func (w *EventWriter) Dropped() int64 { return w.dropped.Load() }

// Eventf queues an event about regarding (and related, if not nil), as
// client-go's events recorder builds it.
func (w *EventWriter) Eventf(regarding, related runtime.Object, eventtype, reason, action, note string, args ...any) {
	message := fmt.Sprintf(note, args...)
	ref, err := reference.GetReference(w.scheme, regarding)
	if err != nil {
		w.log.Error(err, "Could not reference the object of an event; not reported", "reason", reason)
		return
	}
	if !util.ValidateEventType(eventtype) {
		w.log.Error(nil, "Unsupported event type; not reported", "eventType", eventtype, "reason", reason)
		return
	}
	var relatedRef *corev1.ObjectReference
	if related != nil {
		if relatedRef, err = reference.GetReference(w.scheme, related); err != nil {
			relatedRef = nil
		}
	}
	now := w.clock.Now()
	namespace := ref.Namespace
	if namespace == "" {
		namespace = metav1.NamespaceDefault
	}
	ev := &eventsv1.Event{
		ObjectMeta:          metav1.ObjectMeta{Name: util.GenerateEventName(ref.Name, now.UnixNano()), Namespace: namespace},
		EventTime:           metav1.MicroTime{Time: now},
		ReportingController: w.controller,
		ReportingInstance:   w.instance,
		Action:              action,
		Reason:              reason,
		Regarding:           *ref,
		Related:             relatedRef,
		Note:                truncateNote(message),
		Type:                eventtype,
	}
	select {
	case w.queue <- ev:
	default:
		// Logged at the first drop and every 100th, not at each.
		if n := w.dropped.Add(1); n%100 == 1 {
			w.log.Info("Event queue full; events dropped", "dropped", n, "reason", reason, "object", ref.Name)
		}
	}
}

// maxNoteLength is the API server's limit on an event's note.
const maxNoteLength = 1024

func truncateNote(s string) string {
	if len(s) <= maxNoteLength {
		return s
	}
	return s[:maxNoteLength-3] + "..."
}

// NeedLeaderElection: every replica writes the events it emits (only the
// leader reconciles, so only it emits any).
func (w *EventWriter) NeedLeaderElection() bool { return false }

// drainTimeout bounds how long Start goes on writing after its context
// ends.
const drainTimeout = 5 * time.Second

// Start writes queued events until ctx ends, then for up to drainTimeout
// more finishes the writes under way and writes what is left in the
// queue. Writes do not use ctx itself: an event emitted just before a
// shutdown (a Job's end, which the history store marks as reported, so
// no replica emits it again) would otherwise be dropped mid-write.
func (w *EventWriter) Start(ctx context.Context) error {
	writeCtx, cancelWrites := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelWrites()
	go func() {
		select {
		case <-ctx.Done():
		case <-writeCtx.Done():
			return
		}
		select {
		case <-time.After(drainTimeout):
			cancelWrites()
		case <-writeCtx.Done():
		}
	}()
	var wg sync.WaitGroup
	for range w.workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case ev := <-w.queue:
					w.write(writeCtx, ev)
				case <-ctx.Done():
					return
				}
			}
		}()
	}
	wg.Wait()
	for {
		select {
		case ev := <-w.queue:
			w.write(writeCtx, ev)
		default:
			return nil
		}
	}
}

// write creates one event, trying again after transient errors (the API
// server unavailable, overloaded or timing out), 5 tries at most.
func (w *EventWriter) write(ctx context.Context, ev *eventsv1.Event) {
	delay := w.retry
	for try := 1; ; try++ {
		_, err := w.client.Events(ev.Namespace).Create(ctx, ev, metav1.CreateOptions{})
		if err == nil || apierrors.IsAlreadyExists(err) {
			return
		}
		if try == 5 || !transient(err) || ctx.Err() != nil {
			w.log.Info("Could not write an event", "reason", ev.Reason, "object", ev.Regarding.Name, "error", err.Error())
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(delay):
		}
		delay *= 2
	}
}

// transient reports whether writing again may succeed: a network error
// (not an API status) or a status saying the server is busy or failing.
func transient(err error) bool {
	var status apierrors.APIStatus
	if !errors.As(err, &status) {
		return true
	}
	return apierrors.IsServerTimeout(err) || apierrors.IsTimeout(err) || apierrors.IsTooManyRequests(err) ||
		apierrors.IsInternalError(err) || apierrors.IsServiceUnavailable(err) || apierrors.IsUnexpectedServerError(err)
}
