package chaos

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/utils/clock"

	"github.com/flowforge/flowforge/history"
)

// Options configure Run.
type Options struct {
	// Namespace receives the Jobs (a managed namespace of the stack).
	Namespace string
	// Run names this run (the Jobs' ids are chaos-<Run>-<n>).
	Run string
	// Rate is the stream's creates per second (at least 50 for the claim).
	Rate float64
	// RealRate is how many of them create a Job; the others are
	// server-side dry runs (StreamOptions.RealRate). 0: all are real.
	RealRate float64
	// MaxInFlight bounds the stream's creates outstanding, retrying ones
	// included (default 1024); MaxCalls the create calls at once
	// (StreamOptions.MaxCalls).
	MaxInFlight, MaxCalls int
	// MinRate, if set, is the achieved rate over the whole run (admitted
	// creates per second) below which the run fails.
	MinRate float64
	// Steady is how long the stream runs before the first fault, and
	// Settle how long it runs after each fault's recovery.
	Steady, Settle time.Duration
	// BurstJobs is the size of the burst the controller is killed in.
	BurstJobs int
	// TTL is the Jobs' FlowForge TTL (0: kept).
	TTL time.Duration
	// Timeout bounds each wait for a recovery; ExportTimeout the wait for
	// the last Jobs' export at the end.
	Timeout, ExportTimeout time.Duration
	// Faults are the steps (default Faults()).
	Faults []Fault
	// LogSample is how many Jobs' archived logs are read back to check that
	// none was exported twice (0: all).
	LogSample int
	Clock     clock.WithTicker
	Logf      func(format string, args ...any)
}

// Phase is one window of the run: the steady start, or one fault and its
// settling time.
type Phase struct {
	Name string
	// Informational: failed admissions are reported as Losses, not
	// Problems (Fault.Informational).
	Informational bool
	Start         time.Time
	End           time.Time
	// SettleStart begins the window's steady part: the whole steady
	// window, or a fault's settling time after its recovery.
	SettleStart time.Time
	// Rate is the stream's admitted creates per second over the window,
	// SettleRate over its steady part.
	Rate, SettleRate float64
	Outcome          Outcome
	Counts           map[Class]int
	Retries          int
	Failures         []string
	// APIServerFailed counts the webhook calls the API server saw fail in
	// the window (every admission, not just the stream's), by webhook.
	APIServerFailed map[string]float64
	// Durations are the API server's webhook-call durations in the window.
	Durations Histogram
	// CreateLatencies are the stream's create round trips in the window.
	CreateLatencies []time.Duration
}

// Report is the fault run's result.
type Report struct {
	// Rate is the stream's target; AchievedRate its admitted creates per
	// second over the whole run, faults included, and SteadyRate over the
	// steady windows (the steady start and each fault's settling time).
	Rate, AchievedRate, SteadyRate float64
	// MinRate is the achieved rate the run must reach (0: none).
	MinRate float64
	// LateP99 and LateMax are how late the stream's creates started
	// against their schedule.
	LateP99, LateMax time.Duration
	Duration         time.Duration
	Phases           []Phase
	Totals           map[Class]int
	// Admitted is the number of Jobs created; Recorded and ExportedOnce
	// how many of them the history holds once, exported, with one attempt
	// and logs archived once.
	Admitted, Recorded, ExportedOnce int
	// LogsRead is how many Jobs' archived logs were read back
	// (Options.LogSample), and EmptyLogs how many of them were empty (each
	// is also a problem: every pod prints lines).
	LogsRead, EmptyLogs int
	// Problems lists each thing that went wrong, for the report.
	Problems []string
	// Losses are the admissions that failed during informational faults
	// (a crash): reported, not held against the run.
	Losses []string
	// Restarts lists FlowForge's programs that exited on their own during
	// the run and were started again (Stack.Supervise), with why.
	Restarts []string
	// Durations are the API server's webhook-call durations over the whole
	// run, by webhook; CreateLatencies the stream's creates.
	Durations       map[string]Histogram
	CreateLatencies []time.Duration
	// HandlerDurations are the webhook replicas' own handler durations
	// (finer buckets than the API server's).
	HandlerDurations Histogram

	// pending are failed-call counts of windows cut short by an API
	// server restart.
	pending []map[string]float64
}

// Passed reports whether the run met the bar: no failed admission, no
// other failure, every admitted Job recorded and exported once, and every
// fault ran and recovered.
func (r *Report) Passed() bool { return len(r.Problems) == 0 }

// Run drives the stack through the faults under a stream of creates.
func Run(ctx context.Context, stack *Stack, opts Options) (*Report, error) {
	if opts.Clock == nil {
		opts.Clock = clock.RealClock{}
	}
	if opts.Logf == nil {
		opts.Logf = func(string, ...any) {}
	}
	if opts.MaxInFlight <= 0 {
		opts.MaxInFlight = 1024
	}
	if opts.Faults == nil {
		opts.Faults = Faults()
	}
	if opts.Rate <= 0 {
		return nil, errors.New("chaos: the rate must be positive")
	}
	clk := opts.Clock
	stream := NewStream(stack.Clientset, StreamOptions{Namespace: opts.Namespace, Run: opts.Run, Rate: opts.Rate, RealRate: opts.RealRate, TTL: opts.TTL, MaxCalls: opts.MaxCalls, Clock: clk})
	env := &Env{Stack: stack, Stream: stream, Clock: clk, Logf: opts.Logf, Timeout: opts.Timeout, BurstJobs: opts.BurstJobs}
	report := &Report{Rate: opts.Rate, MinRate: opts.MinRate, Totals: map[Class]int{}, Durations: map[string]Histogram{}}
	first, err := ScrapeAPIServer(ctx, stack.Clientset)
	if err != nil {
		return nil, err
	}
	start := clk.Now()
	streamCtx, stopStream := context.WithCancel(ctx)
	streamDone := make(chan struct{})
	go func() {
		defer close(streamDone)
		stream.Run(streamCtx, opts.MaxInFlight)
	}()
	var restartsMu sync.Mutex
	superviseCtx, stopSupervise := context.WithCancel(ctx)
	superviseDone := make(chan struct{})
	go func() {
		defer close(superviseDone)
		stack.Supervise(superviseCtx, func(name, why string) {
			restartsMu.Lock()
			defer restartsMu.Unlock()
			msg := fmt.Sprintf("%s %s exited on its own (%s); started again", clk.Now().UTC().Format(time.TimeOnly), name, why)
			report.Restarts = append(report.Restarts, msg)
			opts.Logf("%s", msg)
		})
	}()
	defer func() {
		stopStream()
		<-streamDone
		stopSupervise()
		<-superviseDone
	}()

	before := first
	// phase closes a window: the API server's counts since before.
	phase := func(name string, informational bool, from, settle time.Time, out Outcome) error {
		after, err := ScrapeAPIServer(ctx, stack.Clientset)
		if err != nil {
			return err
		}
		p := Phase{Name: name, Informational: informational, Start: from, SettleStart: settle, End: clk.Now(), Outcome: out, APIServerFailed: delta(after.Failed, before.Failed)}
		var hs []Histogram
		for name, h := range after.Durations {
			d := h.Sub(before.Durations[name])
			hs = append(hs, d)
			report.Durations[name] = Merge(report.Durations[name], d)
		}
		p.Durations = Merge(hs...)
		before = after
		report.Phases = append(report.Phases, p)
		opts.Logf("%s: %s", name, describe(out))
		return nil
	}
	sleep := func(d time.Duration) error {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-clk.After(d):
			return nil
		}
	}
	if err := sleep(opts.Steady); err != nil {
		return nil, err
	}
	if err := phase("steady", false, start, start, Outcome{}); err != nil {
		return nil, err
	}
	for _, f := range opts.Faults {
		from := clk.Now()
		if f.Name == "apiserver-restart" {
			// Its counters restart with it: count up to the last moment.
			if s, err := ScrapeAPIServer(ctx, stack.Clientset); err == nil {
				report.addPartial(s, before)
				before = &APIServerSample{Failed: map[string]float64{}, Durations: map[string]Histogram{}}
			}
		}
		opts.Logf("%s: injecting", f.Name)
		out, err := f.Inject(ctx, env)
		if err != nil {
			out.Skipped = ""
			report.Problems = append(report.Problems, fmt.Sprintf("%s: %v", f.Name, err))
			out.Detail = "FAILED: " + err.Error()
		}
		settle := clk.Now()
		if out.Skipped == "" {
			if err := sleep(opts.Settle); err != nil {
				return nil, err
			}
		}
		if err := phase(f.Name, f.Informational, from, settle, out); err != nil {
			return nil, err
		}
	}
	stopStream()
	<-streamDone
	report.Duration = clk.Since(start)
	if h, err := stack.HandlerDurations(ctx); err == nil {
		report.HandlerDurations = h
	} else {
		opts.Logf("webhook handler durations: %v", err)
	}
	results := stream.Results()
	report.classify(results)
	report.measureRates(results, start, start.Add(report.Duration))
	if err := report.verify(ctx, stack, stream, results, start, opts); err != nil {
		report.Problems = append(report.Problems, err.Error())
	}
	return report, nil
}

// addPartial adds the API server's counts of an unfinished window (before
// it restarts) to the phase about to start.
func (r *Report) addPartial(s, before *APIServerSample) {
	r.pending = append(r.pending, delta(s.Failed, before.Failed))
	for name, h := range s.Durations {
		r.Durations[name] = Merge(r.Durations[name], h.Sub(before.Durations[name]))
	}
}

// ClaimRate is the stream rate the fault run is to show FlowForge
// sustains: Job creates per second through admission.
const ClaimRate = 50

// measureRates sets the achieved rates (the stream's admitted creates per
// second, by when they were answered) over the run [start, end), its
// phases and their steady parts, and how late the creates started.
func (r *Report) measureRates(results []Result, start, end time.Time) {
	admitted := func(from, to time.Time) int {
		n := 0
		for _, res := range results {
			if !res.Burst && res.Class == Admitted && !res.End.Before(from) && res.End.Before(to) {
				n++
			}
		}
		return n
	}
	rate := func(from, to time.Time) float64 {
		if d := to.Sub(from).Seconds(); d > 0 {
			return float64(admitted(from, to)) / d
		}
		return 0
	}
	// The whole run: every admitted create, the last ones answered after
	// the stream stopped included.
	if d := end.Sub(start).Seconds(); d > 0 {
		r.AchievedRate = float64(admitted(start, end.Add(time.Hour))) / d
	}
	var steadyN int
	var steady time.Duration
	for i := range r.Phases {
		p := &r.Phases[i]
		p.Rate = rate(p.Start, p.End)
		if p.SettleStart.IsZero() || !p.SettleStart.Before(p.End) {
			continue
		}
		p.SettleRate = rate(p.SettleStart, p.End)
		steadyN += admitted(p.SettleStart, p.End)
		steady += p.End.Sub(p.SettleStart)
	}
	if steady > 0 {
		r.SteadyRate = float64(steadyN) / steady.Seconds()
	}
	var late []time.Duration
	for _, res := range results {
		if !res.Burst && !res.Due.IsZero() {
			late = append(late, max(res.Start.Sub(res.Due), 0))
		}
	}
	r.LateP99, r.LateMax = Percentile(late, 0.99), Percentile(late, 1)
	if r.MinRate > 0 && r.AchievedRate < r.MinRate {
		r.Problems = append(r.Problems, fmt.Sprintf("the stream achieved %.1f admitted creates/s over the run, under the %.0f required", r.AchievedRate, r.MinRate))
	}
}

// classify sorts the stream's results into the phases they started in.
func (r *Report) classify(results []Result) {
	for i := range r.Phases {
		r.Phases[i].Counts = map[Class]int{}
	}
	for _, res := range results {
		r.Totals[res.Class]++
		if res.Class == Admitted {
			r.CreateLatencies = append(r.CreateLatencies, res.Latency)
		}
		attributed := false
		for i := range r.Phases {
			p := &r.Phases[i]
			// A create belongs to the window its answer came in: a
			// failure happens when the call fails, not when it was sent.
			if res.End.Before(p.Start) || !res.End.Before(p.End) {
				continue
			}
			attributed = true
			p.Counts[res.Class]++
			p.Retries += res.Retries
			if res.Class == Admitted {
				p.CreateLatencies = append(p.CreateLatencies, res.Latency)
			}
			if res.Class != Admitted && len(p.Failures) < 5 {
				p.Failures = append(p.Failures, res.ID+": "+res.Class.String()+": "+firstLine(res.Err))
			}
		}
		if !attributed && res.Class != Admitted {
			r.Problems = append(r.Problems, fmt.Sprintf("after the last fault: %s: %s: %s", res.ID, res.Class, firstLine(res.Err)))
		}
	}
	for _, p := range r.Phases {
		for _, c := range []Class{AdmissionFailed, PolicyDenied, APIUnavailable, Exists, Other} {
			n := p.Counts[c]
			if n == 0 {
				continue
			}
			msg := fmt.Sprintf("%s: %d creates %s (%s)", p.Name, n, c, strings.Join(p.Failures, "; "))
			if p.Informational && c == AdmissionFailed {
				r.Losses = append(r.Losses, msg)
				continue
			}
			r.Problems = append(r.Problems, msg)
		}
		if n := sum(p.APIServerFailed); n > 0 {
			msg := fmt.Sprintf("%s: the API server saw %.0f failed webhook calls %v", p.Name, n, p.APIServerFailed)
			if p.Informational {
				r.Losses = append(r.Losses, msg)
				continue
			}
			r.Problems = append(r.Problems, msg)
		}
	}
	for _, failed := range r.pending {
		if n := sum(failed); n > 0 {
			r.Problems = append(r.Problems, fmt.Sprintf("apiserver-restart: the API server saw %.0f failed webhook calls before it stopped %v", n, failed))
		}
	}
}

func firstLine(s string) string {
	s, _, _ = strings.Cut(s, "\n")
	if len(s) > 300 {
		s = s[:300] + "..."
	}
	return s
}

// Records returns the history's records whose id has the prefix, by id,
// counting a record listed twice under its id with a suffix "#2".
func Records(ctx context.Context, hc *history.Client, prefix string, since time.Time) (map[string]history.Job, error) {
	all, err := hc.Jobs(ctx, StreamUser, "", since.UTC().Format(time.RFC3339), 1000000)
	if err != nil {
		return nil, err
	}
	out := map[string]history.Job{}
	for _, j := range all {
		if !strings.HasPrefix(j.ID, prefix) {
			continue
		}
		id := j.ID
		for n := 2; ; n++ {
			if _, dup := out[id]; !dup {
				break
			}
			id = fmt.Sprintf("%s#%d", j.ID, n)
		}
		out[id] = j
	}
	return out, nil
}

// verify waits until every admitted Job is exported, then checks that each
// is recorded once, with one attempt, its logs archived once, and one
// Exported event at most.
func (r *Report) verify(ctx context.Context, stack *Stack, stream *Stream, results []Result, start time.Time, opts Options) error {
	hc := &history.Client{BaseURL: stack.Endpoints.History}
	want := map[string]bool{}
	for _, res := range results {
		if res.Class == Admitted && !res.DryRun {
			want[res.ID] = true
		}
	}
	r.Admitted = len(want)
	since := start.Add(-time.Minute)
	var recs map[string]history.Job
	env := &Env{Clock: opts.Clock, Timeout: opts.ExportTimeout}
	exported := 0
	err := env.pollEvery(ctx, "every admitted Job is exported", 2*time.Second, func(ctx context.Context) bool {
		var err error
		if recs, err = Records(ctx, hc, stream.Prefix(), since); err != nil {
			return false
		}
		exported = 0
		for id := range want {
			if j, ok := recs[id]; ok && j.Exported != nil {
				exported++
			}
		}
		return exported == len(want)
	})
	if err != nil {
		return fmt.Errorf("%d of %d admitted Jobs exported: %w", exported, len(want), err)
	}
	for id := range recs {
		if strings.Contains(id, "#") {
			r.Problems = append(r.Problems, "recorded more than once: "+id)
		} else if !want[id] {
			r.Problems = append(r.Problems, "recorded but never admitted: "+id)
		}
	}
	events, err := stack.Clientset.CoreV1().Events(opts.Namespace).List(ctx, metav1.ListOptions{FieldSelector: fields.OneTermEqualSelector("reason", "Exported").String()})
	if err != nil {
		return fmt.Errorf("list Exported events: %w", err)
	}
	exportEvents := map[string]int32{}
	for _, e := range events.Items {
		exportEvents[e.InvolvedObject.Name] += max(e.Count, 1)
	}
	sample, every := 0, 1
	if opts.LogSample > 0 && len(want) > opts.LogSample {
		every = len(want) / opts.LogSample
	}
	i := 0
	for id := range want {
		j := recs[id]
		r.Recorded++
		once := true
		if n := exportEvents[j.Name]; n > 1 {
			once = false
			r.Problems = append(r.Problems, fmt.Sprintf("%s: exported %d times (events)", id, n))
		}
		if i%every == 0 {
			sample++
			// The list has no attempts: the record itself has.
			if full, err := hc.Job(ctx, id); err != nil || len(full.Attempts) != 1 {
				once = false
				n := -1
				if full != nil {
					n = len(full.Attempts)
				}
				r.Problems = append(r.Problems, fmt.Sprintf("%s: %d attempts recorded, want 1 (%v)", id, n, err))
			}
			var logs bytes.Buffer
			if err := hc.Logs(ctx, id, 0, "", &logs); err != nil {
				once = false
				r.Problems = append(r.Problems, fmt.Sprintf("%s: read its logs: %v", id, err))
			} else if got := logs.String(); got == "" {
				once = false
				r.EmptyLogs++
				r.Problems = append(r.Problems, fmt.Sprintf("%s: empty log archive, want each line once", id))
			} else if got != "cloning\nworking\ndone\n" {
				once = false
				r.Problems = append(r.Problems, fmt.Sprintf("%s: archived logs %q, want each line once", id, got))
			}
		}
		i++
		if once {
			r.ExportedOnce++
		}
	}
	r.LogsRead = sample
	opts.Logf("verified %d Jobs: %d recorded, %d exported once (logs read back for %d, %d empty)", len(want), r.Recorded, r.ExportedOnce, sample, r.EmptyLogs)
	return nil
}
