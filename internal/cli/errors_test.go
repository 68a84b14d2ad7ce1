package cli

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/rest"

	"github.com/flowforge/flowforge/history"
	"github.com/flowforge/flowforge/jobs"
)

// TestErrorMessages: each error says once what failed, with the object,
// and the next step where there is one; nothing stutters.
func TestErrorMessages(t *testing.T) {
	srv := newHistoryServer(t)
	seedHistory(t, srv)
	const unserved = "the history API (history.flowforge.io/v1alpha1) is unavailable: is FlowForge's controller installed and " +
		"`kubectl get apiservice v1alpha1.history.flowforge.io` Available? (the server could not find the requested resource (get executions.history.flowforge.io nosuch))"
	const nowhere = `Error: job "nosuch" not found in namespace %s or in the history; ` +
		"`flowforge list` and `flowforge history` show the jobs there are, -n another namespace\n"
	tests := []struct {
		name string
		args []string
		code int
		want string
	}{
		{"status: in neither", []string{"status", "nosuch"}, ExitError, fmt.Sprintf(nowhere, "flowforge-jobs")},
		{"status: in neither, another namespace", []string{"-n", "team-a", "status", "nosuch"}, ExitError, fmt.Sprintf(nowhere, "team-a")},
		{"logs: in neither", []string{"logs", "nosuch"}, ExitError, fmt.Sprintf(nowhere, "flowforge-jobs")},
		{"watch: not in the cluster", []string{"watch", "nosuch"}, ExitError, "Error: job \"nosuch\" not found in namespace flowforge-jobs\n"},
		{"cancel: not in the cluster", []string{"cancel", "nosuch"}, ExitError, "Error: job \"nosuch\" not found in namespace flowforge-jobs\n"},
		{"status: no history API", []string{"status", "nosuch"}, ExitError,
			"Error: job \"nosuch\" not found in namespace flowforge-jobs, and its history is unavailable: " + unserved + "\n"},
		{"logs: no history API", []string{"logs", "nosuch"}, ExitError,
			"Error: job \"nosuch\" not found in namespace flowforge-jobs, and its archived logs are unavailable: " + unserved + "\n"},
		{"an unknown output format", []string{"watch", "x", "-o", "xml"}, ExitUsage, "Error: unknown output format \"xml\": use table, json or yaml\n"},
		{"logs -f -o json", []string{"logs", "x", "-f", "-o", "json"}, ExitUsage, "Error: -f streams text: drop -o, or drop -f to get the logs as one JSON or YAML document\n"},
		{"submit --logs without --wait", submitArgs("x", "--logs"), ExitUsage, "Error: --logs streams the logs while --wait follows the job: add --wait\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t)
			if !strings.Contains(tt.name, "no history API") {
				h.withHistory(srv)
			}
			res := h.run(tt.args...)
			assert.Equal(t, tt.code, res.code)
			assert.Equal(t, tt.want, res.err)
			assert.Empty(t, res.out)
		})
	}
}

func TestNotFoundErrors(t *testing.T) {
	apiErr := apierrors.NewNotFound(schema.GroupResource{Group: "batch", Resource: "jobs"}, "claude-job-x")
	tests := []struct {
		name    string
		err     error
		msg     string
		is      []error
		apiKind bool
	}{
		{"the cluster", &jobs.NotFoundError{ID: "x", Namespace: "ns", Cause: apiErr},
			`job "x" not found in namespace ns`, []error{jobs.ErrNotFound}, true},
		{"the cluster, from a watch", &jobs.NotFoundError{ID: "x", Namespace: "ns"},
			`job "x" not found in namespace ns`, []error{jobs.ErrNotFound}, false},
		{"anywhere", &notFoundAnywhere{id: "x", namespace: "ns", program: "kubectl flowforge"},
			`job "x" not found in namespace ns or in the history; ` + "`kubectl flowforge list` and `kubectl flowforge history` show the jobs there are, -n another namespace",
			[]error{jobs.ErrNotFound, history.ErrNotFound}, false},
		{"history unavailable", historyUnavailable("x", "ns", "its history is", errors.New("connection refused")),
			`job "x" not found in namespace ns, and its history is unavailable: connection refused`, nil, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			require.Equal(t, tt.msg, tt.err.Error())
			for _, target := range tt.is {
				assert.ErrorIs(t, tt.err, target)
			}
			assert.Equal(t, tt.apiKind, apierrors.IsNotFound(tt.err))
		})
	}
}

func TestHistoryClientNotFound(t *testing.T) {
	srv := newHistoryServer(t)
	hc, err := history.NewAPIClient(&rest.Config{Host: srv.URL}, testNS)
	require.NoError(t, err)
	_, err = hc.Job(t.Context(), "nosuch")
	require.ErrorIs(t, err, history.ErrNotFound)
	assert.Equal(t, `job "nosuch" not found in the history`, err.Error(), "said once, without the server's words again")
	err = hc.Logs(t.Context(), "nosuch", 0, "", nil)
	require.ErrorIs(t, err, history.ErrNotFound)
	assert.Equal(t, `job "nosuch" not found in the history`, err.Error())
}
