// Command chaos runs FlowForge's fault run (test/chaos) on a local stack of
// its own and prints one summary line; the progress log and the report's
// tables go to files in its state directory. `make chaos` runs it.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	"github.com/go-logr/logr"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/flowforge/flowforge/test/chaos"
	"github.com/flowforge/flowforge/test/localup"
)

func main() {
	var opts chaos.Options
	bin := flag.String("bin-dir", "bin", "directory holding the control-plane and FlowForge binaries (make build tools)")
	policies := flag.String("policies", "policies", "policy directory to copy and serve")
	state := flag.String("state-dir", "", "directory for the stack's state, the log and the report (default: a new temporary directory)")
	keep := flag.Bool("keep", false, "keep the cluster's state (etcd, component logs) after the run")
	flag.Float64Var(&opts.Rate, "rate", 52, "Job creates per second the stream schedules (a little above the 50 claimed, so that the creates still answered when the run ends do not pull the achieved rate under it)")
	flag.Float64Var(&opts.MinRate, "min-rate", chaos.ClaimRate, "admitted creates per second over the whole run, faults included, below which the run fails (0: report the rate only)")
	flag.IntVar(&opts.MaxInFlight, "max-in-flight", 1024, "creates outstanding at most, those retrying while the API server is unavailable included: creates a fault delayed catch up within this bound")
	flag.IntVar(&opts.MaxCalls, "max-calls", chaos.DefaultMaxCalls, "create calls to the API server at once: the catch-up after a fault sends no more admissions at once than one webhook replica takes")
	flag.Float64Var(&opts.RealRate, "real-rate", 5, "how many of them create a Job the cluster runs and FlowForge exports; the others are server-side dry runs, which take the same admission path (a 2-core machine cannot run 50 Jobs a second)")
	flag.DurationVar(&opts.Steady, "steady", 60*time.Second, "how long the stream runs before the first fault")
	flag.DurationVar(&opts.Settle, "settle", 20*time.Second, "how long the stream runs after each fault's recovery")
	flag.IntVar(&opts.BurstJobs, "burst", 300, "Jobs of the burst the controller is killed in")
	flag.DurationVar(&opts.TTL, "ttl", 30*time.Second, "FlowForge TTL of the Jobs (whole seconds), so that a long run does not pile them up")
	flag.DurationVar(&opts.Timeout, "timeout", 3*time.Minute, "bound of each wait for a recovery")
	flag.DurationVar(&opts.ExportTimeout, "export-timeout", 15*time.Minute, "bound of the wait for the last exports")
	flag.IntVar(&opts.LogSample, "log-sample", 0, "Jobs whose archived logs are read back and checked (0: all, so that one empty or repeated archive fails the run)")
	flag.Parse()
	// The stack's helpers use controller-runtime's clients; the run's log
	// is chaos.log.
	ctrllog.SetLogger(logr.Discard())

	dir := *state
	if dir == "" {
		var err error
		if dir, err = os.MkdirTemp("", "flowforge-chaos-"); err != nil {
			fail(err)
		}
	}
	logPath := filepath.Join(dir, "chaos.log")
	log, err := os.Create(logPath)
	if err != nil {
		fail(err)
	}
	defer log.Close() //nolint:errcheck // best effort
	opts.Namespace = localup.JobsNamespace
	opts.Run = strconv.FormatInt(time.Now().Unix()%100000, 10)
	opts.Logf = func(format string, args ...any) {
		fmt.Fprintf(log, "%s chaos: "+format+"\n", append([]any{time.Now().UTC().Format(time.TimeOnly)}, args...)...)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	report, err := chaos.RunOnNewStack(ctx, chaos.StackOptions{StateDir: dir, BinDir: *bin, PolicySource: *policies, Log: log}, opts)
	if !*keep {
		_ = os.RemoveAll(filepath.Join(dir, "cluster"))
	}
	if err != nil {
		fail(fmt.Errorf("%w (log: %s)", err, logPath))
	}
	reportPath := filepath.Join(dir, "report.md")
	if err := os.WriteFile(reportPath, []byte(report.Markdown()), 0o644); err != nil {
		fail(err)
	}
	for _, p := range report.Problems {
		opts.Logf("problem: %s", p)
	}
	fmt.Printf("%s (report: %s)\n", report.Summary(), reportPath)
	if !report.Passed() {
		os.Exit(1)
	}
}

func fail(err error) {
	fmt.Fprintf(os.Stderr, "chaos FAIL: %v\n", err)
	os.Exit(1)
}
