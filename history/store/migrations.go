package store

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"time"
)

// migration is one versioned change of the schema, in each dialect. A
// migration is applied once, in its own transaction, and recorded in
// schema_migrations; the statements are separated by ";\n".
//
// Rules (docs/operations.md, "Schema migrations"): never edit a released
// migration, append a new one; keep each additive (new tables, columns
// with defaults, indexes) so that a replica still running the previous
// version keeps working during a rolling update.
type migration struct {
	version  int
	name     string
	sqlite   string
	postgres string
}

// migrations are the schema's history, oldest first. Version 1 is the
// schema FlowForge shipped before migrations were versioned: its
// statements are idempotent (IF NOT EXISTS), so a store written before
// versioning is adopted as version 1 and then upgraded.
var migrations = []migration{
	{
		version: 1,
		name:    "initial schema",
		sqlite:  schemaV1SQLite,
		postgres: `
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
	created_at BIGINT NOT NULL,
	started_at BIGINT,
	finished_at BIGINT,
	exported_at BIGINT,
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
	started_at BIGINT,
	finished_at BIGINT,
	exit_code INTEGER,
	reason TEXT NOT NULL DEFAULT '',
	counted BOOLEAN
);
CREATE INDEX IF NOT EXISTS attempts_by_job ON attempts (job_uid, number);
CREATE TABLE IF NOT EXISTS log_archives (
	pod_uid TEXT NOT NULL,
	container TEXT NOT NULL,
	job_uid TEXT NOT NULL,
	attempt INTEGER NOT NULL,
	pod TEXT NOT NULL,
	data BYTEA NOT NULL,
	size BIGINT NOT NULL,
	truncated BOOLEAN NOT NULL,
	PRIMARY KEY (pod_uid, container)
);
CREATE INDEX IF NOT EXISTS log_archives_by_job ON log_archives (job_uid, attempt);
CREATE TABLE IF NOT EXISTS log_checkpoints (
	pod_uid TEXT NOT NULL,
	container TEXT NOT NULL,
	shipped_until TEXT NOT NULL,
	bytes BIGINT NOT NULL,
	PRIMARY KEY (pod_uid, container)
);
CREATE TABLE IF NOT EXISTS marks (
	uid TEXT NOT NULL,
	fact TEXT NOT NULL,
	PRIMARY KEY (uid, fact)
)`,
	},
	{
		version: 2,
		name:    "retention and keyset pagination",
		// stored_bytes keeps each archive's size, so that the retention's
		// size sum reads no blob; logs_pruned_at records archives removed
		// by the size cap. The indexes serve the list filters (user,
		// status, namespace and the aggregated API's namespaced lists by
		// user or status) in keyset order (created_at, uid), and the
		// prune's oldest-first scans.
		sqlite: `
ALTER TABLE log_archives ADD COLUMN stored_bytes INTEGER NOT NULL DEFAULT 0;
UPDATE log_archives SET stored_bytes = length(data);
ALTER TABLE jobs ADD COLUMN logs_pruned_at INTEGER;
DROP INDEX IF EXISTS jobs_by_user;
DROP INDEX IF EXISTS jobs_by_created;
CREATE INDEX jobs_by_created ON jobs (created_at, uid);
CREATE INDEX jobs_by_user ON jobs (user_id, created_at, uid);
CREATE INDEX jobs_by_user_status ON jobs (user_id, status, created_at, uid);
CREATE INDEX jobs_by_status ON jobs (status, created_at, uid);
CREATE INDEX jobs_by_namespace ON jobs (namespace, created_at, uid);
CREATE INDEX jobs_by_namespace_user ON jobs (namespace, user_id, created_at, uid);
CREATE INDEX jobs_by_namespace_status ON jobs (namespace, status, created_at, uid);
CREATE INDEX jobs_by_logs_pruned ON jobs (logs_pruned_at, created_at, uid)`,
		postgres: `
ALTER TABLE log_archives ADD COLUMN stored_bytes BIGINT NOT NULL DEFAULT 0;
UPDATE log_archives SET stored_bytes = octet_length(data);
ALTER TABLE jobs ADD COLUMN logs_pruned_at BIGINT;
DROP INDEX IF EXISTS jobs_by_user;
DROP INDEX IF EXISTS jobs_by_created;
CREATE INDEX jobs_by_created ON jobs (created_at, uid);
CREATE INDEX jobs_by_user ON jobs (user_id, created_at, uid);
CREATE INDEX jobs_by_user_status ON jobs (user_id, status, created_at, uid);
CREATE INDEX jobs_by_status ON jobs (status, created_at, uid);
CREATE INDEX jobs_by_namespace ON jobs (namespace, created_at, uid);
CREATE INDEX jobs_by_namespace_user ON jobs (namespace, user_id, created_at, uid);
CREATE INDEX jobs_by_namespace_status ON jobs (namespace, status, created_at, uid);
CREATE INDEX jobs_by_logs_pruned ON jobs (logs_pruned_at, created_at, uid)`,
	},
	{
		version: 3,
		name:    "peak resource usage of attempts",
		// Each attempt's highest CPU (millicores) and memory working set
		// (bytes), sampled from metrics.k8s.io while it ran; 0 means not
		// measured, which is also what attempts written before say.
		sqlite: `
ALTER TABLE attempts ADD COLUMN peak_cpu_millicores INTEGER NOT NULL DEFAULT 0;
ALTER TABLE attempts ADD COLUMN peak_memory_bytes INTEGER NOT NULL DEFAULT 0`,
		postgres: `
ALTER TABLE attempts ADD COLUMN peak_cpu_millicores BIGINT NOT NULL DEFAULT 0;
ALTER TABLE attempts ADD COLUMN peak_memory_bytes BIGINT NOT NULL DEFAULT 0`,
	},
}

// schemaV1SQLite is the SQLite schema before versioning (version 1).
const schemaV1SQLite = `
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
)`

// SchemaVersion is the schema version this build writes.
func SchemaVersion() int { return migrations[len(migrations)-1].version }

// migrate brings the schema up to version target (SchemaVersion() for the
// real thing; tests stop earlier to write an old store). Each migration
// runs in its own transaction, under the dialect's lock (a Postgres
// advisory lock, so that replicas starting together apply it once), and
// re-reads the version inside it. A store newer than this build is
// refused: its schema may mean what this build cannot know.
func migrate(ctx context.Context, db *sql.DB, d dialect, target int, now time.Time) error {
	if err := createMigrationsTable(ctx, db, d); err != nil {
		return fmt.Errorf("history: create schema_migrations: %w", err)
	}
	current, err := schemaVersion(ctx, db)
	if err != nil {
		return err
	}
	if latest := SchemaVersion(); current > latest {
		return fmt.Errorf("history: the store's schema is version %d, newer than this controller's %d: run a controller at least as new, or restore a backup taken before the upgrade", current, latest)
	}
	for _, m := range migrations {
		if m.version > target {
			break
		}
		if err := applyMigration(ctx, db, d, m, now); err != nil {
			return fmt.Errorf("history: migrate to schema version %d (%s): %w", m.version, m.name, err)
		}
	}
	return nil
}

// createMigrationsTable creates schema_migrations under the migration lock:
// Postgres's CREATE TABLE IF NOT EXISTS is not safe against itself, and two
// controller replicas starting together against one database both ran it
// (one failed on pg_type_typname_nsp_index).
func createMigrationsTable(ctx context.Context, db *sql.DB, d dialect) error {
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback() //nolint:errcheck // no-op after commit
	if d.lock != "" {
		if _, err := tx.ExecContext(ctx, d.lock); err != nil {
			return fmt.Errorf("lock: %w", err)
		}
	}
	if _, err := tx.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
	version INTEGER PRIMARY KEY,
	name TEXT NOT NULL,
	applied_at BIGINT NOT NULL
)`); err != nil {
		return err
	}
	return tx.Commit()
}

func schemaVersion(ctx context.Context, q interface {
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}) (int, error) {
	var v sql.NullInt64
	if err := q.QueryRowContext(ctx, `SELECT MAX(version) FROM schema_migrations`).Scan(&v); err != nil {
		return 0, fmt.Errorf("history: read schema version: %w", err)
	}
	return int(v.Int64), nil
}

func applyMigration(ctx context.Context, db *sql.DB, d dialect, m migration, now time.Time) error {
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback() //nolint:errcheck // no-op after commit
	if d.lock != "" {
		if _, err := tx.ExecContext(ctx, d.lock); err != nil {
			return fmt.Errorf("lock: %w", err)
		}
	}
	current, err := schemaVersion(ctx, tx)
	if err != nil {
		return err
	}
	if current >= m.version {
		return nil
	}
	ddl := m.sqlite
	if d.name == "postgres" {
		ddl = m.postgres
	}
	for _, stmt := range strings.Split(ddl, ";\n") {
		if strings.TrimSpace(stmt) == "" {
			continue
		}
		if _, err := tx.ExecContext(ctx, stmt); err != nil {
			return err
		}
	}
	if _, err := tx.ExecContext(ctx, d.rebind(`INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)`), m.version, m.name, now.UnixMilli()); err != nil {
		return err
	}
	return tx.Commit()
}
