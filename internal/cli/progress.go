package cli

import (
	"bytes"
	"fmt"
	"io"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/flowforge/flowforge/contract"
)

// progress shows a job's progress: one status line redrawn in place on a
// terminal (phase, attempts, active pods, elapsed time, the latest event),
// one line per change otherwise (logs, CI). Log lines written through
// logWriter scroll above the status line on a terminal. It is safe for
// concurrent use: the watch, the log stream and the refresh ticker all
// write through it.
type progress struct {
	streams Streams
	now     func() time.Time
	start   time.Time

	mu      sync.Mutex
	last    contract.Status
	seen    bool
	frame   int
	event   string
	drawn   bool   // a status line is on the screen (terminal only)
	partial []byte // a log line not yet ended by a newline
}

var spinner = []string{"⠋", "⠙", "⠹", "⠸", "⠼", "⠴", "⠦", "⠧", "⠇", "⠏"}

// defaultWidth is the terminal width assumed when it is unknown.
const defaultWidth = 120

func newProgress(s Streams, now func() time.Time) *progress {
	return &progress{streams: s, now: now, start: now()}
}

// jobName is the name of the Job being followed ("" before its first
// status): clients name FlowForge Jobs as they like.
func (p *progress) jobName() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.last.Name
}

// update shows a new status of the job.
func (p *progress) update(s contract.Status) {
	p.mu.Lock()
	defer p.mu.Unlock()
	changed := !p.seen || s.Phase != p.last.Phase || s.Attempts != p.last.Attempts || s.Active != p.last.Active
	p.last, p.seen = s, true
	if p.streams.IsTerminal {
		p.frame++
		p.draw()
		return
	}
	if changed {
		fmt.Fprintf(p.streams.Out, "%s  %s\n", p.now().UTC().Format(time.TimeOnly), p.line(false))
	}
}

// setEvent records the job's latest event, shown on the terminal's status
// line from the next redraw.
func (p *progress) setEvent(e string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.event = e
}

// tick redraws the status line on a terminal: the spinner turns and the
// elapsed time moves on between the job's changes.
func (p *progress) tick() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.streams.IsTerminal || !p.seen {
		return
	}
	p.frame++
	p.draw()
}

// line is the status text; with the event on a terminal.
func (p *progress) line(withEvent bool) string {
	s := p.last
	elapsed := p.now().Sub(p.start).Round(time.Second)
	line := fmt.Sprintf("%s  %-10s attempts %d  active %d  %s", s.ID, s.Phase, s.Attempts, s.Active, elapsed)
	if withEvent && p.event != "" {
		line += "  " + p.event
	}
	return line
}

// draw rewrites the status line in place, cut to the terminal's width so
// that it never wraps (a wrapped line cannot be redrawn with \r).
func (p *progress) draw() {
	line := spinner[p.frame%len(spinner)] + " " + p.line(true)
	width := p.streams.Width
	if width <= 0 {
		width = defaultWidth
	}
	fmt.Fprintf(p.streams.Out, "\r\033[K%s", truncate(line, width-1))
	p.drawn = true
}

// done clears the status line.
func (p *progress) done() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.partial) > 0 {
		p.writeLog(append(p.partial, '\n'))
		p.partial = nil
	}
	if p.streams.IsTerminal && p.seen {
		fmt.Fprint(p.streams.Out, "\r\033[K")
		p.drawn = false
	}
}

// logWriter is where the job's log stream goes, in whole lines (a last
// line without a newline gets one from done): above the status line on a
// terminal, between the status lines otherwise.
func (p *progress) logWriter() io.Writer { return logWriter{p} }

type logWriter struct{ p *progress }

func (w logWriter) Write(b []byte) (int, error) {
	p := w.p
	p.mu.Lock()
	defer p.mu.Unlock()
	p.partial = append(p.partial, b...)
	i := bytes.LastIndexByte(p.partial, '\n')
	if i < 0 {
		return len(b), nil
	}
	p.writeLog(p.partial[:i+1])
	p.partial = append([]byte(nil), p.partial[i+1:]...)
	return len(b), nil
}

// writeLog prints whole log lines; on a terminal it clears the status
// line, prints them, and draws the status line again below them.
func (p *progress) writeLog(lines []byte) {
	if !p.streams.IsTerminal {
		_, _ = p.streams.Out.Write(lines)
		return
	}
	if p.drawn {
		fmt.Fprint(p.streams.Out, "\r\033[K")
	}
	_, _ = p.streams.Out.Write(lines)
	if p.seen {
		p.draw()
	}
}

// truncate cuts s to at most n runes, marking the cut with "…".
func truncate(s string, n int) string {
	if n <= 0 || utf8.RuneCountInString(s) <= n {
		return s
	}
	r := []rune(s)
	return string(r[:n-1]) + "…"
}
