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
	// LogsPruned is when retention removed the Job's log archives to keep
	// the store under its size cap (nil while they are kept).
	LogsPruned *time.Time `json:"logsPruned,omitempty"`
	Events     []Event    `json:"events,omitempty"`
	Attempts   []Attempt  `json:"attempts,omitempty"`
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
	// PeakCPUMillicores and PeakMemoryBytes are the highest CPU use (in
	// millicores) and memory working set (in bytes) of the attempt's
	// containers together, as sampled from metrics.k8s.io while it ran.
	// Zero: not measured (the API is not served, or the attempt ended
	// before a sample).
	PeakCPUMillicores int64 `json:"peakCPUMillicores,omitempty"`
	PeakMemoryBytes   int64 `json:"peakMemoryBytes,omitempty"`
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

// Filter selects Job records. The zero Filter selects every record.
// Records come newest first (by creation time, then UID); a page is Limit
// records, and the next page starts after the last record of the previous
// one: Continue is ContinueAfter(last) (keyset pagination, so a page costs
// the same however deep it is, and records added meanwhile do not shift
// the pages).
type Filter struct {
	User   string
	Status string
	Since  time.Time
	Limit  int
	// Namespace selects the records of Jobs in one namespace.
	Namespace string
	// Continue is the token of the record the page starts after (see
	// ContinueAfter); "" starts at the newest record.
	Continue string
}

// Stats are the size of the store, for metrics and retention.
type Stats struct {
	// Records is the number of Job records.
	Records int64
	// ArchiveBytes is the total size of the stored (compressed) log archives.
	ArchiveBytes int64
	// StoreBytes is the space the store takes: the SQLite files (database
	// and write-ahead log) or the Postgres database.
	StoreBytes int64
}

// PruneRequest says what retention removes. Only records of exported
// Jobs are candidates, oldest first, and Keep may spare more (the
// controller keeps every Job still in the cluster).
type PruneRequest struct {
	// Before removes whole records (Job, attempts, events, log archives,
	// marks, checkpoints) created before it; zero keeps records of any age.
	Before time.Time
	// MaxArchiveBytes removes the log archives of the oldest records until
	// the archives total at most this many bytes (the records stay, with
	// LogsPruned set); zero or less sets no cap.
	MaxArchiveBytes int64
	// Keep spares a Job's record, by UID (nil keeps none).
	Keep func(jobUID string) bool
	// Now is the time LogsPruned records.
	Now time.Time
	// Batch is how many records one pass reads and deletes at a time
	// (default 500): each batch is its own transaction, so readers and the
	// exports are not held up for the whole prune.
	Batch int
}

// PruneResult says what a prune removed.
type PruneResult struct {
	// Records is the number of whole records removed by age; Archives and
	// ArchiveBytes count the log archives removed with them.
	Records      int64
	Archives     int64
	ArchiveBytes int64
	// CapArchives and CapArchiveBytes count the log archives removed to
	// keep the archives under MaxArchiveBytes (their records stay).
	CapArchives     int64
	CapArchiveBytes int64
	// UIDs are the Job UIDs whose records were removed.
	UIDs []string
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
	// JobIn returns the latest record for a job id in one namespace (job
	// ids are unique per namespace, so Job may find another namespace's).
	JobIn(ctx context.Context, namespace, id string) (*Job, error)
	// JobByUID returns a record by Kubernetes UID.
	JobByUID(ctx context.Context, uid string) (*Job, error)
	// Jobs lists records, newest first.
	Jobs(ctx context.Context, f Filter) ([]Job, error)
	// LogArchives returns the archives of a Job, by attempt then container.
	LogArchives(ctx context.Context, jobUID string) ([]LogArchive, error)

	// Stats returns the size of the store.
	Stats(ctx context.Context) (Stats, error)
	// Prune removes old records and archives (see PruneRequest).
	Prune(ctx context.Context, req PruneRequest) (PruneResult, error)

	Close() error
}
