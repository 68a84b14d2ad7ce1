package cli

import (
	"flag"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	batchv1 "k8s.io/api/batch/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/flowforge/flowforge/contract"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

// TestStableJSON pins the JSON documents that README.md and docs/cli.md
// document (and scripts parse with jq): a field renamed or removed fails
// here. `go test ./internal/cli -run TestStableJSON -update` rewrites them
// after a deliberate, documented change.
func TestStableJSON(t *testing.T) {
	srv := newHistoryServer(t)
	seedHistory(t, srv)
	seedHistoryList(t, srv)
	live := clusterJob(t, testRequest("live-1"), running, func(j *batchv1.Job) {
		j.Annotations[contract.AnnotationPolicyRevision] = "2026-11-27-14571c1bbc24"
		j.Labels[contract.LabelUserID] = "alice"
		j.Status.StartTime = &metav1.Time{Time: t0.Add(-9 * time.Minute)}
	})
	tests := []struct {
		golden string
		args   []string
	}{
		{"status-cluster.json", []string{"status", "live-1", "-o", "json"}},
		{"status-history.json", []string{"status", "gone-1", "-o", "json"}},
		{"history.json", []string{"history", "--user", "alice", "-o", "json"}},
		{"list.json", []string{"list", "-o", "json"}},
	}
	for _, tt := range tests {
		t.Run(tt.golden, func(t *testing.T) {
			res := newHarness(t, live.DeepCopy()).withHistory(srv).run(tt.args...)
			require.Equal(t, ExitOK, res.code, res.err)
			path := filepath.Join("testdata", tt.golden)
			if *update {
				require.NoError(t, os.MkdirAll("testdata", 0o755))
				require.NoError(t, os.WriteFile(path, []byte(res.out), 0o644))
			}
			want, err := os.ReadFile(path)
			require.NoError(t, err, "run with -update to create it")
			assert.JSONEq(t, string(want), res.out)
		})
	}
}
