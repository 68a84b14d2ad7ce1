package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/flowforge/flowforge/history"
)

// dialect is what differs between the SQL databases: the schema (see
// migrations), placeholders, the migration lock and how big the store is.
type dialect struct {
	name string
	// dollar numbers placeholders $1, $2... (Postgres) instead of ?.
	dollar bool
	// lock is run first in each migration's transaction ("" for none).
	lock string
	// size returns the space the store takes.
	size func(ctx context.Context, db *sql.DB) (int64, error)
}

// rebind turns the ? placeholders of a query into the dialect's.
func (d dialect) rebind(query string) string {
	if !d.dollar {
		return query
	}
	var b strings.Builder
	n := 0
	for _, r := range query {
		if r == '?' {
			n++
			b.WriteByte('$')
			b.WriteString(strconv.Itoa(n))
			continue
		}
		b.WriteRune(r)
	}
	return b.String()
}

// sqlStore is history.Store over database/sql: the same statements run on
// SQLite and Postgres (ON CONFLICT upserts, row values), so both stores
// have the same semantics by construction.
type sqlStore struct {
	db *sql.DB
	d  dialect
}

func (s *sqlStore) exec(ctx context.Context, query string, args ...any) (sql.Result, error) {
	return s.db.ExecContext(ctx, s.d.rebind(query), args...)
}

func (s *sqlStore) queryRow(ctx context.Context, query string, args ...any) *sql.Row {
	return s.db.QueryRowContext(ctx, s.d.rebind(query), args...)
}

func (s *sqlStore) query(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	return s.db.QueryContext(ctx, s.d.rebind(query), args...)
}

// Close closes the database.
func (s *sqlStore) Close() error { return s.db.Close() }

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
func (s *sqlStore) UpsertJob(ctx context.Context, j history.Job) error {
	_, err := s.exec(ctx, `
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
func (s *sqlStore) SetEvents(ctx context.Context, jobUID string, events []history.Event) error {
	data, err := json.Marshal(events)
	if err != nil {
		return fmt.Errorf("history: encode events: %w", err)
	}
	if _, err := s.exec(ctx, `UPDATE jobs SET events = ? WHERE uid = ?`, string(data), jobUID); err != nil {
		return fmt.Errorf("history: store events of %s: %w", jobUID, err)
	}
	return nil
}

// UpsertAttempt creates or updates an attempt.
func (s *sqlStore) UpsertAttempt(ctx context.Context, a history.Attempt) (bool, error) {
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
	if err := tx.QueryRowContext(ctx, s.d.rebind(`SELECT COUNT(*) FROM attempts WHERE pod_uid = ?`), a.PodUID).Scan(&existing); err != nil {
		return false, fmt.Errorf("history: read attempt %s: %w", a.Pod, err)
	}
	_, err = tx.ExecContext(ctx, s.d.rebind(`
INSERT INTO attempts (pod_uid, job_uid, number, pod, node, phase, started_at, finished_at, exit_code, reason, counted, peak_cpu_millicores, peak_memory_bytes)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
ON CONFLICT (pod_uid) DO UPDATE SET
	number = excluded.number,
	node = CASE WHEN excluded.node != '' THEN excluded.node ELSE attempts.node END,
	phase = excluded.phase,
	started_at = COALESCE(attempts.started_at, excluded.started_at),
	finished_at = COALESCE(attempts.finished_at, excluded.finished_at),
	exit_code = COALESCE(attempts.exit_code, excluded.exit_code),
	reason = CASE WHEN excluded.reason != '' THEN excluded.reason ELSE attempts.reason END,
	counted = COALESCE(attempts.counted, excluded.counted),
	peak_cpu_millicores = CASE WHEN excluded.peak_cpu_millicores > attempts.peak_cpu_millicores THEN excluded.peak_cpu_millicores ELSE attempts.peak_cpu_millicores END,
	peak_memory_bytes = CASE WHEN excluded.peak_memory_bytes > attempts.peak_memory_bytes THEN excluded.peak_memory_bytes ELSE attempts.peak_memory_bytes END`),
		a.PodUID, a.JobUID, a.Number, a.Pod, a.Node, a.Phase, ms(a.Started), ms(a.Finished), exit, a.Reason, counted, a.PeakCPUMillicores, a.PeakMemoryBytes)
	if err != nil {
		return false, fmt.Errorf("history: upsert attempt %s: %w", a.Pod, err)
	}
	if err := tx.Commit(); err != nil {
		return false, fmt.Errorf("history: commit attempt %s: %w", a.Pod, err)
	}
	return existing == 0, nil
}

// PutLogArchive stores a container's log archive.
func (s *sqlStore) PutLogArchive(ctx context.Context, a history.LogArchive) error {
	gz := a.Gzip
	if gz == nil {
		gz = []byte{}
	}
	_, err := s.exec(ctx, `
INSERT INTO log_archives (pod_uid, container, job_uid, attempt, pod, data, size, truncated, stored_bytes)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
ON CONFLICT (pod_uid, container) DO UPDATE SET data = excluded.data, size = excluded.size, truncated = excluded.truncated, stored_bytes = excluded.stored_bytes`,
		a.PodUID, a.Container, a.JobUID, a.Attempt, a.Pod, gz, a.Size, a.Truncated, int64(len(gz)))
	if err != nil {
		return fmt.Errorf("history: store logs of %s/%s: %w", a.Pod, a.Container, err)
	}
	return nil
}

// HasLogArchive reports whether an archive exists.
func (s *sqlStore) HasLogArchive(ctx context.Context, podUID, container string) (bool, error) {
	var n int
	if err := s.queryRow(ctx, `SELECT COUNT(*) FROM log_archives WHERE pod_uid = ? AND container = ?`, podUID, container).Scan(&n); err != nil {
		return false, fmt.Errorf("history: read log archive: %w", err)
	}
	return n > 0, nil
}

// MarkExported records the export time once.
func (s *sqlStore) MarkExported(ctx context.Context, jobUID string, at time.Time) (bool, error) {
	res, err := s.exec(ctx, `UPDATE jobs SET exported_at = ? WHERE uid = ? AND exported_at IS NULL`, at.UnixMilli(), jobUID)
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
func (s *sqlStore) Mark(ctx context.Context, uid, fact string) (bool, error) {
	res, err := s.exec(ctx, `INSERT INTO marks (uid, fact) VALUES (?, ?) ON CONFLICT DO NOTHING`, uid, fact)
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
func (s *sqlStore) Checkpoint(ctx context.Context, podUID, container string, until time.Time, bytes int64) error {
	_, err := s.exec(ctx, `
INSERT INTO log_checkpoints (pod_uid, container, shipped_until, bytes) VALUES (?, ?, ?, ?)
ON CONFLICT (pod_uid, container) DO UPDATE SET shipped_until = excluded.shipped_until, bytes = excluded.bytes`,
		podUID, container, until.UTC().Format(time.RFC3339Nano), bytes)
	if err != nil {
		return fmt.Errorf("history: checkpoint %s/%s: %w", podUID, container, err)
	}
	return nil
}

// Shipped returns the checkpoint of a container's log (zero if none).
func (s *sqlStore) Shipped(ctx context.Context, podUID, container string) (time.Time, int64, error) {
	var until string
	var bytes int64
	err := s.queryRow(ctx, `SELECT shipped_until, bytes FROM log_checkpoints WHERE pod_uid = ? AND container = ?`, podUID, container).Scan(&until, &bytes)
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

// jobColumns are a record's columns; listColumns leave the events out
// (a list does not return them, and they are most of a record's size).
const (
	jobColumns = `uid, job_id, namespace, name, user_id, repository, branch, template, profile, policy_revision,
	status, reason, message, cancelled_by, created_at, started_at, finished_at, exported_at, logs_pruned_at, events`
	listColumns = `uid, job_id, namespace, name, user_id, repository, branch, template, profile, policy_revision,
	status, reason, message, cancelled_by, created_at, started_at, finished_at, exported_at, logs_pruned_at, '[]'`
)

type rowScanner interface{ Scan(dest ...any) error }

func scanJob(r rowScanner) (*history.Job, error) {
	var j history.Job
	var created int64
	var started, finished, exported, pruned sql.NullInt64
	var events string
	if err := r.Scan(&j.UID, &j.ID, &j.Namespace, &j.Name, &j.User, &j.Repository, &j.Branch, &j.Template, &j.Profile,
		&j.PolicyRevision, &j.Status, &j.Reason, &j.Message, &j.CancelledBy, &created, &started, &finished, &exported, &pruned, &events); err != nil {
		return nil, err
	}
	j.Created = time.UnixMilli(created).UTC()
	j.Started, j.Finished, j.Exported, j.LogsPruned = fromMS(started), fromMS(finished), fromMS(exported), fromMS(pruned)
	if events != "[]" {
		if err := json.Unmarshal([]byte(events), &j.Events); err != nil {
			return nil, fmt.Errorf("history: decode events of %s: %w", j.ID, err)
		}
	}
	return &j, nil
}

// Job returns the newest record for a job id, with attempts and events.
func (s *sqlStore) Job(ctx context.Context, id string) (*history.Job, error) {
	return s.oneJob(ctx, `SELECT `+jobColumns+` FROM jobs WHERE job_id = ? ORDER BY created_at DESC LIMIT 1`, id)
}

// JobIn returns the newest record for a job id in a namespace.
func (s *sqlStore) JobIn(ctx context.Context, namespace, id string) (*history.Job, error) {
	return s.oneJob(ctx, `SELECT `+jobColumns+` FROM jobs WHERE job_id = ? AND namespace = ? ORDER BY created_at DESC LIMIT 1`, id, namespace)
}

// JobByUID returns a record by UID, with attempts and events.
func (s *sqlStore) JobByUID(ctx context.Context, uid string) (*history.Job, error) {
	return s.oneJob(ctx, `SELECT `+jobColumns+` FROM jobs WHERE uid = ?`, uid)
}

func (s *sqlStore) oneJob(ctx context.Context, query, arg string, more ...any) (*history.Job, error) {
	j, err := scanJob(s.queryRow(ctx, query, append([]any{arg}, more...)...))
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

func (s *sqlStore) attempts(ctx context.Context, jobUID string) ([]history.Attempt, error) {
	rows, err := s.query(ctx, `SELECT pod_uid, job_uid, number, pod, node, phase, started_at, finished_at, exit_code, reason, counted, peak_cpu_millicores, peak_memory_bytes
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
		if err := rows.Scan(&a.PodUID, &a.JobUID, &a.Number, &a.Pod, &a.Node, &a.Phase, &started, &finished, &exit, &a.Reason, &counted, &a.PeakCPUMillicores, &a.PeakMemoryBytes); err != nil {
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

// Jobs lists records, newest first (by creation, then UID), without
// attempts and events, one keyset page at a time (see history.Filter).
func (s *sqlStore) Jobs(ctx context.Context, f history.Filter) ([]history.Job, error) {
	var where []string
	var args []any
	if f.Namespace != "" {
		where, args = append(where, "namespace = ?"), append(args, f.Namespace)
	}
	if f.User != "" {
		where, args = append(where, "user_id = ?"), append(args, f.User)
	}
	if f.Status != "" {
		where, args = append(where, "status = ?"), append(args, f.Status)
	}
	if !f.Since.IsZero() {
		where, args = append(where, "created_at >= ?"), append(args, f.Since.UnixMilli())
	}
	if f.Continue != "" {
		created, uid, err := history.ParseContinue(f.Continue)
		if err != nil {
			return nil, fmt.Errorf("history: list jobs: %w", err)
		}
		where, args = append(where, "(created_at, uid) < (?, ?)"), append(args, created, uid)
	}
	if f.Limit < 0 {
		return nil, fmt.Errorf("history: list jobs: negative limit %d", f.Limit)
	}
	query := `SELECT ` + listColumns + ` FROM jobs`
	if len(where) > 0 {
		query += " WHERE " + strings.Join(where, " AND ")
	}
	query += " ORDER BY created_at DESC, uid DESC"
	if f.Limit > 0 {
		query += " LIMIT " + strconv.Itoa(f.Limit)
	}
	rows, err := s.query(ctx, query, args...)
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
		out = append(out, *j)
	}
	return out, rows.Err()
}

// LogArchives returns a Job's archives by attempt, then container.
func (s *sqlStore) LogArchives(ctx context.Context, jobUID string) ([]history.LogArchive, error) {
	rows, err := s.query(ctx, `SELECT pod_uid, job_uid, attempt, pod, container, data, size, truncated
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

// Stats returns the number of records, the archives' size and the store's.
func (s *sqlStore) Stats(ctx context.Context) (history.Stats, error) {
	var st history.Stats
	if err := s.queryRow(ctx, `SELECT COUNT(*) FROM jobs`).Scan(&st.Records); err != nil {
		return st, fmt.Errorf("history: count records: %w", err)
	}
	if err := s.queryRow(ctx, `SELECT COALESCE(SUM(stored_bytes), 0) FROM log_archives`).Scan(&st.ArchiveBytes); err != nil {
		return st, fmt.Errorf("history: sum archive sizes: %w", err)
	}
	size, err := s.d.size(ctx, s.db)
	if err != nil {
		return st, fmt.Errorf("history: store size: %w", err)
	}
	st.StoreBytes = size
	return st, nil
}
