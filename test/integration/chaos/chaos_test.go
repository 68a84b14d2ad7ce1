package chaos

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/flowforge/flowforge/test/chaos"
	"github.com/flowforge/flowforge/test/localcluster"
	"github.com/flowforge/flowforge/test/localup"
)

// TestFaultRun drives every fault in turn under a stream of 52 Job creates
// a second (its rate is reported, not asserted: a rate is a wall-clock
// measurement, and this machine is shared; make chaos fails under 50) and
// requires what the issue asks of the full run: no failed
// admission (the stream's, and every webhook call the API server made),
// no Job lost or exported twice, and every fault run and recovered, or
// reported as not run with the reason (only the certificate rotation may
// be, on a stack that serves certificate files).
func TestFaultRun(t *testing.T) {
	root, err := localcluster.ModuleRoot()
	require.NoError(t, err)
	state := t.TempDir()
	logFile, err := os.Create(filepath.Join(state, "stack.log"))
	require.NoError(t, err)
	defer logFile.Close() //nolint:errcheck // a test log
	// The crash (SIGKILL) of a replica is make chaos's: its losses are
	// reported there, not held against the run, and it costs a restart.
	var faults []chaos.Fault
	for _, f := range chaos.Faults() {
		if !f.Informational {
			faults = append(faults, f)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 25*time.Minute)
	defer cancel()
	report, err := chaos.RunOnNewStack(ctx, chaos.StackOptions{
		StateDir: state, BinDir: binDir, PolicySource: filepath.Join(root, "policies"), Log: logFile,
	}, chaos.Options{
		Namespace:     localup.JobsNamespace,
		Run:           strconv.FormatInt(time.Now().Unix()%100000, 10),
		Rate:          52,
		RealRate:      2,
		Steady:        3 * time.Second,
		Settle:        2 * time.Second,
		BurstJobs:     30,
		TTL:           10 * time.Second,
		Timeout:       3 * time.Minute,
		ExportTimeout: 6 * time.Minute,
		Faults:        faults,
		Logf:          t.Logf,
	})
	if err != nil {
		data, _ := os.ReadFile(logFile.Name())
		t.Logf("stack log:\n%s", data)
	}
	require.NoError(t, err)
	t.Logf("%s\n%s", report.Summary(), report.Markdown())

	assert.Empty(t, report.Problems)
	assert.Zero(t, report.Totals[chaos.AdmissionFailed], "failed admissions")
	assert.Positive(t, report.Admitted)
	assert.Equal(t, report.Admitted, report.Recorded, "every admitted Job is recorded")
	assert.Equal(t, report.Admitted, report.ExportedOnce, "and exported once")
	ran := map[string]bool{}
	for _, p := range report.Phases {
		if p.Outcome.Skipped != "" {
			assert.Equal(t, "cert-rotation", p.Name, "only the rotation may not run: %s", p.Outcome.Skipped)
			assert.Contains(t, p.Outcome.Skipped, "--cert-mode")
			continue
		}
		ran[p.Name] = true
		assert.False(t, strings.HasPrefix(p.Outcome.Detail, "FAILED"), "%s: %s", p.Name, p.Outcome.Detail)
	}
	for _, f := range []string{"steady", "webhook-replica-stop", "policy-push", "apiserver-restart", "controller-kill"} {
		assert.True(t, ran[f], "%s ran", f)
	}
}
