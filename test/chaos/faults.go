package chaos

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sync"
	"syscall"
	"time"

	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/utils/clock"

	"github.com/flowforge/flowforge/certs"
	"github.com/flowforge/flowforge/history"
	"github.com/flowforge/flowforge/test/localcluster"
)

// Env is what a fault acts on.
type Env struct {
	Stack  *Stack
	Stream *Stream
	Clock  clock.WithTicker
	Logf   func(format string, args ...any)
	// Timeout bounds each wait for a recovery.
	Timeout time.Duration
	// BurstJobs is the size of the controller fault's burst.
	BurstJobs int
}

// Outcome is what a fault measured.
type Outcome struct {
	// Recovery is the time from the injection until FlowForge serves as
	// before (what that means is the fault's own: see Detail).
	Recovery time.Duration
	// Detail says what was measured, for the report.
	Detail string
	// Skipped, if set, says why the fault did not run: the stack lacks its
	// building block.
	Skipped string
}

// Fault is one step of the fault run.
type Fault struct {
	Name string
	// Informational: the admissions that fail during the fault are
	// reported, not held against the run. Only a crash is: a replica
	// killed with requests in flight loses them (the API server does not
	// retry a webhook call), however FlowForge is built.
	Informational bool
	// Inject injects the fault and returns once FlowForge has recovered.
	Inject func(ctx context.Context, e *Env) (Outcome, error)
}

// Faults returns the fault run's steps, in order.
func Faults() []Fault {
	return []Fault{
		{Name: "webhook-replica-stop", Inject: replicaFault(syscall.SIGTERM)},
		{Name: "webhook-replica-crash", Inject: replicaFault(syscall.SIGKILL), Informational: true},
		{Name: "cert-rotation", Inject: certRotation},
		{Name: "policy-push", Inject: policyPush},
		{Name: "apiserver-restart", Inject: apiserverRestart},
		{Name: "controller-kill", Inject: controllerKill},
	}
}

// poll waits until done holds, checking every 100 ms.
func (e *Env) poll(ctx context.Context, what string, done func(context.Context) bool) error {
	return e.pollEvery(ctx, what, 100*time.Millisecond, done)
}

// pollEvery waits until done holds, checking every interval.
func (e *Env) pollEvery(ctx context.Context, what string, interval time.Duration, done func(context.Context) bool) error {
	err := wait.PollUntilContextTimeout(ctx, interval, e.Timeout, true, func(ctx context.Context) (bool, error) {
		return done(ctx), nil
	})
	if err != nil {
		return fmt.Errorf("%s: not within %s: %w", what, e.Timeout, err)
	}
	return nil
}

// replicaFault stops the last webhook replica with sig (SIGTERM: as
// Kubernetes stops a pod, and the replica drains; SIGKILL: a crash, an
// OOM kill) and starts it again. Recovery: until it is ready again.
func replicaFault(sig syscall.Signal) func(context.Context, *Env) (Outcome, error) {
	return func(ctx context.Context, e *Env) (Outcome, error) {
		replicas := e.Stack.WebhookReplicas()
		if len(replicas) < 2 {
			return Outcome{Skipped: fmt.Sprintf("the stack runs %d webhook replica: stopping it is an outage, not a fault to survive", len(replicas))}, nil
		}
		r := replicas[len(replicas)-1]
		e.Stack.faults.Lock()
		defer e.Stack.faults.Unlock()
		pid := e.Stack.pidOf(r.Name)
		start := e.Clock.Now()
		if err := e.Stack.Cluster.Kill(r.Name, sig, 70*time.Second); err != nil {
			return Outcome{}, err
		}
		stopped := e.Clock.Since(start)
		ctx, cancel := context.WithTimeout(ctx, e.Timeout)
		defer cancel()
		if err := e.Stack.Cluster.Relaunch(ctx, r.Name, localcluster.HTTPReady(r.Probes+"/readyz")); err != nil {
			return Outcome{}, fmt.Errorf("restart %s: %w", r.Name, err)
		}
		rec := e.Clock.Since(start)
		return Outcome{Recovery: rec, Detail: fmt.Sprintf("%s (pid %s) %s, exited in %s, ready again after %s",
			r.Name, pid, sigName(sig), round(stopped), round(rec))}, nil
	}
}

func sigName(sig syscall.Signal) string {
	if sig == syscall.SIGKILL {
		return "SIGKILL"
	}
	return "SIGTERM"
}

// certRotation forces a rotation of the webhook's CA and serving
// certificate (certs.ForceRotation, in rotate mode). Recovery: until
// every replica serves a new certificate.
func certRotation(ctx context.Context, e *Env) (Outcome, error) {
	replicas := e.Stack.WebhookReplicas()
	if len(replicas) == 0 {
		return Outcome{Skipped: "no webhook replica"}, nil
	}
	args, err := e.Stack.cmdline(replicas[0].Name)
	if err != nil {
		return Outcome{}, err
	}
	if mode := flag(args, "cert-mode", certs.ModeRotate); mode != certs.ModeRotate {
		return Outcome{Skipped: fmt.Sprintf("the webhook serves --cert-mode=%s: its certificates are rotated outside FlowForge", mode)}, nil
	}
	cfg := certs.DefaultConfig()
	cfg.Secret = flag(args, "cert-secret", cfg.Secret)
	key, err := cfg.SecretKey()
	if err != nil {
		return Outcome{}, err
	}
	before := map[string]string{}
	for _, r := range replicas {
		serial, err := e.Stack.ServingSerial(ctx, r)
		if err != nil {
			return Outcome{}, err
		}
		if serial == "" {
			return Outcome{Skipped: r.Name + " does not report the certificate it serves"}, nil
		}
		before[r.Name] = serial
	}
	start := e.Clock.Now()
	if err := certs.ForceRotation(ctx, e.Stack.Admin, key, start); err != nil {
		return Outcome{}, err
	}
	var serial string
	err = e.poll(ctx, "every replica serves the new certificate", func(ctx context.Context) bool {
		seen := map[string]bool{}
		for _, r := range replicas {
			s, err := e.Stack.ServingSerial(ctx, r)
			if err != nil || s == "" || s == before[r.Name] {
				return false
			}
			seen[s] = true
			serial = s
		}
		return len(seen) == 1
	})
	if err != nil {
		return Outcome{}, err
	}
	rec := e.Clock.Since(start)
	return Outcome{Recovery: rec, Detail: fmt.Sprintf("Secret %s rotated; all %d replicas serve serial %s after %s", cfg.Secret, len(replicas), serial, round(rec))}, nil
}

// brokenPolicy does not compile: the engine must refuse it.
const brokenPolicy = "package flowforge.validate\n\n# Pushed by the fault run: it does not compile.\nviolation contains {\n"

var releaseLine = regexp.MustCompile(`(?m)^(\s*release:\s*).*$`)

// policyPush writes a broken policy into the served directory (every
// replica must refuse it and keep serving the old revision), then removes
// it and changes the release (every replica must serve the new revision).
// Recovery: push of the good policy until every replica serves it.
func policyPush(ctx context.Context, e *Env) (Outcome, error) {
	dir := e.Stack.PolicyDir
	if dir == "" {
		return Outcome{Skipped: "the stack serves the embedded policies (no --policy-dir to push to)"}, nil
	}
	replicas := e.Stack.WebhookReplicas()
	old := map[string]string{}
	for _, r := range replicas {
		st, err := e.Stack.PolicyStatus(ctx, r)
		if err != nil {
			return Outcome{}, err
		}
		old[r.Name] = st.Revision
	}
	broken := filepath.Join(dir, "validate", "update", "zz_chaos_broken.rego")
	start := e.Clock.Now()
	if err := writeAtomically(broken, []byte(brokenPolicy)); err != nil {
		return Outcome{}, err
	}
	err := e.poll(ctx, "every replica refuses the broken policy", func(ctx context.Context) bool {
		for _, r := range replicas {
			st, err := e.Stack.PolicyStatus(ctx, r)
			if err != nil || st.LastError == "" || st.LastErrorAt.Before(start.Add(-time.Second)) || st.Revision != old[r.Name] {
				return false
			}
		}
		return true
	})
	if err != nil {
		return Outcome{}, err
	}
	refused := e.Clock.Since(start)
	if err := os.Remove(broken); err != nil {
		return Outcome{}, fmt.Errorf("remove the broken policy: %w", err)
	}
	dataPath := filepath.Join(dir, "data.yaml")
	data, err := os.ReadFile(dataPath)
	if err != nil {
		return Outcome{}, err
	}
	release := fmt.Sprintf("chaos-%d", start.Unix())
	if !releaseLine.Match(data) {
		return Outcome{}, errors.New("policy data.yaml has no release line to change")
	}
	goodAt := e.Clock.Now()
	if err := writeAtomically(dataPath, releaseLine.ReplaceAll(data, []byte("${1}\""+release+"\""))); err != nil {
		return Outcome{}, err
	}
	var revision string
	err = e.poll(ctx, "every replica serves the good policy", func(ctx context.Context) bool {
		for _, r := range replicas {
			st, err := e.Stack.PolicyStatus(ctx, r)
			if err != nil || len(st.Revision) < len(release) || st.Revision[:len(release)] != release {
				return false
			}
			revision = st.Revision
		}
		return true
	})
	if err != nil {
		return Outcome{}, err
	}
	served := e.Clock.Since(goodAt)
	return Outcome{Recovery: served, Detail: fmt.Sprintf("broken policy refused by all %d replicas after %s (old revision kept); revision %s served by all after %s",
		len(replicas), round(refused), revision, round(served))}, nil
}

// writeAtomically replaces path by a rename, as a ConfigMap update does.
func writeAtomically(path string, data []byte) error {
	tmp := filepath.Join(filepath.Dir(path), ".chaos-tmp-"+filepath.Base(path))
	if err := os.WriteFile(tmp, data, 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// apiserverRestart restarts kube-apiserver. Recovery: until a Job create
// succeeds again.
func apiserverRestart(ctx context.Context, e *Env) (Outcome, error) {
	start := e.Clock.Now()
	rctx, cancel := context.WithTimeout(ctx, e.Timeout)
	defer cancel()
	if err := e.Stack.Cluster.RestartAPIServer(rctx); err != nil {
		return Outcome{}, err
	}
	ready := e.Clock.Now()
	var firstOK time.Time
	err := e.poll(ctx, "a Job is admitted after the restart", func(context.Context) bool {
		for _, r := range e.Stream.Results() {
			if end := r.Start.Add(r.Latency); r.Class == Admitted && !end.Before(ready) && (firstOK.IsZero() || end.Before(firstOK)) {
				firstOK = end
			}
		}
		return !firstOK.IsZero()
	})
	if err != nil {
		return Outcome{}, err
	}
	rec := firstOK.Sub(start)
	return Outcome{Recovery: rec, Detail: fmt.Sprintf("API server ready after %s; first Job admitted after %s", round(ready.Sub(start)), round(rec))}, nil
}

// controllerKill kills the controller (SIGKILL) in the middle of a burst
// and starts it again. Recovery: until every Job of the burst is exported.
func controllerKill(ctx context.Context, e *Env) (Outcome, error) {
	names := e.Stack.Controllers()
	if len(names) == 0 {
		return Outcome{Skipped: "no controller process"}, nil
	}
	name := names[0]
	var (
		mu       sync.Mutex
		killedAt time.Time
		healthy  time.Duration
		killErr  error
		gone     bool
	)
	hc := &history.Client{BaseURL: e.Stack.Endpoints.History}
	mark := len(e.Stream.Results())
	// The supervisor leaves the controller to this fault until it is
	// started again.
	e.Stack.faults.Lock()
	e.Stream.Burst(ctx, e.BurstJobs, func() {
		mu.Lock()
		defer mu.Unlock()
		killedAt = e.Clock.Now()
		if _, running := e.Stack.Cluster.Pids()[name]; !running {
			// It exited on its own (a controller that loses its lease
			// does, under load or while the API server restarts) and the
			// supervisor leaves it to this fault: start it, as a kubelet
			// would have.
			gone = true
		} else if killErr = e.Stack.Cluster.Kill(name, syscall.SIGKILL, 10*time.Second); killErr != nil {
			return
		}
		rctx, cancel := context.WithTimeout(ctx, e.Timeout)
		defer cancel()
		killErr = e.Stack.Cluster.Relaunch(rctx, name, localcluster.HTTPReady(e.Stack.Endpoints.History+"/healthz"))
		healthy = e.Clock.Since(killedAt)
	})
	e.Stack.faults.Unlock()
	mu.Lock()
	defer mu.Unlock()
	if killErr != nil {
		return Outcome{}, fmt.Errorf("kill and restart %s: %w", name, killErr)
	}
	burst := 0
	for _, r := range e.Stream.Results()[mark:] {
		if r.Burst && r.Class == Admitted {
			burst++
		}
	}
	// Recovered once the new controller exports again: the cluster may
	// still be running a backlog of Jobs (the burst's are checked with
	// every other at the end of the run).
	restarted := killedAt.Add(healthy)
	var firstExport time.Time
	err := e.pollEvery(ctx, "the restarted controller exports a Job", time.Second, func(ctx context.Context) bool {
		recs, err := Records(ctx, hc, e.Stream.Prefix(), killedAt.Add(-time.Hour))
		if err != nil {
			return false
		}
		for _, r := range recs {
			if r.Exported != nil && r.Exported.After(restarted) && (firstExport.IsZero() || r.Exported.Before(firstExport)) {
				firstExport = *r.Exported
			}
		}
		return !firstExport.IsZero()
	})
	if err != nil {
		return Outcome{}, err
	}
	rec := firstExport.Sub(killedAt)
	how := "killed (SIGKILL)"
	if gone {
		how = "found exited on its own (restarted)"
	}
	return Outcome{Recovery: rec, Detail: fmt.Sprintf("%s %s with %d of a %d-Job burst created (%d admitted); healthy again after %s; exporting again after %s",
		name, how, e.BurstJobs/2, e.BurstJobs, burst, round(healthy), round(rec))}, nil
}

func round(d time.Duration) time.Duration { return d.Round(100 * time.Millisecond) }
