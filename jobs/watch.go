package jobs

import (
	"context"
	"errors"
	"fmt"
	"reflect"

	"github.com/flowforge/flowforge/contract"

	batchv1 "k8s.io/api/batch/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/watch"
)

// Watch follows a job until it reaches a terminal phase and returns its
// final status. fn is called with the first status seen and then on every
// change (a new resource version alone is not a change); an error from fn
// stops the watch and is returned.
//
// Watch lists the Job, then watches it from the list's resource version.
// When the watch closes (a server timeout, an API server restart) it
// resumes from the last resource version seen, with backoff; when the
// server answers that the version is too old (410 Gone/Expired) it lists
// again and goes on from there. A Job that is deleted, or replaced by
// another of the same name, before it finished is an error wrapping
// ErrDeleted; the end of ctx is an error wrapping ctx.Err(). Watch never
// returns a nil error before a terminal phase.
func (c *Client) Watch(ctx context.Context, id string, fn func(contract.Status) error) (contract.Status, error) {
	return c.WatchFrom(ctx, id, "", fn)
}

// WatchFrom is Watch starting from a resource version seen earlier (for
// example Status.ResourceVersion from a previous run), without an initial
// list; "" means list first. A version the server no longer has is not an
// error: Watch lists again and continues.
func (c *Client) WatchFrom(ctx context.Context, id, resourceVersion string, fn func(contract.Status) error) (contract.Status, error) {
	selector, err := JobIDSelector(id)
	if err != nil {
		return contract.Status{}, err
	}
	jobs := c.cs.BatchV1().Jobs(c.opts.Namespace)
	src := source[*batchv1.Job]{
		what: fmt.Sprintf("job %q in namespace %s", id, c.opts.Namespace),
		list: func(ctx context.Context) ([]*batchv1.Job, string, error) {
			list, err := jobs.List(ctx, metav1.ListOptions{LabelSelector: selector})
			if err != nil {
				return nil, "", err
			}
			items := make([]*batchv1.Job, 0, len(list.Items))
			for i := range list.Items {
				items = append(items, &list.Items[i])
			}
			return items, list.ResourceVersion, nil
		},
		watch: func(ctx context.Context, rv string) (watch.Interface, error) {
			return jobs.Watch(ctx, metav1.ListOptions{LabelSelector: selector, ResourceVersion: rv, AllowWatchBookmarks: true})
		},
	}

	var (
		last contract.Status
		seen bool
		uid  types.UID
	)
	deleted := func(how string) error {
		if !seen {
			return &NotFoundError{ID: id, Namespace: c.opts.Namespace}
		}
		return fmt.Errorf("watch %s: %w: it %s while %s", src.what, ErrDeleted, how, last.Phase)
	}
	observe := func(job *batchv1.Job) (bool, error) {
		uid = job.UID
		st := contract.StatusOf(job)
		if seen {
			st.Phase = forward(last.Phase, st.Phase)
		}
		changed := !seen || !sameStatus(last, st)
		last, seen = st, true
		if changed {
			if err := fn(st); err != nil {
				return true, fmt.Errorf("watch %s: stopped: %w", src.what, err)
			}
		}
		if st.Phase.Terminal() {
			return true, nil
		}
		if job.DeletionTimestamp != nil {
			return true, deleted("is being deleted")
		}
		return false, nil
	}
	err = observeObjects(ctx, c, src, resourceVersion,
		func(items []*batchv1.Job) (bool, error) {
			if uid != "" {
				// Relisting: follow the Job already seen, whatever else
				// carries its id now.
				for _, job := range items {
					if job.UID == uid {
						return observe(job)
					}
				}
				return true, deleted("was deleted")
			}
			jobs := make([]batchv1.Job, 0, len(items))
			for _, job := range items {
				jobs = append(jobs, *job)
			}
			job, err := oneJob(id, c.opts.Namespace, jobs)
			if err != nil {
				return true, err
			}
			return observe(job)
		},
		func(typ watch.EventType, job *batchv1.Job) (bool, error) {
			if uid != "" && job.UID != uid {
				return false, nil // another Job with the id: not the one followed
			}
			if typ == watch.Deleted {
				if seen && last.Phase.Terminal() {
					return true, nil
				}
				if uid == "" || job.UID == uid {
					seen = true
					return true, deleted("was deleted")
				}
				return false, nil
			}
			return observe(job)
		})
	if err == nil && !last.Phase.Terminal() {
		// observeObjects returns nil only when a handler says done, and the
		// handlers say done without an error only at a terminal phase.
		err = fmt.Errorf("watch %s: ended before a terminal phase", src.what)
	}
	return last, err
}

// forward keeps a followed job's phase from going back to Pending once it
// has left it: between an attempt's end and the Job's final condition the
// Job controller's counts can briefly say "nothing active", which is not a
// new start.
func forward(last, next contract.Phase) contract.Phase {
	if next == contract.PhasePending && last != contract.PhasePending && !last.Terminal() {
		return last
	}
	return next
}

// sameStatus compares statuses ignoring the resource version.
func sameStatus(a, b contract.Status) bool {
	a.ResourceVersion, b.ResourceVersion = "", ""
	return reflect.DeepEqual(a, b)
}

// source lists and watches objects of one type.
type source[T runtime.Object] struct {
	what  string
	list  func(ctx context.Context) (items []T, resourceVersion string, err error)
	watch func(ctx context.Context, resourceVersion string) (watch.Interface, error)
}

// observeObjects is a small reflector: it lists (unless given a resource
// version to start from), then watches from the last resource version
// seen. A watch that closes is resumed; a resource version that is too old
// (410) leads to a new list; transient failures are retried with
// ReconnectBackoff, up to its Steps consecutive failures. listed receives
// each list's items and event each added, modified or deleted object;
// either stops the loop by returning done or an error. observeObjects
// returns nil only when a handler returned done without an error.
func observeObjects[T runtime.Object](ctx context.Context, c *Client, src source[T], rv string,
	listed func([]T) (bool, error), event func(watch.EventType, T) (bool, error)) error {
	needList := rv == ""
	if needList {
		// The first list uses the call policy, so that an unreachable
		// server is reported as quickly as by any other call.
		var items []T
		if err := c.call(ctx, "list "+src.what, func(ctx context.Context) error {
			var err error
			items, rv, err = src.list(ctx)
			return err
		}); err != nil {
			return err
		}
		needList = false
		if done, err := listed(items); done || err != nil {
			return err
		}
	}
	// Step changes the backoff it is called on: the copy is the state of
	// the current run of failures, reset when a watch makes progress.
	backoff := c.opts.ReconnectBackoff
	maxFailures := max(backoff.Steps, 1)
	failures := 0
	var lastErr error
	fail := func(err error) {
		failures++
		lastErr = err
	}
	reset := func() {
		failures, backoff = 0, c.opts.ReconnectBackoff
	}
	for {
		if failures > 0 {
			if failures >= maxFailures {
				return fmt.Errorf("watch %s: gave up after %d failed attempts to reconnect to %s: %w", src.what, failures, c.server(), lastErr)
			}
			if err := c.sleep(ctx, backoff.Step()); err != nil {
				return fmt.Errorf("watch %s: %w (last error: %w)", src.what, err, lastErr)
			}
		}
		if needList {
			lctx, cancel := context.WithTimeout(ctx, c.opts.RequestTimeout)
			items, newRV, err := src.list(lctx)
			cancel()
			switch {
			case err == nil:
			case ctx.Err() != nil:
				return fmt.Errorf("watch %s: %w", src.what, ctx.Err())
			case IsTransient(err):
				fail(err)
				continue
			default:
				return fmt.Errorf("watch %s: list: %w", src.what, err)
			}
			rv, needList = newRV, false
			reset()
			if done, err := listed(items); done || err != nil {
				return err
			}
		}
		w, err := src.watch(ctx, rv)
		if err != nil {
			switch {
			case ctx.Err() != nil:
				return fmt.Errorf("watch %s: %w", src.what, ctx.Err())
			case isExpired(err):
				needList = true
			case IsTransient(err):
				fail(err)
			default:
				return fmt.Errorf("watch %s: %w", src.what, err)
			}
			continue
		}
		res := consume(ctx, w, &rv, event)
		w.Stop()
		switch {
		case res.done:
			return res.err
		case ctx.Err() != nil:
			return fmt.Errorf("watch %s: %w", src.what, ctx.Err())
		case res.expired:
			needList = true
		case res.err != nil && !IsTransient(res.err):
			return fmt.Errorf("watch %s: %w", src.what, res.err)
		case res.err != nil:
			fail(res.err)
		case res.progressed:
			reset()
		default:
			fail(errors.New("the watch closed without delivering an event"))
		}
	}
}

type consumeResult struct {
	progressed bool  // at least one event arrived
	expired    bool  // the server said the resource version is too old
	done       bool  // a handler is done (err is its error)
	err        error // an error event, or the handler's error when done
}

// consume reads one watch until it closes, ctx ends, or a handler is done,
// and keeps *rv at the last resource version seen.
func consume[T runtime.Object](ctx context.Context, w watch.Interface, rv *string, event func(watch.EventType, T) (bool, error)) consumeResult {
	var res consumeResult
	for {
		select {
		case <-ctx.Done():
			return res
		case ev, ok := <-w.ResultChan():
			if !ok {
				return res
			}
			res.progressed = true
			switch ev.Type {
			case watch.Error:
				err := apierrors.FromObject(ev.Object)
				if isExpired(err) {
					res.expired = true
				} else {
					res.err = err
				}
				return res
			case watch.Bookmark:
				if m, err := meta.Accessor(ev.Object); err == nil && m.GetResourceVersion() != "" {
					*rv = m.GetResourceVersion()
				}
			case watch.Added, watch.Modified, watch.Deleted:
				obj, ok := ev.Object.(T)
				if !ok {
					continue
				}
				if m, err := meta.Accessor(obj); err == nil && m.GetResourceVersion() != "" {
					*rv = m.GetResourceVersion()
				}
				if done, err := event(ev.Type, obj); done || err != nil {
					res.done, res.err = true, err
					return res
				}
			}
		}
	}
}
