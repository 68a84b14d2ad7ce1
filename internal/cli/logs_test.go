package cli

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"

	"github.com/flowforge/flowforge/history"
)

func TestLogsFromTheCluster(t *testing.T) {
	job := clusterJob(t, testRequest("lg1"), running)
	first := pod(job, "claude-job-lg1-a", t0.Add(-9*time.Minute))
	first.Status.Phase = corev1.PodFailed
	first.Status.ContainerStatuses[0].State = corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{ExitCode: 1}}
	second := pod(job, "claude-job-lg1-b", t0.Add(-5*time.Minute))
	// A pod of another Job is not shown.
	other := pod(clusterJob(t, testRequest("lg2")), "claude-job-lg2-a", t0)

	t.Run("the latest attempt", func(t *testing.T) {
		h := newHarness(t, job, first, second, other)
		res := h.run("logs", "lg1")
		require.Equal(t, ExitOK, res.code, res.err)
		// client-go's fake clientset serves "fake logs" for every pod.
		assert.Equal(t, "fake logs", res.out)
		reads := 0
		for _, a := range h.cs.Actions() {
			if a.GetSubresource() == "log" {
				reads++
			}
		}
		assert.Equal(t, 1, reads, "only the latest pod's log is read")
	})
	t.Run("every attempt", func(t *testing.T) {
		h := newHarness(t, job, first, second, other)
		res := h.run("logs", "lg1", "--all-attempts")
		require.Equal(t, ExitOK, res.code, res.err)
		assert.Equal(t, "==> attempt 1 (pod claude-job-lg1-a) <==\nfake logs"+
			"==> attempt 2 (pod claude-job-lg1-b) <==\nfake logs", res.out)
	})
	t.Run("no pod yet", func(t *testing.T) {
		h := newHarness(t, clusterJob(t, testRequest("lg3")))
		res := h.run("logs", "lg3")
		assert.Equal(t, ExitError, res.code)
		assert.Contains(t, res.err, "logs of job lg3: it has no pods yet (Pending)")
	})
	t.Run("follow a finished job", func(t *testing.T) {
		done := clusterJob(t, testRequest("lg4"), succeeded)
		p := pod(done, "claude-job-lg4-a", t0.Add(-9*time.Minute))
		p.Status.Phase = corev1.PodSucceeded
		p.Status.ContainerStatuses[0].State = corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{}}
		h := newHarness(t, done, p)
		res := h.run("logs", "-f", "lg4")
		require.Equal(t, ExitOK, res.code, res.err)
		assert.Equal(t, "fake logs", res.out)
	})
	t.Run("no cluster", func(t *testing.T) {
		h := newHarness(t)
		h.clientErr = errors.New("no Kubernetes configuration found")
		res := h.run("logs", "lg1")
		assert.Equal(t, ExitError, res.code)
		assert.Equal(t, "Error: no Kubernetes configuration found\n", res.err)
	})
}

func TestLogsFromTheArchive(t *testing.T) {
	srv := newHistoryServer(t)
	seedHistory(t, srv)
	srv.addLogs(t, "uid-gone-1", 1, "claude-job-gone-1-a", "worker", "first attempt\n")
	srv.addLogs(t, "uid-gone-1", 2, "claude-job-gone-1-b", "git-init", "cloning\n")
	srv.addLogs(t, "uid-gone-1", 2, "claude-job-gone-1-b", "worker", "second attempt\n")

	tests := []struct {
		name string
		args []string
		want string
	}{
		{
			name: "every attempt",
			want: "==> attempt 1 (pod claude-job-gone-1-a) <==\nfirst attempt\n" +
				"==> attempt 2 (pod claude-job-gone-1-b) <==\ncloning\nsecond attempt\n",
		},
		{name: "one attempt", args: []string{"--attempt", "2"}, want: "cloning\nsecond attempt\n"},
		{name: "one container", args: []string{"--attempt", "2", "-c", "worker"}, want: "second attempt\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t)
			res := h.withHistory(srv).run(append([]string{"logs", "gone-1"}, tt.args...)...)
			require.Equal(t, ExitOK, res.code, res.err)
			assert.Equal(t, tt.want, res.out)
		})
	}
	t.Run("in neither", func(t *testing.T) {
		h := newHarness(t)
		res := h.withHistory(srv).run("logs", "never")
		assert.Equal(t, ExitError, res.code)
		assert.Equal(t, "Error: job \"never\" not found in namespace flowforge-jobs or in the history; `flowforge list` and `flowforge history` show the jobs there are, -n another namespace\n", res.err)
		assert.Empty(t, res.out)
	})
	t.Run("no history API", func(t *testing.T) {
		h := newHarness(t)
		res := h.run("logs", "gone-1")
		assert.Equal(t, ExitError, res.code)
		assert.Contains(t, res.err, "Error: job \"gone-1\" not found in namespace flowforge-jobs, and its archived logs are unavailable: ")
	})
}

func seedHistoryList(t *testing.T, s *historyServer) {
	t.Helper()
	s.addJob(t, history.Job{UID: "u-h1", ID: "h1", Namespace: testNS, Name: "claude-job-h1", User: "alice",
		Repository: "acme/widgets", Branch: "main", Status: history.StatusSucceeded,
		Created: t0.Add(-time.Hour), Started: at(-59 * time.Minute), Finished: at(-30 * time.Minute)})
	s.addJob(t, history.Job{UID: "u-h2", ID: "h2", Namespace: testNS, Name: "claude-job-h2", User: "bob",
		Status: history.StatusFailed, Created: t0.Add(-30 * time.Hour), Started: at(-30 * time.Hour), Finished: at(-29 * time.Hour)})
	s.addJob(t, history.Job{UID: "u-h3", ID: "h3", Namespace: testNS, Name: "claude-job-h3", User: "alice",
		Repository: "acme/api", Branch: "feat", Status: history.StatusRunning,
		Created: t0.Add(-5 * time.Minute), Started: at(-4 * time.Minute)})
	first, err := s.store.MarkExported(t.Context(), "u-h2", t0.Add(-28*time.Hour))
	require.NoError(t, err)
	require.True(t, first)
}

var historyHeader = []string{"ID", "USER", "STATUS", "AGE", "DURATION", "REPOSITORY", "BRANCH", "EXPORT"}

func TestHistory(t *testing.T) {
	srv := newHistoryServer(t)
	seedHistoryList(t, srv)
	h1 := []string{"h1", "alice", "Succeeded", "1h0m", "29m0s", "acme/widgets", "main", "no"}
	h2 := []string{"h2", "bob", "Failed", "30h0m", "1h0m", "-", "-", "exported"}
	h3 := []string{"h3", "alice", "Running", "5m0s", "4m0s", "acme/api", "feat", "no"}

	tests := []struct {
		name string
		args []string
		want [][]string
	}{
		{name: "all, newest first", want: [][]string{historyHeader, h3, h1, h2}},
		{name: "by user", args: []string{"--user", "alice"}, want: [][]string{historyHeader, h3, h1}},
		{name: "by status", args: []string{"--status", "Failed"}, want: [][]string{historyHeader, h2}},
		{name: "since a duration", args: []string{"--since", "24h"}, want: [][]string{historyHeader, h3, h1}},
		{name: "since a time", args: []string{"--since", t0.Add(-2 * time.Hour).Format(time.RFC3339)}, want: [][]string{historyHeader, h3, h1}},
		{name: "limit", args: []string{"--limit", "2"}, want: [][]string{historyHeader, h3, h1}},
		{name: "filters combine", args: []string{"--user", "alice", "--status", "Running", "--limit", "5"}, want: [][]string{historyHeader, h3}},
		{name: "none", args: []string{"--user", "carol"}, want: [][]string{historyHeader}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t)
			res := h.withHistory(srv).run(append([]string{"history"}, tt.args...)...)
			require.Equal(t, ExitOK, res.code, res.err)
			assert.Equal(t, tt.want, fields(res.out))
		})
	}
	t.Run("json", func(t *testing.T) {
		h := newHarness(t)
		res := h.withHistory(srv).run("history", "-o", "json", "--user", "bob")
		require.Equal(t, ExitOK, res.code, res.err)
		var list []history.Job
		require.NoError(t, json.Unmarshal([]byte(res.out), &list), res.out)
		require.Len(t, list, 1)
		assert.Equal(t, "h2", list[0].ID)
		assert.Equal(t, history.StatusFailed, list[0].Status)
		require.NotNil(t, list[0].Exported)
	})
	t.Run("an empty list is [] in json", func(t *testing.T) {
		h := newHarness(t)
		res := h.withHistory(srv).run("history", "-o", "json", "--user", "carol")
		require.Equal(t, ExitOK, res.code, res.err)
		assert.Equal(t, "[]\n", res.out)
	})
	t.Run("yaml", func(t *testing.T) {
		h := newHarness(t)
		res := h.withHistory(srv).run("history", "-o", "yaml", "--status", "Running")
		require.Equal(t, ExitOK, res.code, res.err)
		assert.Contains(t, res.out, "- ")
		assert.Contains(t, res.out, "id: h3\n")
		assert.NotContains(t, res.out, "id: h1\n")
	})
	t.Run("a bad --since is a usage error", func(t *testing.T) {
		h := newHarness(t)
		res := h.withHistory(srv).run("history", "--since", "yesterday")
		assert.Equal(t, ExitUsage, res.code)
		assert.Equal(t, "Error: since \"yesterday\": want a duration like 24h or an RFC3339 time\n", res.err)
	})
	t.Run("unknown output format", func(t *testing.T) {
		h := newHarness(t)
		res := h.withHistory(srv).run("history", "-o", "toml")
		assert.Equal(t, ExitUsage, res.code)
		assert.Contains(t, res.err, `unknown output format "toml"`)
	})
}

// TestHistoryThroughTheAPIServer: the CLI reads the history from the
// cluster of the kubeconfig, at history.flowforge.io/v1alpha1 in the -n
// namespace, with the kubeconfig's credentials, and needs no other address.
func TestHistoryThroughTheAPIServer(t *testing.T) {
	srv := newHistoryServer(t)
	seedHistoryList(t, srv)
	kubeconfig, _ := fakeAPIServer(t, srv.URL) // its user has the token test-token
	h := newHarness(t)
	d := h.deps()
	d.history = clusterHistory
	var out, errb bytes.Buffer
	streams := Streams{In: strings.NewReader(""), Out: &out, Err: &errb}
	code := run(t.Context(), newRootCommandWith(streams, d), []string{"--kubeconfig", kubeconfig, "history", "--user", "bob"}, streams)
	require.Equal(t, ExitOK, code, errb.String())
	require.Len(t, fields(out.String()), 2, out.String())
	assert.Equal(t, "h2", fields(out.String())[1][0])
	auth, paths := srv.requests()
	require.NotEmpty(t, auth)
	for i := range auth {
		assert.Equal(t, "Bearer test-token", auth[i], "the user's own credentials")
		assert.Equal(t, "/apis/history.flowforge.io/v1alpha1/namespaces/flowforge-jobs/executions", paths[i])
	}
}

func TestHistoryUnavailable(t *testing.T) {
	t.Run("a cluster without the history API", func(t *testing.T) {
		res := newHarness(t).run("history")
		assert.Equal(t, ExitError, res.code)
		assert.Contains(t, res.err, "Error: the history API (history.flowforge.io/v1alpha1) is unavailable: is FlowForge's controller installed and `kubectl get apiservice v1alpha1.history.flowforge.io` Available?")
		assert.Empty(t, res.out)
	})
	t.Run("no cluster", func(t *testing.T) {
		h := newHarness(t)
		h.clientsetErr = errors.New("no Kubernetes configuration found")
		res := h.run("history")
		assert.Equal(t, ExitError, res.code)
		assert.Equal(t, "Error: no Kubernetes configuration found\n", res.err)
	})
	t.Run("an unreachable API server", func(t *testing.T) {
		srv := newHistoryServer(t)
		url := srv.URL
		srv.close()
		h := newHarness(t)
		h.historyURL = url
		res := h.run("history")
		assert.Equal(t, ExitError, res.code)
		assert.Contains(t, res.err, "Error: history: list executions: ")
		assert.Contains(t, res.err, "connection refused")
	})
}
