package cli

import (
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"

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
			res := h.run(append([]string{"logs", "gone-1", "--history-url", srv.URL}, tt.args...)...)
			require.Equal(t, ExitOK, res.code, res.err)
			assert.Equal(t, tt.want, res.out)
		})
	}
	t.Run("in neither", func(t *testing.T) {
		h := newHarness(t)
		res := h.run("logs", "never", "--history-url", srv.URL)
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
			res := h.run(append([]string{"history", "--history-url", srv.URL}, tt.args...)...)
			require.Equal(t, ExitOK, res.code, res.err)
			assert.Equal(t, tt.want, fields(res.out))
		})
	}
	t.Run("json", func(t *testing.T) {
		h := newHarness(t)
		res := h.run("history", "--history-url", srv.URL, "-o", "json", "--user", "bob")
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
		res := h.run("history", "--history-url", srv.URL, "-o", "json", "--user", "carol")
		require.Equal(t, ExitOK, res.code, res.err)
		assert.Equal(t, "[]\n", res.out)
	})
	t.Run("yaml", func(t *testing.T) {
		h := newHarness(t)
		res := h.run("history", "--history-url", srv.URL, "-o", "yaml", "--status", "Running")
		require.Equal(t, ExitOK, res.code, res.err)
		assert.Contains(t, res.out, "- ")
		assert.Contains(t, res.out, "id: h3\n")
		assert.NotContains(t, res.out, "id: h1\n")
	})
	t.Run("a bad --since is the server's error", func(t *testing.T) {
		h := newHarness(t)
		res := h.run("history", "--history-url", srv.URL, "--since", "yesterday")
		assert.Equal(t, ExitError, res.code)
		assert.Contains(t, res.err, "400 Bad Request")
		assert.Contains(t, res.err, `since "yesterday": want a duration like 24h or an RFC3339 time`)
	})
	t.Run("unknown output format", func(t *testing.T) {
		h := newHarness(t)
		res := h.run("history", "--history-url", srv.URL, "-o", "toml")
		assert.Equal(t, ExitUsage, res.code)
		assert.Contains(t, res.err, `unknown output format "toml"`)
	})
}

// endpoints is the ConfigMap that publishes the history API's address.
func endpoints(data map[string]string) runtime.Object {
	return &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{Namespace: "flowforge-system", Name: "flowforge-endpoints"},
		Data:       data,
	}
}

func TestHistoryDiscovery(t *testing.T) {
	good := newHistoryServer(t)
	seedHistoryList(t, good)
	// A history API that knows nothing, to tell which one was asked.
	empty := newHistoryServer(t)

	tests := []struct {
		name    string
		env     string
		flag    string
		cluster []runtime.Object
	}{
		{name: "the flag wins over the environment and the cluster", env: empty.URL, flag: good.URL,
			cluster: []runtime.Object{endpoints(map[string]string{"historyURL": empty.URL})}},
		{name: "the environment wins over the cluster", env: good.URL,
			cluster: []runtime.Object{endpoints(map[string]string{"historyURL": empty.URL})}},
		{name: "the cluster's ConfigMap", cluster: []runtime.Object{endpoints(map[string]string{"historyURL": good.URL})}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, tt.cluster...)
			t.Setenv("FLOWFORGE_HISTORY_URL", tt.env)
			args := []string{"history", "--user", "bob"}
			if tt.flag != "" {
				args = append(args, "--history-url", tt.flag)
			}
			res := h.run(args...)
			require.Equal(t, ExitOK, res.code, res.err)
			require.Len(t, fields(res.out), 2, res.out)
			assert.Equal(t, "h2", fields(res.out)[1][0])
		})
	}
}

func TestHistoryUnavailable(t *testing.T) {
	tests := []struct {
		name         string
		cluster      []runtime.Object
		clientsetErr error
		want         string
	}{
		{
			name: "no ConfigMap",
			want: `Error: no --history-url or $FLOWFORGE_HISTORY_URL, and ConfigMap flowforge-system/flowforge-endpoints is unreadable: configmaps "flowforge-endpoints" not found`,
		},
		{
			name:    "a ConfigMap without the address",
			cluster: []runtime.Object{endpoints(map[string]string{"other": "x"})},
			want:    "Error: ConfigMap flowforge-system/flowforge-endpoints has no historyURL",
		},
		{
			name:         "no cluster",
			clientsetErr: errors.New("no Kubernetes configuration found"),
			want:         "Error: no Kubernetes configuration found",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, tt.cluster...)
			h.clientsetErr = tt.clientsetErr
			res := h.run("history")
			assert.Equal(t, ExitError, res.code)
			assert.Equal(t, tt.want+"\n", res.err)
			assert.Empty(t, res.out)
		})
	}
	t.Run("an unreachable history API", func(t *testing.T) {
		srv := newHistoryServer(t)
		url := srv.URL
		srv.close()
		h := newHarness(t)
		res := h.run("history", "--history-url", url)
		assert.Equal(t, ExitError, res.code)
		assert.Contains(t, res.err, "history: the history API at "+url+" is unreachable")
	})
}
