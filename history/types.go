package history

import (
	"context"
	"errors"
	"time"
)

// ErrNotFound is returned when a record does not exist.
var ErrNotFound = errors.New("not found")

// Status values of a Job record.
const (
	StatusPending   = "Pending"
	StatusRunning   = "Running"
	StatusSucceeded = "Succeeded"
	StatusFailed    = "Failed"
	StatusTimedOut  = "TimedOut"
	StatusCancelled = "Cancelled"
)

// Job is the record of one agent Job.
type Job struct {
	UID            string     `json:"uid"`
	ID             string     `json:"id"`
	Namespace      string     `json:"namespace"`
	Name           string     `json:"name"`
	User           string     `json:"user"`
	Repository     string     `json:"repository,omitempty"`
	Branch         string     `json:"branch,omitempty"`
	Template       string     `json:"template,omitempty"`
	Profile        string     `json:"profile,omitempty"`
	PolicyRevision string     `json:"policyRevision,omitempty"`
	Status         string     `json:"status"`
	Reason         string     `json:"reason,omitempty"`
	Message        string     `json:"message,omitempty"`
	CancelledBy    string     `json:"cancelledBy,omitempty"`
	Created        time.Time  `json:"created"`
	Started        *time.Time `json:"started,omitempty"`
	Finished       *time.Time `json:"finished,omitempty"`
	Exported       *time.Time `json:"exported,omitempty"`
	Events         []Event    `json:"events,omitempty"`
	Attempts       []Attempt  `json:"attempts,omitempty"`
}

// Attempt is one pod of a Job.
type Attempt struct {
	PodUID   string     `json:"podUID"`
	JobUID   string     `json:"jobUID"`
	Number   int        `json:"number"`
	Pod      string     `json:"pod"`
	Node     string     `json:"node,omitempty"`
	Phase    string     `json:"phase"`
	Started  *time.Time `json:"started,omitempty"`
	Finished *time.Time `json:"finished,omitempty"`
	ExitCode *int32     `json:"exitCode,omitempty"`
	Reason   string     `json:"reason,omitempty"`
	// Counted tells whether the Job's podFailurePolicy counted this failed
	// attempt towards backoffLimit (nil while the attempt has not failed).
	Counted *bool `json:"countedByPodFailurePolicy,omitempty"`
}

// Event is a Kubernetes event about a Job or its pods, as exported.
type Event struct {
	Time    time.Time `json:"time"`
	Type    string    `json:"type"`
	Reason  string    `json:"reason"`
	Object  string    `json:"object"`
	Message string    `json:"message"`
}

// LogArchive is the compressed output of one container of one attempt.
type LogArchive struct {
	PodUID    string `json:"podUID"`
	JobUID    string `json:"jobUID"`
	Attempt   int    `json:"attempt"`
	Pod       string `json:"pod"`
	Container string `json:"container"`
	// Gzip is the gzip-compressed log text.
	Gzip []byte `json:"-"`
	// Size is the uncompressed size kept; Truncated marks an archive cut at the cap.
	Size      int64 `json:"size"`
	Truncated bool  `json:"truncated"`
}

// Filter selects Job records.
type Filter struct {
	User   string
	Status string
	Since  time.Time
	Limit  int
}

// Store keeps the execution history.
type Store interface {
	// UpsertJob creates or updates a Job record (not its attempts or events).
	UpsertJob(ctx context.Context, j Job) error
	// SetEvents replaces the exported events of a Job.
	SetEvents(ctx context.Context, jobUID string, events []Event) error
	// UpsertAttempt creates or updates an attempt; created is true the first time.
	UpsertAttempt(ctx context.Context, a Attempt) (created bool, err error)
	// PutLogArchive stores (or replaces) a container's log archive.
	PutLogArchive(ctx context.Context, a LogArchive) error
	// HasLogArchive reports whether a container's log archive is stored.
	HasLogArchive(ctx context.Context, podUID, container string) (bool, error)
	// MarkExported records the export time; first is true only the first time.
	MarkExported(ctx context.Context, jobUID string, at time.Time) (first bool, err error)
	// Mark records a one-time fact about an object; first is true only once.
	Mark(ctx context.Context, uid, fact string) (first bool, err error)
	// Checkpoint and Shipped record how far a container's log has been shipped.
	Checkpoint(ctx context.Context, podUID, container string, until time.Time, bytes int64) error
	Shipped(ctx context.Context, podUID, container string) (until time.Time, bytes int64, err error)

	// Job returns the latest record for a job id (with attempts and events).
	Job(ctx context.Context, id string) (*Job, error)
	// JobByUID returns a record by Kubernetes UID.
	JobByUID(ctx context.Context, uid string) (*Job, error)
	// Jobs lists records, newest first.
	Jobs(ctx context.Context, f Filter) ([]Job, error)
	// LogArchives returns the archives of a Job, by attempt then container.
	LogArchives(ctx context.Context, jobUID string) ([]LogArchive, error)

	Close() error
}
