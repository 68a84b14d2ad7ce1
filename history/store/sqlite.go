package store

import (
	"github.com/flowforge/flowforge/history"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	_ "modernc.org/sqlite" // registers the pure-Go "sqlite" driver
)

const schema = `
CREATE TABLE IF NOT EXISTS jobs (
	uid TEXT PRIMARY KEY,
	job_id TEXT NOT NULL,
	namespace TEXT NOT NULL,
	name TEXT NOT NULL,
	user_id TEXT NOT NULL DEFAULT '',
	repository TEXT NOT NULL DEFAULT '',
	branch TEXT NOT NULL DEFAULT '',
	template TEXT NOT NULL DEFAULT '',
	profile TEXT NOT NULL DEFAULT '',
	policy_revision TEXT NOT NULL DEFAULT '',
	status TEXT NOT NULL,
	reason TEXT NOT NULL DEFAULT '',
	message TEXT NOT NULL DEFAULT '',
	cancelled_by TEXT NOT NULL DEFAULT '',
	created_at INTEGER NOT NULL,
	started_at INTEGER,
	finished_at INTEGER,
	exported_at INTEGER,
	events TEXT NOT NULL DEFAULT '[]'
);
CREATE INDEX IF NOT EXISTS jobs_by_id ON jobs (job_id, created_at);
CREATE INDEX IF NOT EXISTS jobs_by_user ON jobs (user_id, created_at);
CREATE INDEX IF NOT EXISTS jobs_by_created ON jobs (created_at);
CREATE TABLE IF NOT EXISTS attempts (
	pod_uid TEXT PRIMARY KEY,
	job_uid TEXT NOT NULL,
	number INTEGER NOT NULL,
	pod TEXT NOT NULL,
	node TEXT NOT NULL DEFAULT '',
	phase TEXT NOT NULL DEFAULT '',
	started_at INTEGER,
	finished_at INTEGER,
	exit_code INTEGER,
	reason TEXT NOT NULL DEFAULT '',
	counted INTEGER
);
CREATE INDEX IF NOT EXISTS attempts_by_job ON attempts (job_uid, number);
CREATE TABLE IF NOT EXISTS log_archives (
	pod_uid TEXT NOT NULL,
	container TEXT NOT NULL,
	job_uid TEXT NOT NULL,
	attempt INTEGER NOT NULL,
	pod TEXT NOT NULL,
	data BLOB NOT NULL,
	size INTEGER NOT NULL,
	truncated INTEGER NOT NULL,
	PRIMARY KEY (pod_uid, container)
);
CREATE INDEX IF NOT EXISTS log_archives_by_job ON log_archives (job_uid, attempt);
CREATE TABLE IF NOT EXISTS log_checkpoints (
	pod_uid TEXT NOT NULL,
	container TEXT NOT NULL,
	shipped_until TEXT NOT NULL,
	bytes INTEGER NOT NULL,
	PRIMARY KEY (pod_uid, container)
);
CREATE TABLE IF NOT EXISTS marks (
	uid TEXT NOT NULL,
	fact TEXT NOT NULL,
	PRIMARY KEY (uid, fact)
);
`

// SQLite is the default Store.
type SQLite struct {
	db *sql.DB
}

var _ history.Store = (*SQLite)(nil)

// OpenSQLite opens (creating if needed) the database at path. ":memory:"
// gives a private in-memory database.
func OpenSQLite(ctx context.Context, path string) (*SQLite, error) {
	dsn := "file::memory:"
	if path != ":memory:" {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			return nil, fmt.Errorf("history: create directory for %s: %w", path, err)
		}
		dsn = "file:" + path
	}
	dsn += "?_pragma=journal_mode(WAL)&_pragma=busy_timeout(10000)&_pragma=synchronous(NORMAL)"
	db, err := sql.Open("sqlite", dsn)
	if err != nil {
		return nil, fmt.Errorf("history: open %s: %w", path, err)
	}
	// One connection serialises writes, which SQLite does anyway, and keeps
	// an in-memory database a single database.
	db.SetMaxOpenConns(1)
	if _, err := db.ExecContext(ctx, schema); err != nil {
		db.Close() //nolint:errcheck,gosec // reporting the schema error
		return nil, fmt.Errorf("history: create schema in %s: %w", path, err)
	}
	return &SQLite{db: db}, nil
}

// Close closes the database.
func (s *SQLite) Close() error { return s.db.Close() }

func ms(t *time.Time) any {
	if t == nil || t.IsZero() {
		return nil
	}
	return t.UnixMilli()
}

func fromMS(v sql.NullInt64) *time.Time {
	if !v.Valid {
		return nil
	}
	t := time.UnixMilli(v.Int64).UTC()
	return &t
}

// UpsertJob creates or updates a Job record. Fields that are set once
// (started, finished, exported) are never cleared by a later upsert.
func (s *SQLite) UpsertJob(ctx context.Context, j history.Job) error {
	_, err := s.db.ExecContext(ctx, `
INSERT INTO jobs (uid, job_id, namespace, name, user_id, repository, branch, template, profile, policy_revision,
	status, reason, message, cancelled_by, created_at, started_at, finished_at)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
ON CONFLICT (uid) DO UPDATE SET
	status = excluded.status,
	reason = excluded.reason,
	message = excluded.message,
	cancelled_by = excluded.cancelled_by,
	policy_revision = CASE WHEN excluded.policy_revision != '' THEN excluded.policy_revision ELSE jobs.policy_revision END,
	started_at = COALESCE(jobs.started_at, excluded.started_at),
	finished_at = COALESCE(jobs.finished_at, excluded.finished_at)`,
		j.UID, j.ID, j.Namespace, j.Name, j.User, j.Repository, j.Branch, j.Template, j.Profile, j.PolicyRevision,
		j.Status, j.Reason, j.Message, j.CancelledBy, j.Created.UnixMilli(), ms(j.Started), ms(j.Finished))
	if err != nil {
		return fmt.Errorf("history: upsert job %s: %w", j.ID, err)
	}
	return nil
}

// SetEvents replaces the exported events of a Job.
func (s *SQLite) SetEvents(ctx context.Context, jobUID string, events []history.Event) error {
	data, err := json.Marshal(events)
	if err != nil {
		return fmt.Errorf("history: encode events: %w", err)
	}
	if _, err := s.db.ExecContext(ctx, `UPDATE jobs SET events = ? WHERE uid = ?`, string(data), jobUID); err != nil {
		return fmt.Errorf("history: store events of %s: %w", jobUID, err)
	}
	return nil
}

// UpsertAttempt creates or updates an attempt.
func (s *SQLite) UpsertAttempt(ctx context.Context, a history.Attempt) (bool, error) {
	var exit, counted any
	if a.ExitCode != nil {
		exit = *a.ExitCode
	}
	if a.Counted != nil {
		counted = *a.Counted
	}
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return false, fmt.Errorf("history: begin: %w", err)
	}
	defer tx.Rollback() //nolint:errcheck // no-op after commit
	var existing int
	if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM attempts WHERE pod_uid = ?`, a.PodUID).Scan(&existing); err != nil {
		return false, fmt.Errorf("history: read attempt %s: %w", a.Pod, err)
	}
	_, err = tx.ExecContext(ctx, `
INSERT INTO attempts (pod_uid, job_uid, number, pod, node, phase, started_at, finished_at, exit_code, reason, counted)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
ON CONFLICT (pod_uid) DO UPDATE SET
	number = excluded.number,
	node = CASE WHEN excluded.node != '' THEN excluded.node ELSE attempts.node END,
	phase = excluded.phase,
	started_at = COALESCE(attempts.started_at, excluded.started_at),
	finished_at = COALESCE(attempts.finished_at, excluded.finished_at),
	exit_code = COALESCE(attempts.exit_code, excluded.exit_code),
	reason = CASE WHEN excluded.reason != '' THEN excluded.reason ELSE attempts.reason END,
	counted = COALESCE(attempts.counted, excluded.counted)`,
		a.PodUID, a.JobUID, a.Number, a.Pod, a.Node, a.Phase, ms(a.Started), ms(a.Finished), exit, a.Reason, counted)
	if err != nil {
		return false, fmt.Errorf("history: upsert attempt %s: %w", a.Pod, err)
	}
	if err := tx.Commit(); err != nil {
		return false, fmt.Errorf("history: commit attempt %s: %w", a.Pod, err)
	}
	return existing == 0, nil
}

// PutLogArchive stores a container's log archive.
func (s *SQLite) PutLogArchive(ctx context.Context, a history.LogArchive) error {
	_, err := s.db.ExecContext(ctx, `
INSERT INTO log_archives (pod_uid, container, job_uid, attempt, pod, data, size, truncated)
VALUES (?, ?, ?, ?, ?, ?, ?, ?)
ON CONFLICT (pod_uid, container) DO UPDATE SET data = excluded.data, size = excluded.size, truncated = excluded.truncated`,
		a.PodUID, a.Container, a.JobUID, a.Attempt, a.Pod, a.Gzip, a.Size, a.Truncated)
	if err != nil {
		return fmt.Errorf("history: store logs of %s/%s: %w", a.Pod, a.Container, err)
	}
	return nil
}

// HasLogArchive reports whether an archive exists.
func (s *SQLite) HasLogArchive(ctx context.Context, podUID, container string) (bool, error) {
	var n int
	if err := s.db.QueryRowContext(ctx, `SELECT COUNT(*) FROM log_archives WHERE pod_uid = ? AND container = ?`, podUID, container).Scan(&n); err != nil {
		return false, fmt.Errorf("history: read log archive: %w", err)
	}
	return n > 0, nil
}

// MarkExported records the export time once.
func (s *SQLite) MarkExported(ctx context.Context, jobUID string, at time.Time) (bool, error) {
	res, err := s.db.ExecContext(ctx, `UPDATE jobs SET exported_at = ? WHERE uid = ? AND exported_at IS NULL`, at.UnixMilli(), jobUID)
	if err != nil {
		return false, fmt.Errorf("history: mark %s exported: %w", jobUID, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return false, fmt.Errorf("history: mark %s exported: %w", jobUID, err)
	}
	return n == 1, nil
}

// Mark records a one-time fact.
func (s *SQLite) Mark(ctx context.Context, uid, fact string) (bool, error) {
	res, err := s.db.ExecContext(ctx, `INSERT OR IGNORE INTO marks (uid, fact) VALUES (?, ?)`, uid, fact)
	if err != nil {
		return false, fmt.Errorf("history: mark %s %s: %w", uid, fact, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return false, fmt.Errorf("history: mark %s %s: %w", uid, fact, err)
	}
	return n == 1, nil
}

// Checkpoint records how far a container's log has been shipped.
func (s *SQLite) Checkpoint(ctx context.Context, podUID, container string, until time.Time, bytes int64) error {
	_, err := s.db.ExecContext(ctx, `
INSERT INTO log_checkpoints (pod_uid, container, shipped_until, bytes) VALUES (?, ?, ?, ?)
ON CONFLICT (pod_uid, container) DO UPDATE SET shipped_until = excluded.shipped_until, bytes = excluded.bytes`,
		podUID, container, until.UTC().Format(time.RFC3339Nano), bytes)
	if err != nil {
		return fmt.Errorf("history: checkpoint %s/%s: %w", podUID, container, err)
	}
	return nil
}

// Shipped returns the checkpoint of a container's log (zero if none).
func (s *SQLite) Shipped(ctx context.Context, podUID, container string) (time.Time, int64, error) {
	var until string
	var bytes int64
	err := s.db.QueryRowContext(ctx, `SELECT shipped_until, bytes FROM log_checkpoints WHERE pod_uid = ? AND container = ?`, podUID, container).Scan(&until, &bytes)
	if errors.Is(err, sql.ErrNoRows) {
		return time.Time{}, 0, nil
	}
	if err != nil {
		return time.Time{}, 0, fmt.Errorf("history: read checkpoint: %w", err)
	}
	t, err := time.Parse(time.RFC3339Nano, until)
	if err != nil {
		return time.Time{}, 0, fmt.Errorf("history: bad checkpoint %q: %w", until, err)
	}
	return t, bytes, nil
}

const jobColumns = `uid, job_id, namespace, name, user_id, repository, branch, template, profile, policy_revision,
	status, reason, message, cancelled_by, created_at, started_at, finished_at, exported_at, events`

type rowScanner interface{ Scan(dest ...any) error }

func scanJob(r rowScanner) (*history.Job, error) {
	var j history.Job
	var created int64
	var started, finished, exported sql.NullInt64
	var events string
	if err := r.Scan(&j.UID, &j.ID, &j.Namespace, &j.Name, &j.User, &j.Repository, &j.Branch, &j.Template, &j.Profile,
		&j.PolicyRevision, &j.Status, &j.Reason, &j.Message, &j.CancelledBy, &created, &started, &finished, &exported, &events); err != nil {
		return nil, err
	}
	j.Created = time.UnixMilli(created).UTC()
	j.Started, j.Finished, j.Exported = fromMS(started), fromMS(finished), fromMS(exported)
	if err := json.Unmarshal([]byte(events), &j.Events); err != nil {
		return nil, fmt.Errorf("history: decode events of %s: %w", j.ID, err)
	}
	return &j, nil
}

// Job returns the newest record for a job id, with attempts and events.
func (s *SQLite) Job(ctx context.Context, id string) (*history.Job, error) {
	return s.oneJob(ctx, `SELECT `+jobColumns+` FROM jobs WHERE job_id = ? ORDER BY created_at DESC LIMIT 1`, id)
}

// JobByUID returns a record by UID, with attempts and events.
func (s *SQLite) JobByUID(ctx context.Context, uid string) (*history.Job, error) {
	return s.oneJob(ctx, `SELECT `+jobColumns+` FROM jobs WHERE uid = ?`, uid)
}

func (s *SQLite) oneJob(ctx context.Context, query, arg string) (*history.Job, error) {
	j, err := scanJob(s.db.QueryRowContext(ctx, query, arg))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("history: job %q: %w", arg, history.ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("history: read job %q: %w", arg, err)
	}
	if j.Attempts, err = s.attempts(ctx, j.UID); err != nil {
		return nil, err
	}
	return j, nil
}

func (s *SQLite) attempts(ctx context.Context, jobUID string) ([]history.Attempt, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT pod_uid, job_uid, number, pod, node, phase, started_at, finished_at, exit_code, reason, counted
FROM attempts WHERE job_uid = ? ORDER BY number`, jobUID)
	if err != nil {
		return nil, fmt.Errorf("history: read attempts: %w", err)
	}
	defer rows.Close() //nolint:errcheck // read-only
	var out []history.Attempt
	for rows.Next() {
		var a history.Attempt
		var started, finished sql.NullInt64
		var exit sql.NullInt32
		var counted sql.NullBool
		if err := rows.Scan(&a.PodUID, &a.JobUID, &a.Number, &a.Pod, &a.Node, &a.Phase, &started, &finished, &exit, &a.Reason, &counted); err != nil {
			return nil, fmt.Errorf("history: read attempt: %w", err)
		}
		a.Started, a.Finished = fromMS(started), fromMS(finished)
		if exit.Valid {
			a.ExitCode = &exit.Int32
		}
		if counted.Valid {
			a.Counted = &counted.Bool
		}
		out = append(out, a)
	}
	return out, rows.Err()
}

// Jobs lists records, newest first, without attempts and events.
func (s *SQLite) Jobs(ctx context.Context, f history.Filter) ([]history.Job, error) {
	var where []string
	var args []any
	if f.User != "" {
		where, args = append(where, "user_id = ?"), append(args, f.User)
	}
	if f.Status != "" {
		where, args = append(where, "status = ?"), append(args, f.Status)
	}
	if !f.Since.IsZero() {
		where, args = append(where, "created_at >= ?"), append(args, f.Since.UnixMilli())
	}
	query := `SELECT ` + jobColumns + ` FROM jobs`
	if len(where) > 0 {
		query += " WHERE " + strings.Join(where, " AND ")
	}
	query += " ORDER BY created_at DESC, job_id"
	if f.Limit > 0 {
		query += fmt.Sprintf(" LIMIT %d", f.Limit)
	}
	rows, err := s.db.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, fmt.Errorf("history: list jobs: %w", err)
	}
	defer rows.Close() //nolint:errcheck // read-only
	var out []history.Job
	for rows.Next() {
		j, err := scanJob(rows)
		if err != nil {
			return nil, fmt.Errorf("history: list jobs: %w", err)
		}
		j.Events = nil
		out = append(out, *j)
	}
	return out, rows.Err()
}

// LogArchives returns a Job's archives by attempt, then container.
func (s *SQLite) LogArchives(ctx context.Context, jobUID string) ([]history.LogArchive, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT pod_uid, job_uid, attempt, pod, container, data, size, truncated
FROM log_archives WHERE job_uid = ? ORDER BY attempt, container`, jobUID)
	if err != nil {
		return nil, fmt.Errorf("history: read log archives: %w", err)
	}
	defer rows.Close() //nolint:errcheck // read-only
	var out []history.LogArchive
	for rows.Next() {
		var a history.LogArchive
		if err := rows.Scan(&a.PodUID, &a.JobUID, &a.Attempt, &a.Pod, &a.Container, &a.Gzip, &a.Size, &a.Truncated); err != nil {
			return nil, fmt.Errorf("history: read log archive: %w", err)
		}
		out = append(out, a)
	}
	return out, rows.Err()
}
