package apiserver

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/go-logr/logr"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/flowforge/flowforge/history"
	historyv1alpha1 "github.com/flowforge/flowforge/history/apis/v1alpha1"
	historystore "github.com/flowforge/flowforge/history/store"
)

var t0 = time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)

const base = "/apis/history.flowforge.io/v1alpha1"

// newTestServer serves the API without authentication (Options.Kube nil)
// on a store holding a few records.
func newTestServer(t *testing.T) (*httptest.Server, history.Store) {
	t.Helper()
	ctx := context.Background()
	store, err := historystore.OpenSQLite(ctx, ":memory:")
	require.NoError(t, err)
	t.Cleanup(func() { _ = store.Close() })
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	t.Cleanup(func() { _ = l.Close() })
	s, err := New(ctx, Options{Store: store, Listener: l, Log: logr.Discard()})
	require.NoError(t, err)
	srv := httptest.NewServer(s.Handler())
	t.Cleanup(srv.Close)

	started, finished := t0.Add(time.Minute), t0.Add(time.Hour)
	exit := int32(1)
	for i, j := range []history.Job{
		{UID: "u1", ID: "a1", Namespace: "team-a", Name: "claude-job-a1", User: "alice", Repository: "acme/w", Branch: "main", Status: history.StatusFailed, Message: "BackoffLimitExceeded", Created: t0, Started: &started, Finished: &finished, Exported: &finished},
		{UID: "u2", ID: "a2", Namespace: "team-a", Name: "claude-job-a2", User: "bob", Status: history.StatusRunning, Created: t0.Add(time.Minute)},
		{UID: "u3", ID: "a3", Namespace: "team-a", Name: "claude-job-a3", User: "alice", Status: history.StatusSucceeded, Created: t0.Add(2 * time.Minute)},
		{UID: "u4", ID: "b1", Namespace: "team-b", Name: "claude-job-b1", User: "carol", Status: history.StatusSucceeded, Created: t0.Add(3 * time.Minute)},
	} {
		require.NoError(t, store.UpsertJob(ctx, j), i)
	}
	_, err = store.MarkExported(ctx, "u1", finished)
	require.NoError(t, err)
	_, err = store.UpsertAttempt(ctx, history.Attempt{PodUID: "p1", JobUID: "u1", Number: 1, Pod: "claude-job-a1-x", Phase: "Failed", ExitCode: &exit, Reason: "Error"})
	require.NoError(t, err)
	_, err = store.UpsertAttempt(ctx, history.Attempt{PodUID: "p2", JobUID: "u1", Number: 2, Pod: "claude-job-a1-y", Phase: "Failed"})
	require.NoError(t, err)
	require.NoError(t, store.SetEvents(ctx, "u1", []history.Event{{Time: t0, Type: "Warning", Reason: "BackoffLimitExceeded", Object: "Job/claude-job-a1", Message: "gave up"}}))
	for _, a := range []struct {
		pod, container, text string
		attempt              int
	}{
		{"claude-job-a1-x", "worker", "first try\n", 1},
		{"claude-job-a1-x", "git", "cloned\n", 1},
		{"claude-job-a1-y", "worker", "second try\n", 2},
	} {
		gz, size, truncated, err := history.Compress(strings.NewReader(a.text), 1<<20)
		require.NoError(t, err)
		require.NoError(t, store.PutLogArchive(ctx, history.LogArchive{PodUID: a.pod + "-uid", JobUID: "u1", Attempt: a.attempt, Pod: a.pod, Container: a.container, Gzip: gz, Size: size, Truncated: truncated}))
	}
	return srv, store
}

func get(t *testing.T, srv *httptest.Server, path string, accept string) (int, []byte) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, srv.URL+path, nil)
	require.NoError(t, err)
	if accept != "" {
		req.Header.Set("Accept", accept)
	}
	resp, err := srv.Client().Do(req)
	require.NoError(t, err)
	defer resp.Body.Close() //nolint:errcheck // test
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, body
}

func TestGetExecution(t *testing.T) {
	srv, store := newTestServer(t)
	code, body := get(t, srv, base+"/namespaces/team-a/executions/a1", "")
	require.Equal(t, http.StatusOK, code, string(body))
	var e historyv1alpha1.Execution
	require.NoError(t, json.Unmarshal(body, &e))
	assert.Equal(t, "Execution", e.Kind)
	assert.Equal(t, "history.flowforge.io/v1alpha1", e.APIVersion)
	assert.Equal(t, "a1", e.Name)
	assert.Equal(t, "team-a", e.Namespace)
	assert.Equal(t, "u1", string(e.UID))
	assert.Equal(t, "alice", e.Spec.User)
	assert.Equal(t, "claude-job-a1", e.Spec.JobName)
	assert.Equal(t, history.StatusFailed, e.Status.Phase)
	assert.Equal(t, map[string]string{"job-id": "a1", "user-id": "alice"}, e.Labels)
	require.Len(t, e.Status.Attempts, 2)
	assert.Equal(t, int32(1), *e.Status.Attempts[0].ExitCode)
	require.Len(t, e.Status.Events, 1)
	assert.Equal(t, "gave up", e.Status.Events[0].Message)
	require.NotNil(t, e.Status.ExportTime)

	t.Run("another namespace's job is not found", func(t *testing.T) {
		code, body := get(t, srv, base+"/namespaces/team-b/executions/a1", "")
		require.Equal(t, http.StatusNotFound, code)
		var st metav1.Status
		require.NoError(t, json.Unmarshal(body, &st))
		assert.Equal(t, metav1.StatusReasonNotFound, st.Reason)
		assert.Equal(t, `executions.history.flowforge.io "a1" not found`, st.Message)
	})
	t.Run("the same job id in another namespace, newer, hides nothing", func(t *testing.T) {
		later := t0.Add(time.Hour)
		require.NoError(t, store.UpsertJob(context.Background(), history.Job{UID: "u5", ID: "a1", Namespace: "team-b", Name: "claude-job-a1", User: "carol", Status: history.StatusRunning, Created: later}))
		for ns, uid := range map[string]string{"team-a": "u1", "team-b": "u5"} {
			code, body := get(t, srv, base+"/namespaces/"+ns+"/executions/a1", "")
			require.Equal(t, http.StatusOK, code, string(body))
			var e historyv1alpha1.Execution
			require.NoError(t, json.Unmarshal(body, &e))
			assert.Equal(t, uid, string(e.UID), ns)
			assert.Equal(t, ns, e.Namespace)
		}
	})
	t.Run("unknown", func(t *testing.T) {
		code, _ := get(t, srv, base+"/namespaces/team-a/executions/nosuch", "")
		require.Equal(t, http.StatusNotFound, code)
	})
	t.Run("read-only", func(t *testing.T) {
		req, err := http.NewRequest(http.MethodDelete, srv.URL+base+"/namespaces/team-a/executions/a1", nil)
		require.NoError(t, err)
		resp, err := srv.Client().Do(req)
		require.NoError(t, err)
		_ = resp.Body.Close()
		assert.Equal(t, http.StatusMethodNotAllowed, resp.StatusCode)
	})
}

func listNames(t *testing.T, srv *httptest.Server, path string) ([]string, string) {
	t.Helper()
	code, body := get(t, srv, path, "")
	require.Equal(t, http.StatusOK, code, string(body))
	var l historyv1alpha1.ExecutionList
	require.NoError(t, json.Unmarshal(body, &l))
	names := []string{}
	for _, e := range l.Items {
		names = append(names, e.Namespace+"/"+e.Name)
		assert.Empty(t, e.Status.Events, "lists leave events out")
	}
	return names, l.Continue
}

func TestListExecutions(t *testing.T) {
	srv, _ := newTestServer(t)
	tests := []struct {
		name  string
		query string
		want  []string
	}{
		{"a namespace, newest first", "/namespaces/team-a/executions", []string{"team-a/a3", "team-a/a2", "team-a/a1"}},
		{"every namespace", "/executions", []string{"team-b/b1", "team-a/a3", "team-a/a2", "team-a/a1"}},
		{"by user (field)", "/namespaces/team-a/executions?fieldSelector=spec.user%3Dalice", []string{"team-a/a3", "team-a/a1"}},
		{"by user (label)", "/namespaces/team-a/executions?labelSelector=user-id%3Dbob", []string{"team-a/a2"}},
		{"by phase", "/namespaces/team-a/executions?fieldSelector=status.phase%3DSucceeded", []string{"team-a/a3"}},
		{"by user and phase", "/executions?fieldSelector=spec.user%3Dalice,status.phase%3DFailed", []string{"team-a/a1"}},
		{"not a phase", "/namespaces/team-a/executions?fieldSelector=status.phase!%3DRunning", []string{"team-a/a3", "team-a/a1"}},
		{"by name", "/namespaces/team-a/executions?fieldSelector=metadata.name%3Da2", []string{"team-a/a2"}},
		{"nobody", "/namespaces/team-a/executions?fieldSelector=spec.user%3Dzed", []string{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			names, cont := listNames(t, srv, base+tt.query)
			assert.Equal(t, tt.want, names)
			assert.Empty(t, cont)
		})
	}
	t.Run("pages", func(t *testing.T) {
		var all []string
		path := base + "/executions?limit=2"
		for range 5 {
			names, cont := listNames(t, srv, path)
			all = append(all, names...)
			if cont == "" {
				break
			}
			path = base + "/executions?limit=2&continue=" + url.QueryEscape(cont)
		}
		assert.Equal(t, []string{"team-b/b1", "team-a/a3", "team-a/a2", "team-a/a1"}, all)
	})
	for _, bad := range []struct{ name, query, want string }{
		{"a foreign continue token", "?continue=bm9wZQ", "continue token"},
		{"an unknown field", "?fieldSelector=spec.node%3Dx", `field label "spec.node" not supported`},
		{"two users", "?fieldSelector=spec.user%3Da&labelSelector=user-id%3Db", `user "a" and user "b"`},
	} {
		t.Run(bad.name, func(t *testing.T) {
			code, body := get(t, srv, base+"/namespaces/team-a/executions"+bad.query, "")
			require.Equal(t, http.StatusBadRequest, code, string(body))
			var st metav1.Status
			require.NoError(t, json.Unmarshal(body, &st))
			assert.Contains(t, st.Message, bad.want)
		})
	}
}

func TestExecutionTable(t *testing.T) {
	srv, _ := newTestServer(t)
	code, body := get(t, srv, base+"/namespaces/team-a/executions", "application/json;as=Table;v=v1;g=meta.k8s.io")
	require.Equal(t, http.StatusOK, code, string(body))
	var table metav1.Table
	require.NoError(t, json.Unmarshal(body, &table))
	var cols []string
	for _, c := range table.ColumnDefinitions {
		cols = append(cols, c.Name)
	}
	assert.Equal(t, []string{"Name", "User", "Phase", "Repository", "Branch", "Duration", "Exported", "Age", "Job", "Attempts", "Message"}, cols)
	require.Len(t, table.Rows, 3)
	a1 := table.Rows[2].Cells
	assert.Equal(t, []any{"a1", "alice", "Failed", "acme/w", "main", "59m", "yes"}, a1[:7])
	assert.Equal(t, "bob", table.Rows[1].Cells[1])
	assert.Equal(t, "-", table.Rows[1].Cells[3], "no repository")
}

func TestExecutionLog(t *testing.T) {
	srv, _ := newTestServer(t)
	tests := []struct {
		name, query, want string
	}{
		{"every attempt, headed", "", "==> attempt 1 (pod claude-job-a1-x) <==\ncloned\nfirst try\n==> attempt 2 (pod claude-job-a1-y) <==\nsecond try\n"},
		{"one attempt", "?attempt=2", "second try\n"},
		{"one container", "?container=worker", "==> attempt 1 (pod claude-job-a1-x) <==\nfirst try\n==> attempt 2 (pod claude-job-a1-y) <==\nsecond try\n"},
		{"one attempt and container", "?attempt=1&container=git", "cloned\n"},
		{"nothing matches", "?container=nosuch", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, body := get(t, srv, base+"/namespaces/team-a/executions/a1/log"+tt.query, "")
			require.Equal(t, http.StatusOK, code, string(body))
			assert.Equal(t, tt.want, string(body))
		})
	}
	for _, bad := range []struct {
		name, path string
		code       int
	}{
		{"another namespace", "/namespaces/team-b/executions/a1/log", http.StatusNotFound},
		{"unknown", "/namespaces/team-a/executions/nosuch/log", http.StatusNotFound},
		{"a bad attempt", "/namespaces/team-a/executions/a1/log?attempt=x", http.StatusBadRequest},
		{"a negative attempt", "/namespaces/team-a/executions/a1/log?attempt=-1", http.StatusBadRequest},
	} {
		t.Run(bad.name, func(t *testing.T) {
			code, body := get(t, srv, base+bad.path, "")
			assert.Equal(t, bad.code, code, string(body))
		})
	}
}

func TestDiscovery(t *testing.T) {
	srv, _ := newTestServer(t)
	code, body := get(t, srv, base, "")
	require.Equal(t, http.StatusOK, code, string(body))
	var list metav1.APIResourceList
	require.NoError(t, json.Unmarshal(body, &list))
	got := map[string][]string{}
	for _, r := range list.APIResources {
		got[r.Name] = r.Verbs
		if r.Name == "executions" {
			assert.True(t, r.Namespaced)
			assert.Equal(t, "Execution", r.Kind)
			assert.Equal(t, "execution", r.SingularName)
		}
	}
	assert.Equal(t, map[string][]string{"executions": {"get", "list"}, "executions/log": {"get"}}, got)
}

func TestNewRefusesIncompleteOptions(t *testing.T) {
	_, err := New(context.Background(), Options{})
	require.EqualError(t, err, "history API: no store")
	store, err := historystore.OpenSQLite(context.Background(), ":memory:")
	require.NoError(t, err)
	defer store.Close() //nolint:errcheck // test
	_, err = New(context.Background(), Options{Store: store})
	require.EqualError(t, err, "history API: no listener")
}

func ExampleRender() {
	gz, size, _, _ := history.Compress(strings.NewReader("hello\n"), 1<<20)
	text, _ := Render([]history.LogArchive{{Attempt: 1, Pod: "p", Container: "worker", Gzip: gz, Size: size}}, 0, "")
	fmt.Print(string(text))
	// Output: hello
}
