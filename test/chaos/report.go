package chaos

import (
	"fmt"
	"math"
	"slices"
	"sort"
	"strings"
	"time"
)

// Percentile returns the p-th percentile (0-1) of ds, or 0 if empty.
func Percentile(ds []time.Duration, p float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	i := int(math.Ceil(p*float64(len(s)))) - 1
	return s[min(max(i, 0), len(s)-1)]
}

func describe(o Outcome) string {
	switch {
	case o.Skipped != "":
		return "not run: " + o.Skipped
	case o.Detail != "":
		return o.Detail
	}
	return "ok"
}

// WebhookCalls merges the API server's histograms of the calls to
// FlowForge's webhooks over the run.
func (r *Report) WebhookCalls() Histogram {
	var hs []Histogram
	for name, h := range r.Durations {
		if strings.HasSuffix(name, ".flowforge.io") {
			hs = append(hs, h)
		}
	}
	return Merge(hs...)
}

// Summary is the report in one line.
func (r *Report) Summary() string {
	var b strings.Builder
	verdict := "PASS"
	if !r.Passed() {
		verdict = "FAIL"
	}
	failed := r.Totals[AdmissionFailed]
	for _, p := range r.Phases {
		if p.Informational {
			failed -= p.Counts[AdmissionFailed]
		}
	}
	apiFailed := 0.0
	for _, p := range r.Phases {
		if !p.Informational {
			apiFailed += sum(p.APIServerFailed)
		}
	}
	for _, f := range r.pending {
		apiFailed += sum(f)
	}
	fmt.Fprintf(&b, "chaos %s: %.0fs, %s; creates %d admitted, %d failed admissions, %d policy denials, %d other; API server counted %.0f failed webhook calls; %d/%d recorded, %d exported once, %d of %d log archives read back empty",
		verdict, r.Duration.Seconds(), r.rateSummary(), r.Totals[Admitted], failed, r.Totals[PolicyDenied], r.Totals[APIUnavailable]+r.Totals[Exists]+r.Totals[Other],
		apiFailed, r.Recorded, r.Admitted, r.ExportedOnce, r.EmptyLogs, r.LogsRead)
	var ran, skipped []string
	for _, p := range r.Phases {
		if p.Name == "steady" {
			continue
		}
		switch {
		case p.Outcome.Skipped != "":
			skipped = append(skipped, p.Name)
		case strings.HasPrefix(p.Outcome.Detail, "FAILED"):
			ran = append(ran, p.Name+" FAILED")
		default:
			ran = append(ran, fmt.Sprintf("%s %s", p.Name, round(p.Outcome.Recovery)))
		}
	}
	fmt.Fprintf(&b, "; recovery: %s", strings.Join(ran, ", "))
	if len(skipped) > 0 {
		fmt.Fprintf(&b, "; not run: %s", strings.Join(skipped, ", "))
	}
	calls := r.WebhookCalls()
	fmt.Fprintf(&b, "; webhook call p99 <= %s (API server, %.0f calls), handler p99 <= %s; create p50 %s p99 %s",
		seconds(calls.Quantile(0.99)), calls.Total(), seconds(r.HandlerDurations.Quantile(0.99)), Percentile(r.CreateLatencies, 0.5).Round(time.Millisecond), Percentile(r.CreateLatencies, 0.99).Round(time.Millisecond))
	if len(r.Restarts) > 0 {
		fmt.Fprintf(&b, "; %d program exits restarted as a kubelet would (first: %s)", len(r.Restarts), firstLine(r.Restarts[0]))
	}
	if losses := r.crashLosses(); losses > 0 {
		fmt.Fprintf(&b, "; a crash lost %d admissions in flight (not held against the run)", losses)
	}
	if len(r.Problems) > 0 {
		fmt.Fprintf(&b, "; %d problems, first: %s", len(r.Problems), firstLine(r.Problems[0]))
	}
	return b.String()
}

// RateHolds reports whether the stream sustained ClaimRate admitted
// creates per second over the whole run, faults included.
func (r *Report) RateHolds() bool { return r.AchievedRate >= ClaimRate }

// rateSummary says what rate the stream achieved and whether the claim
// holds.
func (r *Report) rateSummary() string {
	holds := "holds"
	if !r.RateHolds() {
		holds = "does NOT hold"
	}
	return fmt.Sprintf("%.1f admitted creates/s over the run and %.1f in its steady windows (target %.0f, started at most %s late, p99 %s; the %d/s claim %s)",
		r.AchievedRate, r.SteadyRate, r.Rate, r.LateMax.Round(time.Millisecond), r.LateP99.Round(time.Millisecond), ClaimRate, holds)
}

// Markdown is the report as docs/performance.md tables.
func (r *Report) Markdown() string {
	var b strings.Builder
	fmt.Fprintf(&b, "Stream: %s.\n\n", r.rateSummary())
	b.WriteString("| phase | recovery | creates (admitted / failed / denied / retried for the API server) | creates/s (window / settled) | failed webhook calls (API server) | webhook p99 bound | create p99 | what happened |\n|---|---|---|---|---|---|---|---|\n")
	for _, p := range r.Phases {
		rec := "-"
		if p.Name != "steady" && p.Outcome.Skipped == "" {
			rec = round(p.Outcome.Recovery).String()
		}
		q := p.Durations.Quantile(0.99)
		p99 := "-"
		if !math.IsNaN(q) {
			p99 = fmt.Sprintf("%gs", q)
		}
		fmt.Fprintf(&b, "| %s | %s | %d / %d / %d / %d | %.1f / %.1f | %.0f | %s | %s | %s |\n", p.Name, rec,
			p.Counts[Admitted], p.Counts[AdmissionFailed], p.Counts[PolicyDenied], p.Retries, p.Rate, p.SettleRate, sum(p.APIServerFailed), p99,
			Percentile(p.CreateLatencies, 0.99).Round(time.Millisecond), describe(p.Outcome))
	}
	b.WriteString("\n| webhook | calls | p50 bound | p99 bound |\n|---|---|---|---|\n")
	names := make([]string, 0, len(r.Durations))
	for name := range r.Durations {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		h := r.Durations[name]
		if h.Total() == 0 {
			continue
		}
		fmt.Fprintf(&b, "| %s | %.0f | %gs | %gs |\n", name, h.Total(), h.Quantile(0.5), h.Quantile(0.99))
	}
	return b.String()
}

// crashLosses counts the failed admissions of informational faults: the
// stream's failed creates and the API server's failed calls, whichever is
// larger (one failed call fails one create).
func (r *Report) crashLosses() int {
	n := 0
	for _, p := range r.Phases {
		if p.Informational {
			n += max(p.Counts[AdmissionFailed], int(sum(p.APIServerFailed)))
		}
	}
	return n
}

// seconds renders a histogram bound.
func seconds(q float64) string {
	switch {
	case math.IsNaN(q):
		return "-"
	case math.IsInf(q, 1):
		return "+Inf"
	}
	return time.Duration(q * float64(time.Second)).Round(100 * time.Microsecond).String()
}
