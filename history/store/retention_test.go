package store

import (
	"context"
	"database/sql"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"k8s.io/utils/ptr"

	"github.com/flowforge/flowforge/history"
)

func TestKeysetPagination(t *testing.T) {
	forEachStore(t, func(t *testing.T, s history.Store) {
		ctx := context.Background()
		// 25 records, several created in the same millisecond, so that the
		// UID breaks ties; every third is bob's, every other one failed.
		var want []string
		for i := range 25 {
			j := job(fmt.Sprintf("uid-%02d", i), fmt.Sprintf("id-%02d", i), "alice", history.StatusSucceeded, t0.Add(time.Duration(i/3)*time.Second))
			if i%3 == 0 {
				j.User = "bob"
			}
			if i%2 == 0 {
				j.Status = history.StatusFailed
			}
			if i%5 == 0 {
				j.Namespace = "other"
			}
			require.NoError(t, s.UpsertJob(ctx, j))
		}
		for i := 24; i >= 0; i-- {
			if i%3 != 0 && i%2 == 0 {
				want = append(want, fmt.Sprintf("id-%02d", i))
			}
		}
		for _, limit := range []int{1, 2, 3, 7, 100} {
			t.Run(fmt.Sprint("limit ", limit), func(t *testing.T) {
				var got []string
				f := history.Filter{User: "alice", Status: history.StatusFailed, Limit: limit}
				for pages := 0; ; pages++ {
					require.Less(t, pages, 30, "pagination ends")
					page, err := s.Jobs(ctx, f)
					require.NoError(t, err)
					require.LessOrEqual(t, len(page), limit)
					for _, j := range page {
						got = append(got, j.ID)
					}
					if len(page) < limit {
						break
					}
					f.Continue = history.ContinueAfter(page[len(page)-1])
				}
				require.Equal(t, want, got, "every record once, newest first")
			})
		}
		page, err := s.Jobs(ctx, history.Filter{Namespace: "other"})
		require.NoError(t, err)
		require.Len(t, page, 5)
		for _, j := range page {
			require.Equal(t, "other", j.Namespace)
		}
		// A record created after the first page does not shift the next.
		first, err := s.Jobs(ctx, history.Filter{Limit: 5})
		require.NoError(t, err)
		require.NoError(t, s.UpsertJob(ctx, job("uid-new", "new", "alice", history.StatusRunning, t0.Add(time.Hour))))
		second, err := s.Jobs(ctx, history.Filter{Limit: 5, Continue: history.ContinueAfter(first[4])})
		require.NoError(t, err)
		require.True(t, second[0].Created.Before(first[4].Created) || second[0].UID < first[4].UID)

		for _, bad := range []string{"!!", "bm90LWEtdG9rZW4", history.ContinueAfter(history.Job{})[:2]} {
			_, err := s.Jobs(ctx, history.Filter{Continue: bad})
			require.ErrorContains(t, err, "continue token", bad)
		}
		_, err = s.Jobs(ctx, history.Filter{Limit: -1})
		require.ErrorContains(t, err, "negative limit")
	})
}

// fill stores a finished, exported record with one archive of size bytes.
func fill(t *testing.T, s history.Store, uid string, created time.Time, size int, exported bool) {
	t.Helper()
	ctx := context.Background()
	require.NoError(t, s.UpsertJob(ctx, job(uid, "id-"+uid, "alice", history.StatusSucceeded, created)))
	_, err := s.UpsertAttempt(ctx, history.Attempt{PodUID: "pod-" + uid, JobUID: uid, Number: 1, Pod: "pod", Phase: "Succeeded", ExitCode: ptr.To[int32](0)})
	require.NoError(t, err)
	require.NoError(t, s.PutLogArchive(ctx, history.LogArchive{PodUID: "pod-" + uid, JobUID: uid, Attempt: 1, Pod: "pod", Container: "worker", Gzip: []byte(strings.Repeat("g", size)), Size: int64(size)}))
	require.NoError(t, s.Checkpoint(ctx, "pod-"+uid, "worker", created, int64(size)))
	_, err = s.Mark(ctx, uid, "finished")
	require.NoError(t, err)
	_, err = s.Mark(ctx, "pod-"+uid, "logs-lost/sidecar")
	require.NoError(t, err)
	if exported {
		_, err = s.MarkExported(ctx, uid, created.Add(time.Minute))
		require.NoError(t, err)
	}
}

func uids(t *testing.T, s history.Store) []string {
	t.Helper()
	list, err := s.Jobs(context.Background(), history.Filter{})
	require.NoError(t, err)
	var out []string
	for _, j := range list {
		out = append(out, j.UID)
	}
	return out
}

func TestPruneByAge(t *testing.T) {
	forEachStore(t, func(t *testing.T, s history.Store) {
		ctx := context.Background()
		for i := range 7 {
			fill(t, s, fmt.Sprintf("u%d", i), t0.Add(time.Duration(i)*time.Hour), 100, i != 1)
		}
		// u0..u4 are older than the cut; u1 is not exported and u3 is still
		// in the cluster, so they stay; batches of 2 cross batch borders.
		res, err := s.Prune(ctx, history.PruneRequest{
			Before: t0.Add(4*time.Hour + time.Minute),
			Keep:   func(uid string) bool { return uid == "u3" },
			Batch:  2,
		})
		require.NoError(t, err)
		require.EqualValues(t, 3, res.Records)
		require.ElementsMatch(t, []string{"u0", "u2", "u4"}, res.UIDs)
		require.EqualValues(t, 3, res.Archives)
		require.EqualValues(t, 300, res.ArchiveBytes)
		require.Equal(t, []string{"u6", "u5", "u3", "u1"}, uids(t, s), "only the pruned records are gone")

		// Everything of a pruned record is gone: a Job with its UID and
		// pods would start from scratch.
		_, err = s.JobByUID(ctx, "u0")
		require.ErrorIs(t, err, history.ErrNotFound)
		archives, err := s.LogArchives(ctx, "u0")
		require.NoError(t, err)
		require.Empty(t, archives)
		until, n, err := s.Shipped(ctx, "pod-u0", "worker")
		require.NoError(t, err)
		require.True(t, until.IsZero())
		require.Zero(t, n)
		first, err := s.Mark(ctx, "u0", "finished")
		require.NoError(t, err)
		require.True(t, first, "the Job's marks are gone")
		first, err = s.Mark(ctx, "pod-u0", "logs-lost/sidecar")
		require.NoError(t, err)
		require.True(t, first, "its pods' marks are gone")
		// What was kept is whole.
		kept, err := s.JobByUID(ctx, "u3")
		require.NoError(t, err)
		require.Len(t, kept.Attempts, 1)
		st, err := s.Stats(ctx)
		require.NoError(t, err)
		require.EqualValues(t, 4, st.Records)
		require.EqualValues(t, 400, st.ArchiveBytes)

		again, err := s.Prune(ctx, history.PruneRequest{Before: t0.Add(4*time.Hour + time.Minute), Keep: func(uid string) bool { return uid == "u3" }})
		require.NoError(t, err)
		require.Zero(t, again.Records, "a second prune finds nothing")
	})
}

func TestPruneBySize(t *testing.T) {
	forEachStore(t, func(t *testing.T, s history.Store) {
		ctx := context.Background()
		for i := range 6 {
			fill(t, s, fmt.Sprintf("u%d", i), t0.Add(time.Duration(i)*time.Hour), 1000, i != 0)
		}
		now := t0.Add(24 * time.Hour)
		// 6000 bytes, cap 3000: u0 is not exported, u2 is in the cluster,
		// so u1, u3, u4 lose their logs, oldest first; u5's stay.
		res, err := s.Prune(ctx, history.PruneRequest{MaxArchiveBytes: 3000, Now: now, Keep: func(uid string) bool { return uid == "u2" }, Batch: 2})
		require.NoError(t, err)
		require.Zero(t, res.Records, "the records stay")
		require.EqualValues(t, 3, res.CapArchives)
		require.EqualValues(t, 3000, res.CapArchiveBytes)
		require.Zero(t, res.Archives)
		st, err := s.Stats(ctx)
		require.NoError(t, err)
		require.EqualValues(t, 6, st.Records)
		require.EqualValues(t, 3000, st.ArchiveBytes)
		for uid, pruned := range map[string]bool{"u0": false, "u1": true, "u2": false, "u3": true, "u4": true, "u5": false} {
			j, err := s.JobByUID(ctx, uid)
			require.NoError(t, err)
			archives, err := s.LogArchives(ctx, uid)
			require.NoError(t, err)
			if pruned {
				require.Equal(t, now, *j.LogsPruned, uid)
				require.Empty(t, archives, uid)
			} else {
				require.Nil(t, j.LogsPruned, uid)
				require.Len(t, archives, 1, uid)
			}
		}
		// Nothing more can go: the cap is not reached, and the prune says so
		// by stopping rather than looping.
		res, err = s.Prune(ctx, history.PruneRequest{MaxArchiveBytes: 10, Now: now, Keep: func(uid string) bool { return uid == "u2" || uid == "u5" }})
		require.NoError(t, err)
		require.Zero(t, res.CapArchives)
		list, err := s.Jobs(ctx, history.Filter{})
		require.NoError(t, err)
		require.Len(t, list, 6)
	})
}

// TestMigrateFromVersion1 writes a store with the schema of version 1 (the
// one FlowForge shipped before versioned migrations, kept verbatim in
// migrations), then opens it with this build: the data survive and the
// new columns are filled in.
func TestMigrateFromVersion1(t *testing.T) {
	type opener struct {
		name     string
		old, cur func(t *testing.T) history.Store
		raw      func(s history.Store) *sql.DB
	}
	dir := t.TempDir()
	var url string
	for _, o := range []opener{
		{
			name: "sqlite",
			old: func(t *testing.T) history.Store {
				s, err := openSQLite(context.Background(), filepath.Join(dir, "v1.db"), 1, t0)
				require.NoError(t, err)
				return s
			},
			cur: func(t *testing.T) history.Store {
				s, err := OpenSQLite(context.Background(), filepath.Join(dir, "v1.db"))
				require.NoError(t, err)
				return s
			},
			raw: func(s history.Store) *sql.DB { return s.(*SQLite).db },
		},
		{
			name: "postgres",
			old: func(t *testing.T) history.Store {
				url = postgresURL(t)
				s, err := openPostgres(context.Background(), url, 1, t0)
				require.NoError(t, err)
				return s
			},
			cur: func(t *testing.T) history.Store {
				s, err := OpenPostgres(context.Background(), url)
				require.NoError(t, err)
				return s
			},
			raw: func(s history.Store) *sql.DB { return s.(*Postgres).db },
		},
	} {
		t.Run(o.name, func(t *testing.T) {
			ctx := context.Background()
			old := o.old(t)
			db := o.raw(old)
			d := old.(interface{ dialectOf() dialect }).dialectOf()
			version, err := schemaVersion(ctx, db)
			require.NoError(t, err)
			require.Equal(t, 1, version)
			// Written with version 1's statements (no stored_bytes column).
			exec := func(q string, args ...any) {
				_, err := db.ExecContext(ctx, d.rebind(q), args...)
				require.NoError(t, err)
			}
			exec(`INSERT INTO jobs (uid, job_id, namespace, name, user_id, status, created_at, finished_at, exported_at, events) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
				"uid-1", "a1", "agents", "claude-job-a1", "alice", history.StatusSucceeded, t0.UnixMilli(), t0.Add(time.Minute).UnixMilli(), t0.Add(2*time.Minute).UnixMilli(),
				`[{"time":"2026-11-27T10:00:00Z","type":"Normal","reason":"Started","object":"job/a1","message":"go"}]`)
			exec(`INSERT INTO attempts (pod_uid, job_uid, number, pod, phase, exit_code, counted) VALUES (?, ?, ?, ?, ?, ?, ?)`, "p1", "uid-1", 1, "pod-1", "Succeeded", 0, false)
			exec(`INSERT INTO log_archives (pod_uid, container, job_uid, attempt, pod, data, size, truncated) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`, "p1", "worker", "uid-1", 1, "pod-1", []byte("0123456789"), 42, false)
			exec(`INSERT INTO marks (uid, fact) VALUES (?, ?)`, "uid-1", "finished")
			require.NoError(t, old.Close())

			s := o.cur(t)
			defer s.Close() //nolint:errcheck // test
			version, err = schemaVersion(ctx, o.raw(s))
			require.NoError(t, err)
			require.Equal(t, SchemaVersion(), version)
			j, err := s.Job(ctx, "a1")
			require.NoError(t, err)
			require.Equal(t, "alice", j.User)
			require.Equal(t, t0.Add(2*time.Minute), *j.Exported)
			require.Len(t, j.Events, 1)
			require.Len(t, j.Attempts, 1)
			require.False(t, *j.Attempts[0].Counted)
			archives, err := s.LogArchives(ctx, "uid-1")
			require.NoError(t, err)
			require.Len(t, archives, 1)
			require.Equal(t, []byte("0123456789"), archives[0].Gzip)
			st, err := s.Stats(ctx)
			require.NoError(t, err)
			require.EqualValues(t, 10, st.ArchiveBytes, "archive sizes are filled in")
			first, err := s.Mark(ctx, "uid-1", "finished")
			require.NoError(t, err)
			require.False(t, first, "marks survive")
			// And the upgraded store prunes.
			res, err := s.Prune(ctx, history.PruneRequest{Before: t0.Add(time.Hour)})
			require.NoError(t, err)
			require.EqualValues(t, 1, res.Records)
		})
	}
}

// TestUnversionedStoreIsAdopted opens a store created before migrations
// were versioned (version 1's tables, no schema_migrations).
func TestUnversionedStoreIsAdopted(t *testing.T) {
	path := filepath.Join(t.TempDir(), "old.db")
	db, err := sql.Open("sqlite", "file:"+path)
	require.NoError(t, err)
	_, err = db.Exec(schemaV1SQLite)
	require.NoError(t, err)
	_, err = db.Exec(`INSERT INTO jobs (uid, job_id, namespace, name, status, created_at) VALUES ('u', 'a', 'ns', 'n', 'Running', 1)`)
	require.NoError(t, err)
	require.NoError(t, db.Close())

	s, err := OpenSQLite(context.Background(), path)
	require.NoError(t, err)
	defer s.Close() //nolint:errcheck // test
	j, err := s.Job(context.Background(), "a")
	require.NoError(t, err)
	require.Equal(t, "Running", j.Status)
	version, err := schemaVersion(context.Background(), s.db)
	require.NoError(t, err)
	require.Equal(t, SchemaVersion(), version)
}

func TestNewerSchemaIsRefused(t *testing.T) {
	path := filepath.Join(t.TempDir(), "new.db")
	s, err := OpenSQLite(context.Background(), path)
	require.NoError(t, err)
	_, err = s.db.Exec(`INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, 'from the future', 0)`, SchemaVersion()+1)
	require.NoError(t, err)
	require.NoError(t, s.Close())
	_, err = OpenSQLite(context.Background(), path)
	require.ErrorContains(t, err, "newer than this controller")
}

// TestFullSQLiteRecoversAfterPrune fills a real SQLite store (capped with
// max_page_count, as a full volume would stop it): writes fail with
// SQLite's "full" error, and a prune by size makes room for them again
// (freed pages are reused; the file does not grow).
func TestFullSQLiteRecoversAfterPrune(t *testing.T) {
	ctx := context.Background()
	s, err := OpenSQLite(ctx, filepath.Join(t.TempDir(), "full.db"))
	require.NoError(t, err)
	defer s.Close() //nolint:errcheck // test
	for i := range 10 {
		fill(t, s, fmt.Sprintf("u%d", i), t0.Add(time.Duration(i)*time.Minute), 64<<10, true)
	}
	var pages int64
	require.NoError(t, s.db.QueryRowContext(ctx, `PRAGMA page_count`).Scan(&pages))
	_, err = s.db.ExecContext(ctx, fmt.Sprintf(`PRAGMA max_page_count = %d`, pages+2))
	require.NoError(t, err)
	big := history.LogArchive{PodUID: "pod-new", JobUID: "new", Attempt: 1, Pod: "pod", Container: "worker", Gzip: []byte(strings.Repeat("n", 128<<10)), Size: 128 << 10}
	err = s.PutLogArchive(ctx, big)
	require.ErrorContains(t, err, "full")

	res, err := s.Prune(ctx, history.PruneRequest{MaxArchiveBytes: 6 * 64 << 10, Now: t0})
	require.NoError(t, err)
	require.EqualValues(t, 4, res.CapArchives)
	require.NoError(t, s.PutLogArchive(ctx, big), "the pruned archives' pages take the new one")
}

// TestMigrateFixture opens testdata/history-v1.sql, a store as the
// previous release wrote it, with this build.
func TestMigrateFixture(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "history.db")
	require.NoError(t, LoadSQLiteFixture(ctx, path, "testdata/history-v1.sql"))
	s, err := OpenSQLite(ctx, path)
	require.NoError(t, err)
	defer s.Close() //nolint:errcheck // test
	j, err := s.Job(ctx, "v1-job")
	require.NoError(t, err)
	require.Equal(t, "alice", j.User)
	require.Equal(t, "rev-1", j.PolicyRevision)
	require.Equal(t, time.UnixMilli(1764151261000).UTC(), *j.Exported)
	require.Len(t, j.Events, 1)
	require.Len(t, j.Attempts, 1)
	require.Equal(t, "node-1", j.Attempts[0].Node)
	archives, err := s.LogArchives(ctx, "uid-v1")
	require.NoError(t, err)
	require.Len(t, archives, 1)
	text, err := archives[0].Text()
	require.NoError(t, err)
	require.Equal(t, "hello from v1\n", string(text))
	until, n, err := s.Shipped(ctx, "pod-v1", "worker")
	require.NoError(t, err)
	require.EqualValues(t, 14, n)
	require.Equal(t, 2025, until.Year())
	first, err := s.Mark(ctx, "uid-v1", "finished")
	require.NoError(t, err)
	require.False(t, first)
	st, err := s.Stats(ctx)
	require.NoError(t, err)
	require.EqualValues(t, len(archives[0].Gzip), st.ArchiveBytes, "sizes filled in by migration 2")
	list, err := s.Jobs(ctx, history.Filter{User: "alice", Status: history.StatusSucceeded, Limit: 10})
	require.NoError(t, err)
	require.Len(t, list, 1)

	require.Error(t, LoadSQLiteFixture(ctx, filepath.Join(t.TempDir(), "x.db"), "testdata/missing.sql"))
}
