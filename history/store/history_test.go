package store

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/go-logr/logr"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	clocktesting "k8s.io/utils/clock/testing"
	"k8s.io/utils/ptr"

	"github.com/flowforge/flowforge/history"
)

var t0 = time.Date(2026, 11, 27, 10, 0, 0, 0, time.UTC)

func openStore(t *testing.T) *SQLite {
	t.Helper()
	s, err := OpenSQLite(context.Background(), filepath.Join(t.TempDir(), "history.db"))
	require.NoError(t, err)
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func job(uid, id, user, status string, created time.Time) history.Job {
	return history.Job{UID: uid, ID: id, Namespace: "agents", Name: "claude-job-" + id, User: user, Repository: "acme/app", Branch: "main", Status: status, Created: created}
}

func TestJobRecordsKeepWhatIsSetOnce(t *testing.T) {
	forEachStore(t, func(t *testing.T, s history.Store) {
		ctx := context.Background()
		started := t0.Add(time.Second)
		j := job("uid-1", "a1", "u1", history.StatusRunning, t0)
		j.Started = &started
		require.NoError(t, s.UpsertJob(ctx, j))

		later := j
		later.Status, later.Reason, later.Started = history.StatusSucceeded, "Completed", nil
		finished := t0.Add(time.Minute)
		later.Finished = &finished
		later.PolicyRevision = ""
		require.NoError(t, s.UpsertJob(ctx, later))

		got, err := s.Job(ctx, "a1")
		require.NoError(t, err)
		assert.Equal(t, history.StatusSucceeded, got.Status)
		assert.Equal(t, started, *got.Started, "a later upsert does not clear the start")
		assert.Equal(t, finished, *got.Finished)
		assert.Nil(t, got.Exported)

		first, err := s.MarkExported(ctx, "uid-1", t0.Add(2*time.Minute))
		require.NoError(t, err)
		assert.True(t, first)
		again, err := s.MarkExported(ctx, "uid-1", t0.Add(3*time.Minute))
		require.NoError(t, err)
		assert.False(t, again, "exported once")
		got, err = s.JobByUID(ctx, "uid-1")
		require.NoError(t, err)
		assert.Equal(t, t0.Add(2*time.Minute), *got.Exported)

		_, err = s.Job(ctx, "missing")
		assert.ErrorIs(t, err, history.ErrNotFound)

		// The same job id in another namespace, newer: Job finds it, JobIn
		// finds each namespace's own.
		other := job("uid-2", "a1", "u2", history.StatusRunning, t0.Add(time.Hour))
		other.Namespace = "team-b"
		require.NoError(t, s.UpsertJob(ctx, other))
		got, err = s.Job(ctx, "a1")
		require.NoError(t, err)
		assert.Equal(t, "uid-2", got.UID)
		got, err = s.JobIn(ctx, "agents", "a1")
		require.NoError(t, err)
		assert.Equal(t, "uid-1", got.UID)
		got, err = s.JobIn(ctx, "team-b", "a1")
		require.NoError(t, err)
		assert.Equal(t, "uid-2", got.UID)
		_, err = s.JobIn(ctx, "team-c", "a1")
		assert.ErrorIs(t, err, history.ErrNotFound)
	})
}

func TestAttemptsEventsAndMarks(t *testing.T) {
	forEachStore(t, func(t *testing.T, s history.Store) {
		ctx := context.Background()
		require.NoError(t, s.UpsertJob(ctx, job("uid-1", "a1", "u1", history.StatusRunning, t0)))
		created, err := s.UpsertAttempt(ctx, history.Attempt{PodUID: "p1", JobUID: "uid-1", Number: 1, Pod: "pod-1", Phase: "Running"})
		require.NoError(t, err)
		assert.True(t, created)
		created, err = s.UpsertAttempt(ctx, history.Attempt{PodUID: "p1", JobUID: "uid-1", Number: 1, Pod: "pod-1", Node: "n1", Phase: "Failed", ExitCode: ptr.To[int32](3), Reason: "Error", Counted: ptr.To(true)})
		require.NoError(t, err)
		assert.False(t, created)
		_, err = s.UpsertAttempt(ctx, history.Attempt{PodUID: "p2", JobUID: "uid-1", Number: 2, Pod: "pod-2", Phase: "Succeeded", ExitCode: ptr.To[int32](0)})
		require.NoError(t, err)
		require.NoError(t, s.SetEvents(ctx, "uid-1", []history.Event{{Time: t0, Type: "Normal", Reason: "Started", Object: "job/a1", Message: "go"}}))

		got, err := s.Job(ctx, "a1")
		require.NoError(t, err)
		require.Len(t, got.Attempts, 2)
		assert.Equal(t, "n1", got.Attempts[0].Node)
		assert.Equal(t, int32(3), *got.Attempts[0].ExitCode)
		assert.True(t, *got.Attempts[0].Counted)
		assert.Nil(t, got.Attempts[1].Counted)
		require.Len(t, got.Events, 1)
		assert.Equal(t, "Started", got.Events[0].Reason)

		first, err := s.Mark(ctx, "uid-1", "started")
		require.NoError(t, err)
		assert.True(t, first)
		first, err = s.Mark(ctx, "uid-1", "started")
		require.NoError(t, err)
		assert.False(t, first)

		until, bytes, err := s.Shipped(ctx, "p1", "worker")
		require.NoError(t, err)
		assert.True(t, until.IsZero())
		assert.Zero(t, bytes)
		require.NoError(t, s.Checkpoint(ctx, "p1", "worker", t0.Add(time.Nanosecond), 42))
		until, bytes, err = s.Shipped(ctx, "p1", "worker")
		require.NoError(t, err)
		assert.Equal(t, t0.Add(time.Nanosecond), until, "checkpoints keep nanoseconds")
		assert.EqualValues(t, 42, bytes)
	})
}

func TestListFilters(t *testing.T) {
	forEachStore(t, func(t *testing.T, s history.Store) {
		ctx := context.Background()
		require.NoError(t, s.UpsertJob(ctx, job("1", "a", "alice", history.StatusSucceeded, t0)))
		require.NoError(t, s.UpsertJob(ctx, job("2", "b", "bob", history.StatusFailed, t0.Add(time.Hour))))
		require.NoError(t, s.UpsertJob(ctx, job("3", "c", "alice", history.StatusFailed, t0.Add(2*time.Hour))))
		ids := func(f history.Filter) []string {
			list, err := s.Jobs(ctx, f)
			require.NoError(t, err)
			var out []string
			for _, j := range list {
				out = append(out, j.ID)
			}
			return out
		}
		assert.Equal(t, []string{"c", "b", "a"}, ids(history.Filter{}), "newest first")
		assert.Equal(t, []string{"c", "a"}, ids(history.Filter{User: "alice"}))
		assert.Equal(t, []string{"c", "b"}, ids(history.Filter{Status: history.StatusFailed}))
		assert.Equal(t, []string{"c", "b"}, ids(history.Filter{Since: t0.Add(30 * time.Minute)}))
		assert.Equal(t, []string{"c"}, ids(history.Filter{Limit: 1}))
		assert.Empty(t, ids(history.Filter{User: "nobody"}))
	})
}

func TestLogArchives(t *testing.T) {
	forEachStore(t, func(t *testing.T, s history.Store) {
		ctx := context.Background()
		gz, size, truncated, err := history.Compress(strings.NewReader("hello\nworld\n"), 1<<20)
		require.NoError(t, err)
		assert.False(t, truncated)
		assert.EqualValues(t, 12, size)
		require.NoError(t, s.PutLogArchive(ctx, history.LogArchive{PodUID: "p1", JobUID: "uid-1", Attempt: 1, Pod: "pod-1", Container: "worker", Gzip: gz, Size: size}))
		has, err := s.HasLogArchive(ctx, "p1", "worker")
		require.NoError(t, err)
		assert.True(t, has)
		has, err = s.HasLogArchive(ctx, "p1", "other")
		require.NoError(t, err)
		assert.False(t, has)

		long := strings.Repeat("x", 100)
		gz, size, truncated, err = history.Compress(strings.NewReader(long), 10)
		require.NoError(t, err)
		assert.True(t, truncated)
		assert.EqualValues(t, 10, size)
		require.NoError(t, s.PutLogArchive(ctx, history.LogArchive{PodUID: "p2", JobUID: "uid-1", Attempt: 2, Pod: "pod-2", Container: "worker", Gzip: gz, Size: size, Truncated: true}))

		archives, err := s.LogArchives(ctx, "uid-1")
		require.NoError(t, err)
		require.Len(t, archives, 2)
		text, err := archives[0].Text()
		require.NoError(t, err)
		assert.Equal(t, "hello\nworld\n", string(text))
		text, err = archives[1].Text()
		require.NoError(t, err)
		assert.Equal(t, "xxxxxxxxxx\n[flowforge: log truncated after 10 bytes]\n", string(text))
		_, err = history.LogArchive{Gzip: []byte("not gzip")}.Text()
		assert.Error(t, err)
	})
}

func TestOpenFailsClearly(t *testing.T) {
	_, err := OpenSQLite(context.Background(), "/proc/forbidden/dir/history.db")
	assert.Error(t, err)
	mem, err := OpenSQLite(context.Background(), ":memory:")
	require.NoError(t, err)
	require.NoError(t, mem.Close())
}

func TestAPIAndClient(t *testing.T) {
	s := openStore(t)
	ctx := context.Background()
	require.NoError(t, s.UpsertJob(ctx, job("uid-1", "a1", "alice", history.StatusFailed, t0)))
	require.NoError(t, s.UpsertJob(ctx, job("uid-2", "b2", "bob", history.StatusSucceeded, t0.Add(time.Hour))))
	for i, text := range []string{"first try\n", "second try\n"} {
		gz, size, _, err := history.Compress(strings.NewReader(text), 1<<20)
		require.NoError(t, err)
		require.NoError(t, s.PutLogArchive(ctx, history.LogArchive{PodUID: "p" + string(rune('1'+i)), JobUID: "uid-1", Attempt: i + 1, Pod: "pod", Container: "worker", Gzip: gz, Size: size}))
	}
	api := &API{Store: s, Clock: clocktesting.NewFakePassiveClock(t0.Add(2 * time.Hour)), Log: logr.Discard()}
	srv := httptest.NewServer(api.Handler())
	defer srv.Close()
	c := &history.Client{BaseURL: srv.URL}

	jobs, err := c.Jobs(ctx, "alice", "", "", 0)
	require.NoError(t, err)
	require.Len(t, jobs, 1)
	assert.Equal(t, "a1", jobs[0].ID)
	jobs, err = c.Jobs(ctx, "", history.StatusSucceeded, "90m", 10)
	require.NoError(t, err)
	require.Len(t, jobs, 1)
	assert.Equal(t, "b2", jobs[0].ID)

	j, err := c.Job(ctx, "a1")
	require.NoError(t, err)
	assert.Equal(t, "alice", j.User)
	_, err = c.Job(ctx, "nope")
	assert.ErrorIs(t, err, history.ErrNotFound)

	var out bytes.Buffer
	require.NoError(t, c.Logs(ctx, "a1", 0, "", &out))
	assert.Equal(t, "==> attempt 1 (pod pod) <==\nfirst try\n==> attempt 2 (pod pod) <==\nsecond try\n", out.String())
	out.Reset()
	require.NoError(t, c.Logs(ctx, "a1", 2, "worker", &out))
	assert.Equal(t, "second try\n", out.String())

	var page struct {
		Items    []history.Job `json:"items"`
		Continue string        `json:"continue"`
	}
	getJSON := func(path string) {
		resp, err := http.Get(srv.URL + path)
		require.NoError(t, err)
		defer resp.Body.Close() //nolint:errcheck // test
		require.Equal(t, http.StatusOK, resp.StatusCode)
		page.Continue = ""
		require.NoError(t, json.NewDecoder(resp.Body).Decode(&page))
	}
	getJSON("/api/v1/jobs?limit=1")
	require.Len(t, page.Items, 1)
	assert.Equal(t, "b2", page.Items[0].ID)
	require.NotEmpty(t, page.Continue, "a full page says where the next starts")
	getJSON("/api/v1/jobs?limit=1&continue=" + page.Continue)
	require.Len(t, page.Items, 1)
	assert.Equal(t, "a1", page.Items[0].ID)
	getJSON("/api/v1/jobs?limit=1&continue=" + page.Continue)
	assert.Empty(t, page.Items)
	assert.Empty(t, page.Continue)
	getJSON("/api/v1/jobs?namespace=elsewhere")
	assert.Empty(t, page.Items)

	for _, bad := range []string{"/api/v1/jobs?continue=%21%21", "/api/v1/jobs?since=yesterday", "/api/v1/jobs?limit=-1", "/api/v1/jobs/a1/logs?attempt=zero"} {
		resp, err := http.Get(srv.URL + bad)
		require.NoError(t, err)
		body, _ := io.ReadAll(resp.Body)
		_ = resp.Body.Close()
		assert.Equal(t, http.StatusBadRequest, resp.StatusCode, bad)
		var e map[string]string
		require.NoError(t, json.Unmarshal(body, &e))
		assert.NotEmpty(t, e["error"])
	}
	unreachable := &history.Client{BaseURL: "http://127.0.0.1:1"}
	_, err = unreachable.Jobs(ctx, "", "", "", 0)
	assert.ErrorContains(t, err, "unreachable")
}

func TestParseSince(t *testing.T) {
	now := t0
	got, err := ParseSince("2h", now)
	require.NoError(t, err)
	assert.Equal(t, t0.Add(-2*time.Hour), got)
	got, err = ParseSince("2026-11-01T00:00:00Z", now)
	require.NoError(t, err)
	assert.Equal(t, time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC), got)
	got, err = ParseSince("", now)
	require.NoError(t, err)
	assert.True(t, got.IsZero())
	_, err = ParseSince("-1h", now)
	assert.Error(t, err)
	_, err = ParseSince("soon", now)
	assert.Error(t, err)
}
