package store

import (
	"context"
	"errors"
	"time"

	"github.com/flowforge/flowforge/history"
)

// Instrumented reports the failed writes of a Store to OnError (the
// controller counts them in flowforge_history_store_errors_total, which
// the store-full alert watches). Reads and cancelled calls are not
// reported: a write failing because the controller is stopping is no
// sign of a full or broken store.
type Instrumented struct {
	history.Store
	// OnError receives the operation (the method's name) and its error.
	OnError func(op string, err error)
}

var _ history.Store = Instrumented{}

func (s Instrumented) report(op string, err error) error {
	if err != nil && s.OnError != nil && !errors.Is(err, context.Canceled) {
		s.OnError(op, err)
	}
	return err
}

// UpsertJob is Store.UpsertJob, reported.
func (s Instrumented) UpsertJob(ctx context.Context, j history.Job) error {
	return s.report("UpsertJob", s.Store.UpsertJob(ctx, j))
}

// SetEvents is Store.SetEvents, reported.
func (s Instrumented) SetEvents(ctx context.Context, jobUID string, events []history.Event) error {
	return s.report("SetEvents", s.Store.SetEvents(ctx, jobUID, events))
}

// UpsertAttempt is Store.UpsertAttempt, reported.
func (s Instrumented) UpsertAttempt(ctx context.Context, a history.Attempt) (bool, error) {
	created, err := s.Store.UpsertAttempt(ctx, a)
	return created, s.report("UpsertAttempt", err)
}

// PutLogArchive is Store.PutLogArchive, reported.
func (s Instrumented) PutLogArchive(ctx context.Context, a history.LogArchive) error {
	return s.report("PutLogArchive", s.Store.PutLogArchive(ctx, a))
}

// MarkExported is Store.MarkExported, reported.
func (s Instrumented) MarkExported(ctx context.Context, jobUID string, at time.Time) (bool, error) {
	first, err := s.Store.MarkExported(ctx, jobUID, at)
	return first, s.report("MarkExported", err)
}

// Mark is Store.Mark, reported.
func (s Instrumented) Mark(ctx context.Context, uid, fact string) (bool, error) {
	first, err := s.Store.Mark(ctx, uid, fact)
	return first, s.report("Mark", err)
}

// Checkpoint is Store.Checkpoint, reported.
func (s Instrumented) Checkpoint(ctx context.Context, podUID, container string, until time.Time, bytes int64) error {
	return s.report("Checkpoint", s.Store.Checkpoint(ctx, podUID, container, until, bytes))
}

// Prune is Store.Prune, reported.
func (s Instrumented) Prune(ctx context.Context, req history.PruneRequest) (history.PruneResult, error) {
	res, err := s.Store.Prune(ctx, req)
	return res, s.report("Prune", err)
}
