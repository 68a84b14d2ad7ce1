package cli

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	authenticationv1 "k8s.io/api/authentication/v1"
	batchv1 "k8s.io/api/batch/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	k8stesting "k8s.io/client-go/testing"
	"sigs.k8s.io/yaml"

	"github.com/flowforge/flowforge/contract"
	"github.com/flowforge/flowforge/history"
	"github.com/flowforge/flowforge/templates"
)

func TestStatusFromTheCluster(t *testing.T) {
	job := clusterJob(t, testRequest("s1"), running)
	job.Annotations[contract.AnnotationPolicyRevision] = "rev-3"

	t.Run("table", func(t *testing.T) {
		h := newHarness(t, job)
		res := h.run("status", "s1")
		require.Equal(t, ExitOK, res.code, res.err)
		assert.Equal(t, [][]string{
			{"ID", "USER", "PHASE", "ATTEMPTS", "AGE", "DURATION", "REPOSITORY", "BRANCH", "MESSAGE"},
			{"s1", "alice", "Running", "1", "10m0s", "9m0s", "acme/widgets", "fix-s1", "-"},
		}, fields(res.out)[:2])
		assert.Equal(t, "Deletion: never (no TTL); delete the Job yourself when done", lines(res.out)[2])
	})
	t.Run("table of a finished job", func(t *testing.T) {
		h := newHarness(t, clusterJob(t, testRequest("s2"), timedOut))
		res := h.run("status", "s2")
		require.Equal(t, ExitOK, res.code, res.err)
		out := lines(res.out)
		require.Len(t, out, 3)
		assert.Equal(t, []string{"s2", "alice", "TimedOut", "2", "10m0s", "7m0s", "acme/widgets", "fix-s2"}, strings.Fields(out[1])[:8])
		assert.True(t, strings.HasSuffix(out[1], "Job was active longer than specified deadline"), out[1])
	})
	t.Run("when a finished job is deleted", func(t *testing.T) {
		ttl := func(j *batchv1.Job) { j.Annotations[contract.AnnotationTTLSecondsAfterFinished] = "600" }
		h := newHarness(t, clusterJob(t, testRequest("s3"), timedOut, ttl))
		res := h.run("status", "s3")
		require.Equal(t, ExitOK, res.code, res.err)
		assert.Equal(t, "Deletion: at 2026-03-01T12:08:00Z (in 8m0s), by FlowForge once its logs are exported", lines(res.out)[2])
		res = h.run("status", "s3", "-o", "json")
		require.Equal(t, ExitOK, res.code, res.err)
		var st contract.Status
		require.NoError(t, json.Unmarshal([]byte(res.out), &st), res.out)
		require.NotNil(t, st.DeleteAfter)
		assert.Equal(t, t0.Add(8*time.Minute), st.DeleteAfter.UTC())
		assert.Equal(t, contract.DeletedByFlowForge, st.DeletedBy)
	})
	t.Run("json", func(t *testing.T) {
		h := newHarness(t, job)
		res := h.run("status", "s1", "-o", "json")
		require.Equal(t, ExitOK, res.code, res.err)
		var st contract.Status
		require.NoError(t, json.Unmarshal([]byte(res.out), &st), res.out)
		assert.Equal(t, "s1", st.ID)
		assert.Equal(t, "alice", st.UserID)
		assert.Equal(t, contract.PhaseRunning, st.Phase)
		assert.Equal(t, "rev-3", st.PolicyRevision)
		assert.Equal(t, "claude-job-s1", st.Name)
		assert.Equal(t, testNS, st.Namespace)
		assert.Contains(t, res.out, "\n  \"phase\": \"Running\",\n", "indented")
	})
	t.Run("yaml", func(t *testing.T) {
		h := newHarness(t, job)
		res := h.run("status", "s1", "--output=yaml")
		require.Equal(t, ExitOK, res.code, res.err)
		var st contract.Status
		require.NoError(t, yaml.Unmarshal([]byte(res.out), &st), res.out)
		assert.Equal(t, contract.PhaseRunning, st.Phase)
		assert.Equal(t, int32(1), st.Active)
		assert.Contains(t, res.out, "phase: Running\n")
	})
	t.Run("unknown output format", func(t *testing.T) {
		h := newHarness(t, job)
		res := h.run("status", "s1", "-o", "xml")
		assert.Equal(t, ExitUsage, res.code)
		assert.Equal(t, "Error: unknown output format \"xml\": use table, json or yaml\n", res.err)
		assert.Empty(t, res.out)
	})
	t.Run("needs one id", func(t *testing.T) {
		h := newHarness(t, job)
		res := h.run("status")
		assert.Equal(t, ExitError, res.code)
		assert.Contains(t, res.err, "accepts 1 arg(s), received 0")
	})
	t.Run("no cluster", func(t *testing.T) {
		h := newHarness(t, job)
		h.clientErr = errors.New("no Kubernetes configuration found")
		res := h.run("status", "s1")
		assert.Equal(t, ExitError, res.code)
		assert.Equal(t, "Error: no Kubernetes configuration found\n", res.err)
	})
	t.Run("the API server refuses", func(t *testing.T) {
		h := newHarness(t, job)
		h.cs.PrependReactor("list", "jobs", func(k8stesting.Action) (bool, runtime.Object, error) {
			return true, nil, errors.New("forbidden: user cannot get jobs")
		})
		res := h.run("status", "s1")
		assert.Equal(t, ExitError, res.code)
		assert.Contains(t, res.err, "forbidden: user cannot get jobs")
	})
}

// seedHistory records job "gone-1": Failed after two attempts, exported.
func seedHistory(t *testing.T, s *historyServer) {
	t.Helper()
	s.addJob(t, history.Job{
		UID: "uid-gone-1", ID: "gone-1", Namespace: testNS, Name: "claude-job-gone-1", User: "alice",
		Repository: "acme/widgets", Branch: "main", Status: history.StatusFailed, Message: "BackoffLimitExceeded",
		Created: t0.Add(-3 * time.Hour), Started: at(-3*time.Hour + time.Minute), Finished: at(-2 * time.Hour),
	},
		history.Attempt{PodUID: "p1", Number: 1, Pod: "claude-job-gone-1-a", Node: "node-1", Phase: "Failed",
			Started: at(-3*time.Hour + time.Minute), Finished: at(-150 * time.Minute), ExitCode: new(int32(1)), Reason: "Error", Counted: new(true)},
		history.Attempt{PodUID: "p2", Number: 2, Pod: "claude-job-gone-1-b", Phase: "Failed",
			Started: at(-150 * time.Minute), Finished: at(-2 * time.Hour), ExitCode: new(int32(137)), Reason: "OOMKilled", Counted: new(true),
			PeakCPUMillicores: 1500, PeakMemoryBytes: 2 << 30},
		history.Attempt{PodUID: "p3", Number: 3, Pod: "claude-job-gone-1-c", Phase: "Pending"},
	)
}

func TestStatusFallsBackToTheHistory(t *testing.T) {
	srv := newHistoryServer(t)
	seedHistory(t, srv)

	t.Run("table with attempts", func(t *testing.T) {
		h := newHarness(t)
		res := h.withHistory(srv).run("status", "gone-1")
		require.Equal(t, ExitOK, res.code, res.err)
		assert.Equal(t, [][]string{
			{"ID", "USER", "STATUS", "ATTEMPTS", "AGE", "DURATION", "REPOSITORY", "BRANCH", "MESSAGE"},
			{"gone-1", "alice", "Failed", "3", "3h0m", "59m0s", "acme/widgets", "main", "BackoffLimitExceeded"},
			{"ATTEMPT", "POD", "NODE", "PHASE", "EXIT", "REASON", "COUNTED", "DURATION", "PEAK-CPU", "PEAK-MEMORY"},
			{"1", "claude-job-gone-1-a", "node-1", "Failed", "1", "Error", "true", "29m0s", "-", "-"},
			{"2", "claude-job-gone-1-b", "-", "Failed", "137", "OOMKilled", "true", "30m0s", "1.5", "2Gi"},
			{"3", "claude-job-gone-1-c", "-", "Pending", "-", "-", "-", "-", "-", "-"},
		}, fields(res.out))
		assert.Contains(t, res.out, "BackoffLimitExceeded\n\nATTEMPT", "a blank line separates the tables")
	})
	t.Run("json", func(t *testing.T) {
		h := newHarness(t)
		res := h.withHistory(srv).run("status", "gone-1", "-o", "json")
		require.Equal(t, ExitOK, res.code, res.err)
		var rec history.Job
		require.NoError(t, json.Unmarshal([]byte(res.out), &rec), res.out)
		assert.Equal(t, "uid-gone-1", rec.UID)
		assert.Equal(t, history.StatusFailed, rec.Status)
		require.Len(t, rec.Attempts, 3)
		assert.Equal(t, "OOMKilled", rec.Attempts[1].Reason)
	})
	t.Run("unknown output format", func(t *testing.T) {
		h := newHarness(t)
		res := h.withHistory(srv).run("status", "gone-1", "-o", "wide")
		assert.Equal(t, ExitUsage, res.code)
		assert.Contains(t, res.err, `unknown output format "wide"`)
	})
	t.Run("in neither", func(t *testing.T) {
		h := newHarness(t)
		res := h.withHistory(srv).run("status", "never")
		assert.Equal(t, ExitError, res.code)
		assert.Equal(t, "Error: job \"never\" not found in namespace flowforge-jobs or in the history; `flowforge list` and `flowforge history` show the jobs there are, -n another namespace\n", res.err)
		assert.Empty(t, res.out)
	})
	t.Run("no history API", func(t *testing.T) {
		h := newHarness(t)
		res := h.run("status", "gone-1")
		assert.Equal(t, ExitError, res.code)
		assert.Contains(t, res.err, "Error: job \"gone-1\" not found in namespace flowforge-jobs, and its history is unavailable: ")
		assert.Contains(t, res.err, "the history API (history.flowforge.io/v1alpha1) is unavailable")
	})
}

func TestWatch(t *testing.T) {
	tests := []struct {
		name  string
		state func(*batchv1.Job)
		code  int
		out   string
	}{
		{"succeeded", succeeded, ExitOK, "job w Succeeded\n"},
		{"failed", failed, ExitFailed, "job w Failed: Job has reached the specified backoff limit\n"},
		{"timed out", timedOut, ExitTimedOut, "job w TimedOut: Job was active longer than specified deadline\n"},
		{"cancelled", cancelled, ExitCancelled, "job w Cancelled: cancelled by bob: wrong branch\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, clusterJob(t, testRequest("w"), tt.state))
			res := h.run("watch", "w")
			assert.Equal(t, tt.code, res.code)
			assert.Empty(t, res.err)
			assert.True(t, strings.HasSuffix(res.out, tt.out), res.out)
		})
	}
}

func TestWatchProgress(t *testing.T) {
	t.Run("plain lines when not a terminal", func(t *testing.T) {
		h := newHarness(t, clusterJob(t, testRequest("w")))
		// The same status twice (a new resource version only) shows once.
		h.scriptWatch("w", running, running, succeeded)
		res := h.run("watch", "w")
		require.Equal(t, ExitOK, res.code, res.err)
		assert.Equal(t, "12:00:00  w  Pending    attempts 0  active 0  0s\n"+
			"12:00:00  w  Running    attempts 1  active 1  0s\n"+
			"12:00:00  w  Succeeded  attempts 1  active 0  0s\n"+
			"job w Succeeded\n", res.out)
	})
	t.Run("a line rewritten in place on a terminal", func(t *testing.T) {
		h := newHarness(t, clusterJob(t, testRequest("w")))
		h.terminal = true
		h.scriptWatch("w", running, failed)
		res := h.run("watch", "w")
		require.Equal(t, ExitFailed, res.code, res.err)
		assert.Equal(t, "\r\033[K⠙ w  Pending    attempts 0  active 0  0s"+
			"\r\033[K⠹ w  Running    attempts 1  active 1  0s"+
			"\r\033[K⠸ w  Failed     attempts 2  active 0  0s"+
			"\r\033[K"+
			"job w Failed: Job has reached the specified backoff limit\n", res.out)
		assert.Empty(t, res.err)
	})
}

func TestWatchErrors(t *testing.T) {
	t.Run("not found", func(t *testing.T) {
		h := newHarness(t)
		res := h.run("watch", "nope")
		assert.Equal(t, ExitError, res.code)
		assert.Equal(t, "Error: job \"nope\" not found in namespace flowforge-jobs\n", res.err)
		assert.Empty(t, res.out, "no progress was shown")
	})
	t.Run("deleted while running, on a terminal", func(t *testing.T) {
		h := newHarness(t, clusterJob(t, testRequest("w"), running))
		h.terminal = true
		h.scriptWatch("w", func(j *batchv1.Job) {
			j.DeletionTimestamp = &metav1.Time{Time: t0}
		})
		res := h.run("watch", "w")
		assert.Equal(t, ExitError, res.code)
		assert.Contains(t, res.err, "job was deleted before it finished")
		assert.True(t, strings.HasSuffix(res.out, "\r\033[K"), "the progress line is cleared: %q", res.out)
	})
	t.Run("no cluster", func(t *testing.T) {
		h := newHarness(t)
		h.clientErr = errors.New("no Kubernetes configuration found")
		res := h.run("watch", "w")
		assert.Equal(t, ExitError, res.code)
		assert.Equal(t, "Error: no Kubernetes configuration found\n", res.err)
	})
}

func listSeed(t *testing.T) []runtime.Object {
	t.Helper()
	older := func(d time.Duration) func(*batchv1.Job) {
		return func(j *batchv1.Job) { j.CreationTimestamp = metav1.NewTime(t0.Add(-d)) }
	}
	bob := func(id string) templates.Request {
		r := testRequest(id)
		r.UserID, r.Repository = "bob", "bob/tools"
		return r
	}
	return []runtime.Object{
		clusterJob(t, testRequest("l-run"), running, older(5*time.Minute)),
		clusterJob(t, testRequest("l-done"), succeeded, older(20*time.Minute)),
		clusterJob(t, bob("l-bob"), failed, older(30*time.Minute)),
		clusterJob(t, bob("l-new"), older(time.Minute)),
	}
}

func TestList(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want [][]string
	}{
		{
			name: "all, oldest first",
			want: [][]string{
				{"ID", "USER", "PHASE", "ATTEMPTS", "AGE", "DURATION", "REPOSITORY", "BRANCH"},
				{"l-bob", "bob", "Failed", "2", "30m0s", "7m0s", "bob/tools", "fix-l-bob"},
				{"l-done", "alice", "Succeeded", "1", "20m0s", "7m0s", "acme/widgets", "fix-l-done"},
				{"l-run", "alice", "Running", "1", "5m0s", "9m0s", "acme/widgets", "fix-l-run"},
				{"l-new", "bob", "Pending", "0", "1m0s", "-", "bob/tools", "fix-l-new"},
			},
		},
		{
			name: "by user",
			args: []string{"--user", "alice"},
			want: [][]string{
				{"ID", "USER", "PHASE", "ATTEMPTS", "AGE", "DURATION", "REPOSITORY", "BRANCH"},
				{"l-done", "alice", "Succeeded", "1", "20m0s", "7m0s", "acme/widgets", "fix-l-done"},
				{"l-run", "alice", "Running", "1", "5m0s", "9m0s", "acme/widgets", "fix-l-run"},
			},
		},
		{
			name: "by status",
			args: []string{"--status", "Failed"},
			want: [][]string{
				{"ID", "USER", "PHASE", "ATTEMPTS", "AGE", "DURATION", "REPOSITORY", "BRANCH"},
				{"l-bob", "bob", "Failed", "2", "30m0s", "7m0s", "bob/tools", "fix-l-bob"},
			},
		},
		{
			name: "by user and status",
			args: []string{"--user", "bob", "--status", "Pending"},
			want: [][]string{
				{"ID", "USER", "PHASE", "ATTEMPTS", "AGE", "DURATION", "REPOSITORY", "BRANCH"},
				{"l-new", "bob", "Pending", "0", "1m0s", "-", "bob/tools", "fix-l-new"},
			},
		},
		{
			name: "none",
			args: []string{"--user", "carol"},
			want: [][]string{{"ID", "USER", "PHASE", "ATTEMPTS", "AGE", "DURATION", "REPOSITORY", "BRANCH"}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, listSeed(t)...)
			res := h.run(append([]string{"list"}, tt.args...)...)
			require.Equal(t, ExitOK, res.code, res.err)
			assert.Equal(t, tt.want, fields(res.out))
		})
	}
}

func TestListStructured(t *testing.T) {
	ids := func(list []contract.Status) []string {
		var out []string
		for _, s := range list {
			out = append(out, s.ID+"="+string(s.Phase))
		}
		return out
	}
	t.Run("json", func(t *testing.T) {
		h := newHarness(t, listSeed(t)...)
		res := h.run("list", "-o", "json", "--user", "alice")
		require.Equal(t, ExitOK, res.code, res.err)
		var list []contract.Status
		require.NoError(t, json.Unmarshal([]byte(res.out), &list), res.out)
		assert.Equal(t, []string{"l-done=Succeeded", "l-run=Running"}, ids(list))
	})
	t.Run("yaml", func(t *testing.T) {
		h := newHarness(t, listSeed(t)...)
		res := h.run("list", "-o", "yaml", "--status", "Succeeded")
		require.Equal(t, ExitOK, res.code, res.err)
		var list []contract.Status
		require.NoError(t, yaml.Unmarshal([]byte(res.out), &list), res.out)
		assert.Equal(t, []string{"l-done=Succeeded"}, ids(list))
	})
	t.Run("an empty list is [] in json", func(t *testing.T) {
		h := newHarness(t)
		res := h.run("list", "-o", "json")
		require.Equal(t, ExitOK, res.code, res.err)
		assert.Equal(t, "[]\n", res.out)
	})
	t.Run("an empty list is [] in yaml", func(t *testing.T) {
		h := newHarness(t)
		res := h.run("list", "-o", "yaml")
		require.Equal(t, ExitOK, res.code, res.err)
		assert.Equal(t, "[]\n", res.out)
	})
}

func TestListErrors(t *testing.T) {
	t.Run("an invalid user", func(t *testing.T) {
		h := newHarness(t)
		res := h.run("list", "--user", "not a label!")
		assert.Equal(t, ExitError, res.code)
		assert.Contains(t, res.err, `user id "not a label!" is not a valid label value`)
	})
	t.Run("no cluster", func(t *testing.T) {
		h := newHarness(t)
		h.clientErr = errors.New("no Kubernetes configuration found")
		res := h.run("list")
		assert.Equal(t, ExitError, res.code)
		assert.Equal(t, "Error: no Kubernetes configuration found\n", res.err)
	})
	t.Run("unknown output format", func(t *testing.T) {
		h := newHarness(t)
		res := h.run("list", "-o", "csv")
		assert.Equal(t, ExitUsage, res.code)
		assert.Contains(t, res.err, `unknown output format "csv"`)
	})
	t.Run("arguments", func(t *testing.T) {
		h := newHarness(t)
		res := h.run("list", "x")
		assert.Equal(t, ExitError, res.code)
		assert.Contains(t, res.err, `unknown command "x"`)
	})
}

func TestCancel(t *testing.T) {
	t.Run("writes who, why and when", func(t *testing.T) {
		h := newHarness(t, clusterJob(t, testRequest("c1"), running))
		res := h.run("cancel", "c1", "--by", "carol", "--reason", "not needed any more")
		require.Equal(t, ExitOK, res.code, res.err)
		assert.Equal(t, "job c1: cancel requested by carol (Cancelling)\n", res.out)
		ann := h.job("c1").Annotations
		assert.Equal(t, "carol", ann[contract.AnnotationCancelRequestedBy])
		assert.Equal(t, "not needed any more", ann[contract.AnnotationCancelReason])
		_, err := time.Parse(time.RFC3339, ann[contract.AnnotationCancelRequestedAt])
		assert.NoError(t, err, "requested-at is an RFC 3339 time")
	})
	t.Run("defaults", func(t *testing.T) {
		h := newHarness(t, clusterJob(t, testRequest("c2")))
		res := h.run("cancel", "c2")
		require.Equal(t, ExitOK, res.code, res.err)
		ann := h.job("c2").Annotations
		assert.Equal(t, testUser, ann[contract.AnnotationCancelRequestedBy], "the authenticated user, not a local name")
		assert.Equal(t, "cancelled from the flowforge CLI", ann[contract.AnnotationCancelReason])
		assert.Equal(t, "job c2: cancel requested by "+testUser+" (Cancelling)\n", res.out)
	})
	t.Run("cancelling twice keeps the first request", func(t *testing.T) {
		job := clusterJob(t, testRequest("c3"), running)
		job.Annotations[contract.AnnotationCancelRequestedBy] = "bob"
		job.Annotations[contract.AnnotationCancelReason] = "first"
		job.Annotations[contract.AnnotationCancelRequestedAt] = t0.Format(time.RFC3339)
		h := newHarness(t, job)
		res := h.run("cancel", "c3", "--by", "carol", "--reason", "second")
		require.Equal(t, ExitOK, res.code, res.err)
		assert.Equal(t, "job c3: cancel requested by bob (Cancelling)\n", res.out)
		assert.Equal(t, "first", h.job("c3").Annotations[contract.AnnotationCancelReason])
	})
	t.Run("an already finished job", func(t *testing.T) {
		h := newHarness(t, clusterJob(t, testRequest("c4"), succeeded))
		res := h.run("cancel", "c4", "--by", "carol")
		require.Equal(t, ExitOK, res.code, res.err)
		assert.Equal(t, "job c4 has already finished: cancel job c4: job already finished (Succeeded)\n", res.out)
		assert.NotContains(t, h.job("c4").Annotations, contract.AnnotationCancelRequestedBy)
	})
	t.Run("not found", func(t *testing.T) {
		h := newHarness(t)
		res := h.run("cancel", "c5", "--by", "carol")
		assert.Equal(t, ExitError, res.code)
		assert.Equal(t, "Error: job \"c5\" not found in namespace flowforge-jobs\n", res.err)
		assert.Empty(t, res.out)
	})
	t.Run("an empty --by", func(t *testing.T) {
		h := newHarness(t, clusterJob(t, testRequest("c6"), running))
		res := h.run("cancel", "c6", "--by", " ")
		assert.Equal(t, ExitError, res.code)
		assert.Contains(t, res.err, "who is cancelling (by) is required")
	})
	t.Run("the API server does not say who you are", func(t *testing.T) {
		h := newHarness(t, clusterJob(t, testRequest("c8"), running))
		h.cs.PrependReactor("create", "selfsubjectreviews", func(k8stesting.Action) (bool, runtime.Object, error) {
			return true, &authenticationv1.SelfSubjectReview{}, nil
		})
		res := h.run("cancel", "c8")
		assert.Equal(t, ExitError, res.code)
		assert.Contains(t, res.err, "cancel: who is cancelling: the API server did not say who this client is")
		assert.NotContains(t, h.job("c8").Annotations, contract.AnnotationCancelRequestedAt, "no request without a requester")
	})
	t.Run("no cluster", func(t *testing.T) {
		h := newHarness(t)
		h.clientErr = errors.New("no Kubernetes configuration found")
		res := h.run("cancel", "c7")
		assert.Equal(t, ExitError, res.code)
		assert.Equal(t, "Error: no Kubernetes configuration found\n", res.err)
	})
}

func TestDeletionLine(t *testing.T) {
	ttl := int64(3600)
	at := t0.Add(30 * time.Minute)
	past := t0.Add(-time.Minute)
	tests := []struct {
		name string
		st   contract.Status
		want string
	}{
		{"no TTL", contract.Status{}, "never (no TTL); delete the Job yourself when done"},
		{"running", contract.Status{TTLSecondsAfterFinished: &ttl, DeletedBy: contract.DeletedByFlowForge}, "1h0m0s after it finishes, by FlowForge once its logs are exported"},
		{"finished", contract.Status{TTLSecondsAfterFinished: &ttl, DeletedBy: contract.DeletedByFlowForge, DeleteAfter: &at}, "at 2026-03-01T12:30:00Z (in 30m0s), by FlowForge once its logs are exported"},
		{"due, export pending", contract.Status{TTLSecondsAfterFinished: &ttl, DeletedBy: contract.DeletedByFlowForge, DeleteAfter: &past}, "due since 2026-03-01T11:59:00Z (1m0s ago), as soon as its logs are exported"},
		{"legacy", contract.Status{TTLSecondsAfterFinished: &ttl, DeletedBy: contract.DeletedByTTLController, DeleteAfter: &at}, "at 2026-03-01T12:30:00Z (in 30m0s), by the built-in TTL controller"},
		{"legacy due", contract.Status{TTLSecondsAfterFinished: &ttl, DeletedBy: contract.DeletedByTTLController, DeleteAfter: &past}, "due since 2026-03-01T11:59:00Z (1m0s ago), by the built-in TTL controller"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			assert.Equal(t, tc.want, deletion(tc.st, t0))
		})
	}
}

func TestPeakUsageFormats(t *testing.T) {
	for _, tc := range []struct {
		cpu, mem         int64
		wantCPU, wantMem string
	}{
		{0, 0, "-", "-"},
		{250, 512, "250m", "512"},
		{1000, 512 << 10, "1", "512Ki"},
		{1500, 178257920, "1.5", "170Mi"},
		{16000, 1610612736, "16", "1.5Gi"},
	} {
		t.Run(tc.wantCPU+"/"+tc.wantMem, func(t *testing.T) {
			assert.Equal(t, tc.wantCPU, millicores(tc.cpu))
			assert.Equal(t, tc.wantMem, memoryBytes(tc.mem))
		})
	}
}
