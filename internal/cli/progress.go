package cli

import (
	"fmt"
	"time"

	"github.com/flowforge/flowforge/templates/jobs"
)

// progress shows a job's progress: one line rewritten in place on a
// terminal, one line per change otherwise (logs, CI).
type progress struct {
	streams Streams
	now     func() time.Time
	start   time.Time
	last    jobs.Status
	seen    bool
	frame   int
}

var spinner = []string{"⠋", "⠙", "⠹", "⠸", "⠼", "⠴", "⠦", "⠧", "⠇", "⠏"}

func newProgress(s Streams, now func() time.Time) *progress {
	return &progress{streams: s, now: now, start: now()}
}

func (p *progress) update(s jobs.Status) {
	changed := !p.seen || s.Phase != p.last.Phase || s.Attempts != p.last.Attempts || s.Active != p.last.Active
	p.last, p.seen = s, true
	elapsed := p.now().Sub(p.start).Round(time.Second)
	line := fmt.Sprintf("%s  %-10s attempts %d  active %d  %s", s.ID, s.Phase, s.Attempts, s.Active, elapsed)
	if p.streams.IsTerminal {
		p.frame++
		fmt.Fprintf(p.streams.Out, "\r\033[K%s %s", spinner[p.frame%len(spinner)], line)
		return
	}
	if changed {
		fmt.Fprintf(p.streams.Out, "%s  %s\n", p.now().UTC().Format(time.TimeOnly), line)
	}
}

func (p *progress) done() {
	if p.streams.IsTerminal && p.seen {
		fmt.Fprint(p.streams.Out, "\r\033[K")
	}
}
