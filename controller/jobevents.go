package controller

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"
	"unique"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/types"
	toolscache "k8s.io/client-go/tools/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// JobEventSelector selects the events the export copies about Jobs: every
// Job's (events carry no labels), except the controller's own Exported
// and Deleted events, which come after the export and which it never
// copies (they were two of about five events per Job).
func JobEventSelector() fields.Selector {
	return fields.AndSelectors(
		fields.OneTermEqualSelector("involvedObject.kind", "Job"),
		fields.OneTermNotEqualSelector("reason", ReasonExported),
		fields.OneTermNotEqualSelector("reason", ReasonDeleted),
	)
}

// JobEventBook keeps the events about Jobs that an export copies, by the
// UID of their Job, in a few hundred bytes each: a reflector (RunReflector)
// lists and watches them into it, and the export lists a Job's events from
// it (List), so an export costs no API call (the API server does not
// cache events: a list per export would scan the namespace's events in
// etcd). It replaces an informer of whole events, whose store and indexes
// cost several times more and kept every Job's events until they expired
// (an hour by default), exported or not: a Job's events are forgotten
// once it has been exported for good (Forget; the reconciler calls it
// when it adds the Job to ExportedJobs), and events arriving later for
// such a Job are not kept (Done). It implements the reflector's store
// (toolscache.ReflectorStore) and EventLister. Safe for concurrent use.
type JobEventBook struct {
	// done, if set, reports whether a Job's events are no longer needed.
	done func(types.UID) bool

	mu     sync.RWMutex
	byJob  map[types.UID][]bookEvent
	events int
	// synced is closed by the first Replace (the reflector's initial
	// list): List waits for it, so an export never copies a partial list.
	synced   chan struct{}
	syncOnce sync.Once
}

// bookEvent is what the export copies of an event, and its name (its key
// within the namespace, for updates and deletions). Namespace, kind, type
// and reason repeat across events and are interned.
type bookEvent struct {
	name      string
	namespace unique.Handle[string]
	kind      unique.Handle[string]
	object    string
	typ       unique.Handle[string]
	reason    unique.Handle[string]
	message   string
	at        time.Time
}

// NewJobEventBook returns an empty book. done, if not nil, reports whether
// a Job's events are no longer needed (ExportedJobs.Has): events about such
// a Job are not kept.
func NewJobEventBook(done func(types.UID) bool) *JobEventBook {
	return &JobEventBook{done: done, byJob: map[types.UID][]bookEvent{}, synced: make(chan struct{})}
}

// RunReflector lists and watches the events lw serves (JobEventSelector's)
// into the book until ctx ends.
func (b *JobEventBook) RunReflector(ctx context.Context, lw toolscache.ListerWatcher) error {
	r := toolscache.NewReflectorWithOptions(lw, &corev1.Event{}, b, toolscache.ReflectorOptions{Name: "job-events"})
	r.RunWithContext(ctx)
	return nil
}

// eventTime is when an event happened: its last occurrence, else its
// event time (events.k8s.io), else its creation.
func eventTime(e *corev1.Event) time.Time {
	t := e.LastTimestamp.Time
	if t.IsZero() {
		t = e.EventTime.Time
	}
	if t.IsZero() {
		t = e.CreationTimestamp.Time
	}
	return t
}

func toEvent(obj any) (*corev1.Event, error) {
	if d, ok := obj.(toolscache.DeletedFinalStateUnknown); ok {
		obj = d.Obj
	}
	e, ok := obj.(*corev1.Event)
	if !ok {
		return nil, fmt.Errorf("job events: unexpected object %T", obj)
	}
	return e, nil
}

func compact(e *corev1.Event) bookEvent {
	return bookEvent{
		name:      e.Name,
		namespace: unique.Make(e.Namespace),
		kind:      unique.Make(e.InvolvedObject.Kind),
		object:    e.InvolvedObject.Name,
		typ:       unique.Make(e.Type),
		reason:    unique.Make(e.Reason),
		message:   e.Message,
		at:        eventTime(e),
	}
}

// put adds or replaces one event; b.mu is held.
func (b *JobEventBook) put(e *corev1.Event) {
	uid := e.InvolvedObject.UID
	if uid == "" || (b.done != nil && b.done(uid)) {
		return
	}
	evs := b.byJob[uid]
	for i := range evs {
		if evs[i].name == e.Name {
			evs[i] = compact(e)
			return
		}
	}
	b.byJob[uid] = append(evs, compact(e))
	b.events++
}

// Add keeps an event (the reflector's store).
func (b *JobEventBook) Add(obj any) error {
	e, err := toEvent(obj)
	if err != nil {
		return err
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	b.put(e)
	return nil
}

// Update keeps an event's new state (the reflector's store).
func (b *JobEventBook) Update(obj any) error { return b.Add(obj) }

// Delete forgets an event (the reflector's store).
func (b *JobEventBook) Delete(obj any) error {
	e, err := toEvent(obj)
	if err != nil {
		return err
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	uid := e.InvolvedObject.UID
	evs := b.byJob[uid]
	for i := range evs {
		if evs[i].name == e.Name {
			evs = append(evs[:i], evs[i+1:]...)
			b.events--
			break
		}
	}
	if len(evs) == 0 {
		delete(b.byJob, uid)
	} else {
		b.byJob[uid] = evs
	}
	return nil
}

// Replace replaces the book's contents with a full list (the reflector's
// initial list and relists); the first one marks the book synced.
func (b *JobEventBook) Replace(objs []any, _ string) error {
	var errs []error
	b.mu.Lock()
	defer b.mu.Unlock()
	b.byJob, b.events = make(map[types.UID][]bookEvent, len(b.byJob)), 0
	for _, obj := range objs {
		e, err := toEvent(obj)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		b.put(e)
	}
	b.syncOnce.Do(func() { close(b.synced) })
	return errors.Join(errs...)
}

// Resync does nothing: the book has no handlers to call again.
func (b *JobEventBook) Resync() error { return nil }

// Forget drops a Job's events: the reconciler calls it once the Job is
// exported for good (ExportedJobs.Add), after which nothing copies them.
func (b *JobEventBook) Forget(uid types.UID) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.events -= len(b.byJob[uid])
	delete(b.byJob, uid)
}

// Len is the number of events kept, and of Jobs they are about.
func (b *JobEventBook) Len() (events, jobs int) {
	b.mu.RLock()
	defer b.mu.RUnlock()
	return b.events, len(b.byJob)
}

// HasSynced reports whether the reflector's initial list is in.
func (b *JobEventBook) HasSynced() bool {
	select {
	case <-b.synced:
		return true
	default:
		return false
	}
}

// List lists the events about one Job into an *corev1.EventList: opts must
// select the Job by EventObjectUIDField (client.MatchingFields), and may
// name its namespace (client.InNamespace). It waits for the book's
// initial list, or for ctx. The events carry what the export copies: name,
// namespace, involved object (kind, name, UID), type, reason, message and
// time (as LastTimestamp).
func (b *JobEventBook) List(ctx context.Context, list client.ObjectList, opts ...client.ListOption) error {
	out, ok := list.(*corev1.EventList)
	if !ok {
		return fmt.Errorf("job events: cannot list into %T", list)
	}
	var lo client.ListOptions
	lo.ApplyOptions(opts)
	uid, ok := "", false
	if lo.FieldSelector != nil {
		uid, ok = lo.FieldSelector.RequiresExactMatch(EventObjectUIDField)
	}
	if !ok || uid == "" {
		return fmt.Errorf("job events: list needs a %s field selector", EventObjectUIDField)
	}
	select {
	case <-b.synced:
	case <-ctx.Done():
		return fmt.Errorf("job events not synced yet: %w", ctx.Err())
	}
	b.mu.RLock()
	defer b.mu.RUnlock()
	out.Items = out.Items[:0]
	for _, ev := range b.byJob[types.UID(uid)] {
		ns := ev.namespace.Value()
		if lo.Namespace != "" && ns != lo.Namespace {
			continue
		}
		out.Items = append(out.Items, corev1.Event{
			ObjectMeta:     metav1.ObjectMeta{Name: ev.name, Namespace: ns},
			InvolvedObject: corev1.ObjectReference{Kind: ev.kind.Value(), Namespace: ns, Name: ev.object, UID: types.UID(uid)},
			Type:           ev.typ.Value(),
			Reason:         ev.reason.Value(),
			Message:        ev.message,
			LastTimestamp:  metav1.NewTime(ev.at),
		})
	}
	return nil
}
