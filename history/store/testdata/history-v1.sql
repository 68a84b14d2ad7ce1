-- A history store as FlowForge wrote it before versioned migrations
-- (schema version 1, no schema_migrations table): the tables of
-- migrations.go's schemaV1SQLite and one exported Job with an attempt,
-- events, a log archive ("hello from v1\n", gzip), a checkpoint and marks.
-- TestMigrateFixture and test/integration/store load it into a new
-- SQLite file and open it with the current controller.
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
INSERT INTO jobs (uid, job_id, namespace, name, user_id, repository, branch, template, profile, policy_revision, status, reason, message, created_at, started_at, finished_at, exported_at, events)
VALUES ('uid-v1', 'v1-job', 'agents', 'claude-job-v1-job', 'alice', 'acme/app', 'main', 'fix-bug', 'standard', 'rev-1', 'Succeeded', 'Completed', 'done', 1764151200000, 1764151201000, 1764151260000, 1764151261000,
 '[{"time":"2025-11-26T10:00:01Z","type":"Normal","reason":"Started","object":"pod/claude-job-v1-job-abcde","message":"Started container worker"}]');
INSERT INTO attempts (pod_uid, job_uid, number, pod, node, phase, started_at, finished_at, exit_code, reason, counted)
VALUES ('pod-v1', 'uid-v1', 1, 'claude-job-v1-job-abcde', 'node-1', 'Succeeded', 1764151201000, 1764151259000, 0, 'Completed', NULL);
INSERT INTO log_archives (pod_uid, container, job_uid, attempt, pod, data, size, truncated)
VALUES ('pod-v1', 'worker', 'uid-v1', 1, 'claude-job-v1-job-abcde', X'1F8B08000000000002FFCB48CDC9C957482BCACF552833E40200804ADD8B0E000000', 14, 0);
INSERT INTO log_checkpoints (pod_uid, container, shipped_until, bytes) VALUES ('pod-v1', 'worker', '2025-11-26T10:00:59.000000001Z', 14);
INSERT INTO marks (uid, fact) VALUES ('uid-v1', 'started'), ('uid-v1', 'finished');
