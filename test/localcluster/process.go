package localcluster

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// logTailLines is how much of a failed component's log an error shows.
const logTailLines = 40

// process is one running component of the cluster.
type process struct {
	name    string
	cmd     *exec.Cmd
	logPath string
	exited  chan struct{}
	waitErr error
}

// startProcess runs bin with args, sending its output to <dir>/<name>.log
// (appended to: a component started again keeps its earlier output).
// The child gets SIGKILL if this process dies (Pdeathsig), so a crashed or
// panicking test never leaves a component behind.
func startProcess(name, bin string, args []string, dir string, env []string) (*process, error) {
	if _, err := os.Stat(bin); err != nil {
		return nil, fmt.Errorf("%s: binary %s not found (run `make tools`): %w", name, bin, err)
	}
	logPath := filepath.Join(dir, name+".log")
	logFile, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, fmt.Errorf("%s: create log: %w", name, err)
	}
	cmd := exec.Command(bin, args...) //nolint:gosec // the binaries are the project's own pinned tools
	cmd.Dir = dir
	cmd.Stdout = logFile
	cmd.Stderr = logFile
	cmd.Env = append(os.Environ(), env...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL, Setpgid: true}
	if err := cmd.Start(); err != nil {
		logFile.Close() //nolint:errcheck,gosec // reporting the start error
		return nil, fmt.Errorf("%s: start %s: %w", name, bin, err)
	}
	p := &process{name: name, cmd: cmd, logPath: logPath, exited: make(chan struct{})}
	go func() {
		p.waitErr = cmd.Wait()
		logFile.Close() //nolint:errcheck,gosec // the process is gone
		close(p.exited)
	}()
	return p, nil
}

// pid returns the process id.
func (p *process) pid() int { return p.cmd.Process.Pid }

// running reports whether the process has not exited yet.
func (p *process) running() bool {
	select {
	case <-p.exited:
		return false
	default:
		return true
	}
}

// stop asks the process to terminate and kills it after grace.
func (p *process) stop(grace time.Duration) {
	if !p.running() {
		return
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.exited:
	case <-time.After(grace):
		_ = p.cmd.Process.Kill()
		<-p.exited
	}
}

// failure builds an error that names the component and shows its log tail.
func (p *process) failure(format string, args ...any) error {
	msg := fmt.Sprintf(format, args...)
	if !p.running() {
		msg += fmt.Sprintf(" (process exited: %v)", p.waitErr)
	}
	return fmt.Errorf("%s: %s\n--- last %d lines of %s ---\n%s", p.name, msg, logTailLines, p.logPath, tail(p.logPath, logTailLines))
}

// waitFor polls check until it succeeds, the process exits, or ctx ends.
func (p *process) waitFor(ctx context.Context, what string, check func(context.Context) error) error {
	var last error
	ticker := time.NewTicker(100 * time.Millisecond)
	defer ticker.Stop()
	for {
		if last = check(ctx); last == nil {
			return nil
		}
		select {
		case <-p.exited:
			return p.failure("exited before %s", what)
		case <-ctx.Done():
			return p.failure("not %s: %v (last check: %v)", what, ctx.Err(), last)
		case <-ticker.C:
		}
	}
}

// tail returns the last n lines of a file, or a note if it can't be read.
func tail(path string, n int) string {
	data, err := os.ReadFile(path)
	if err != nil {
		return fmt.Sprintf("(cannot read log: %v)", err)
	}
	lines := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
