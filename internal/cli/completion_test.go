package cli

import (
	"errors"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	k8stesting "k8s.io/client-go/testing"

	"github.com/flowforge/flowforge/contract"
)

// completion is what cobra's hidden __complete command printed: the
// candidates, and the directive (":4" is "no file completion").
func completion(t *testing.T, h *harness, args ...string) ([]string, string) {
	t.Helper()
	res := h.run(append([]string{"__complete"}, args...)...)
	require.Equal(t, ExitOK, res.code, res.err)
	ls := strings.Split(strings.TrimSpace(res.out), "\n")
	require.NotEmpty(t, ls)
	return ls[:len(ls)-1], ls[len(ls)-1]
}

func namespace(name string) *corev1.Namespace {
	return &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}
}

// otherJob is a Job in the namespace that is not an agent Job.
func otherJob() *batchv1.Job {
	return &batchv1.Job{ObjectMeta: metav1.ObjectMeta{Name: "backup", Namespace: testNS, Labels: map[string]string{contract.LabelJobID: "backup"}}}
}

func TestCompleteJobIDs(t *testing.T) {
	srv := newHistoryServer(t)
	seedHistoryList(t, srv) // h1, h2, h3
	cluster := func() []runtime.Object {
		return []runtime.Object{
			clusterJob(t, testRequest("fix-1")), clusterJob(t, testRequest("fix-2")), clusterJob(t, testRequest("h1")),
			otherJob(),
		}
	}
	tests := []struct {
		name string
		args []string
		want []string
	}{
		{"status: the cluster's and the history's", []string{"status", ""}, []string{"fix-1", "fix-2", "h1", "h2", "h3"}},
		{"status: a prefix", []string{"status", "fix"}, []string{"fix-1", "fix-2"}},
		{"logs: the history's too", []string{"logs", "h"}, []string{"h1", "h2", "h3"}},
		{"watch: only the cluster's", []string{"watch", ""}, []string{"fix-1", "fix-2", "h1"}},
		{"cancel: only the cluster's", []string{"cancel", ""}, []string{"fix-1", "fix-2", "h1"}},
		{"one id only", []string{"status", "fix-1", ""}, []string{}},
		{"another namespace has none", []string{"-n", "team-a", "watch", ""}, []string{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, cluster()...).withHistory(srv)
			got, directive := completion(t, h, tt.args...)
			if len(got) == 0 {
				got = []string{}
			}
			assert.Equal(t, tt.want, got)
			assert.Equal(t, ":4", directive, "no file names")
		})
	}
	t.Run("an unreachable cluster or history adds nothing, silently", func(t *testing.T) {
		h := newHarness(t)
		h.clientsetErr = errors.New("no cluster")
		h.historyURL = "http://127.0.0.1:1"
		got, directive := completion(t, h, "status", "")
		assert.Empty(t, got)
		assert.Equal(t, ":4", directive)
	})
	t.Run("a failing list adds nothing", func(t *testing.T) {
		h := newHarness(t, cluster()...)
		h.cs.PrependReactor("list", "jobs", func(k8stesting.Action) (bool, runtime.Object, error) {
			return true, nil, errors.New("forbidden")
		})
		got, _ := completion(t, h, "cancel", "")
		assert.Empty(t, got)
	})
}

func TestCompleteFlags(t *testing.T) {
	t.Run("namespaces for -n", func(t *testing.T) {
		h := newHarness(t, namespace("flowforge-jobs"), namespace("team-a"), namespace("team-b"), namespace("kube-system"))
		got, directive := completion(t, h, "status", "-n", "team")
		assert.Equal(t, []string{"team-a", "team-b"}, got)
		assert.Equal(t, ":4", directive)
		got, _ = completion(t, h, "list", "--namespace", "")
		assert.Equal(t, []string{"flowforge-jobs", "kube-system", "team-a", "team-b"}, got)
	})
	t.Run("namespaces when the cluster cannot list them", func(t *testing.T) {
		h := newHarness(t)
		h.cs.PrependReactor("list", "namespaces", func(k8stesting.Action) (bool, runtime.Object, error) {
			return true, nil, errors.New("forbidden")
		})
		got, _ := completion(t, h, "status", "-n", "")
		assert.Empty(t, got)
		h.clientsetErr = errors.New("no cluster")
		got, _ = completion(t, h, "status", "-n", "")
		assert.Empty(t, got)
	})
	t.Run("output formats", func(t *testing.T) {
		h := newHarness(t)
		got, _ := completion(t, h, "history", "-o", "")
		assert.Equal(t, []string{"table", "json", "yaml"}, got)
	})
	t.Run("commands and flags", func(t *testing.T) {
		h := newHarness(t)
		got, _ := completion(t, h, "")
		for _, c := range []string{"submit", "status", "watch", "logs", "cancel", "list", "history", "policy", "version", "completion"} {
			assert.Contains(t, strings.Join(got, "\n"), c+"\t", c)
		}
		got, _ = completion(t, h, "submit", "--wa")
		assert.Equal(t, []string{"--wait\tfollow the job until it ends and exit with its outcome"}, got)
	})
}

func TestCompletionScripts(t *testing.T) {
	for _, shell := range []string{"bash", "zsh", "fish"} {
		t.Run(shell, func(t *testing.T) {
			res := newHarness(t).run("completion", shell)
			require.Equal(t, ExitOK, res.code, res.err)
			assert.Contains(t, res.out, "__complete", "the script asks the binary for candidates")
			assert.Contains(t, res.out, "flowforge")
		})
	}
}
