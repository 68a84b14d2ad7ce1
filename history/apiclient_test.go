package history_test

import (
	"bytes"
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/go-logr/logr"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"k8s.io/client-go/rest"

	"github.com/flowforge/flowforge/history"
	"github.com/flowforge/flowforge/history/apiserver"
	historystore "github.com/flowforge/flowforge/history/store"
)

var t0 = time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)

func ptr[T any](v T) *T { return &v }

// serve runs the history API's handler on a store (no authentication:
// the API server's proxy path) and returns a client of namespace.
func serve(t *testing.T, jobs ...history.Job) (store history.Store, client func(ns string) *history.APIClient) {
	t.Helper()
	ctx := context.Background()
	s, err := historystore.OpenSQLite(ctx, ":memory:")
	require.NoError(t, err)
	t.Cleanup(func() { _ = s.Close() })
	for _, j := range jobs {
		require.NoError(t, s.UpsertJob(ctx, j))
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	t.Cleanup(func() { _ = l.Close() })
	api, err := apiserver.New(ctx, apiserver.Options{Store: s, Listener: l, Log: logr.Discard()})
	require.NoError(t, err)
	srv := httptest.NewServer(api.Handler())
	t.Cleanup(srv.Close)
	return s, func(ns string) *history.APIClient {
		c, err := history.NewAPIClient(&rest.Config{Host: srv.URL}, ns)
		require.NoError(t, err)
		return c
	}
}

func TestExecutionRoundTrip(t *testing.T) {
	j := history.Job{
		UID: "u1", ID: "a1", Namespace: "team-a", Name: "claude-job-a1", User: "alice", Repository: "acme/w", Branch: "main",
		Template: "claude", Profile: "small", PolicyRevision: "r1", Status: history.StatusFailed, Reason: "BackoffLimitExceeded",
		Message: "gave up", CancelledBy: "bob", Created: t0, Started: ptr(t0.Add(time.Minute)), Finished: ptr(t0.Add(time.Hour)),
		Exported: ptr(t0.Add(2 * time.Hour)), LogsPruned: ptr(t0.Add(3 * time.Hour)),
		Attempts: []history.Attempt{{PodUID: "p1", JobUID: "u1", Number: 1, Pod: "pod-1", Node: "n1", Phase: "Failed",
			Started: ptr(t0.Add(time.Minute)), Finished: ptr(t0.Add(time.Hour)), ExitCode: ptr(int32(137)), Reason: "OOMKilled", Counted: ptr(true),
			PeakCPUMillicores: 1250, PeakMemoryBytes: 2 << 30}},
		Events: []history.Event{{Time: t0, Type: "Warning", Reason: "BackoffLimitExceeded", Object: "Job/claude-job-a1", Message: "gave up"}},
	}
	e := history.Execution(j)
	assert.Equal(t, "a1", e.Name)
	assert.Equal(t, "team-a", e.Namespace)
	assert.Equal(t, "Execution", e.Kind)
	assert.Equal(t, j, history.JobFromExecution(&e), "what the API serves is the record")
}

func TestAPIClient(t *testing.T) {
	_, client := serve(t,
		history.Job{UID: "u1", ID: "a1", Namespace: "team-a", Name: "j1", User: "alice", Status: history.StatusSucceeded, Created: t0},
		history.Job{UID: "u2", ID: "a2", Namespace: "team-a", Name: "j2", User: "bob", Status: history.StatusFailed, Created: t0.Add(time.Hour)},
		history.Job{UID: "u3", ID: "a3", Namespace: "team-a", Name: "j3", User: "alice", Status: history.StatusFailed, Created: t0.Add(2 * time.Hour)},
		history.Job{UID: "u4", ID: "b1", Namespace: "team-b", Name: "j4", User: "alice", Status: history.StatusFailed, Created: t0.Add(3 * time.Hour)},
	)
	ctx := context.Background()
	ids := func(jobs []history.Job) []string {
		out := []string{}
		for _, j := range jobs {
			out = append(out, j.ID)
		}
		return out
	}
	tests := []struct {
		name, ns, user, status string
		since                  time.Time
		limit                  int
		want                   []string
	}{
		{name: "a namespace, newest first", ns: "team-a", want: []string{"a3", "a2", "a1"}},
		{name: "every namespace", want: []string{"b1", "a3", "a2", "a1"}},
		{name: "a user", ns: "team-a", user: "alice", want: []string{"a3", "a1"}},
		{name: "a status", status: history.StatusFailed, want: []string{"b1", "a3", "a2"}},
		{name: "since", ns: "team-a", since: t0.Add(time.Hour), want: []string{"a3", "a2"}},
		{name: "a limit", limit: 2, want: []string{"b1", "a3"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			jobs, err := client(tt.ns).Jobs(ctx, tt.user, tt.status, tt.since, tt.limit)
			require.NoError(t, err)
			assert.Equal(t, tt.want, ids(jobs))
		})
	}
	_, err := client("team-a").Jobs(ctx, "", "", time.Time{}, -1)
	require.ErrorContains(t, err, "limit -1")

	rec, err := client("team-a").Job(ctx, "a2")
	require.NoError(t, err)
	assert.Equal(t, "bob", rec.User)
	_, err = client("team-b").Job(ctx, "a2")
	require.ErrorIs(t, err, history.ErrNotFound)
	assert.Equal(t, `job "a2" not found in the history`, err.Error())
	var logs bytes.Buffer
	require.NoError(t, client("team-a").Logs(ctx, "a2", 1, "worker", &logs))
	assert.Empty(t, logs.String(), "no archive")
	require.ErrorIs(t, client("team-a").Logs(ctx, "nosuch", 0, "", &logs), history.ErrNotFound)
}

func TestAPIClientUnavailable(t *testing.T) {
	for name, h := range map[string]http.Handler{
		"no APIService": http.NotFoundHandler(),
		"backend down": http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			http.Error(w, "service unavailable", http.StatusServiceUnavailable)
		}),
	} {
		t.Run(name, func(t *testing.T) {
			srv := httptest.NewServer(h)
			defer srv.Close()
			c, err := history.NewAPIClient(&rest.Config{Host: srv.URL}, "team-a")
			require.NoError(t, err)
			_, err = c.Job(context.Background(), "a1")
			require.ErrorIs(t, err, history.ErrUnavailable)
			require.NotErrorIs(t, err, history.ErrNotFound)
			_, err = c.Jobs(context.Background(), "", "", time.Time{}, 0)
			require.ErrorIs(t, err, history.ErrUnavailable)
			err = c.Logs(context.Background(), "a1", 0, "", &bytes.Buffer{})
			require.ErrorIs(t, err, history.ErrUnavailable)
		})
	}
}

func TestParseSince(t *testing.T) {
	now := t0
	for _, tt := range []struct {
		in   string
		want time.Time
		err  string
	}{
		{in: ""},
		{in: "24h", want: now.Add(-24 * time.Hour)},
		{in: "2026-02-01T00:00:00Z", want: time.Date(2026, 2, 1, 0, 0, 0, 0, time.UTC)},
		{in: "-1h", err: "negative duration"},
		{in: "yesterday", err: "want a duration like 24h or an RFC3339 time"},
	} {
		t.Run(tt.in, func(t *testing.T) {
			got, err := history.ParseSince(tt.in, now)
			if tt.err != "" {
				require.Error(t, err)
				assert.True(t, strings.Contains(err.Error(), tt.err), err)
				return
			}
			require.NoError(t, err)
			assert.True(t, tt.want.Equal(got), got)
		})
	}
}
