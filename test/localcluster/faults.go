package localcluster

import (
	"context"
	"fmt"
	"syscall"
	"time"
)

// Kill sends sig to a running component (a control-plane component, or a
// program started with Run) and waits up to grace for it to exit; after
// that it kills it. The component stays stopped until Relaunch.
func (c *Cluster) Kill(name string, sig syscall.Signal, grace time.Duration) error {
	c.mu.Lock()
	p, ok := c.procs[name]
	c.mu.Unlock()
	if !ok {
		return fmt.Errorf("local cluster: no component %q", name)
	}
	if !p.running() {
		return fmt.Errorf("local cluster: %s is not running", name)
	}
	if err := p.cmd.Process.Signal(sig); err != nil {
		return fmt.Errorf("local cluster: signal %s: %w", name, err)
	}
	select {
	case <-p.exited:
	case <-time.After(grace):
		_ = p.cmd.Process.Kill()
		<-p.exited
	}
	return nil
}

// Relaunch starts a stopped component again with the command line it was
// started with (its log is appended to) and waits until ready passes, if
// given.
func (c *Cluster) Relaunch(ctx context.Context, name string, ready func(context.Context) error) error {
	c.mu.Lock()
	_, known := c.specs[name]
	p := c.procs[name]
	c.mu.Unlock()
	if !known {
		return fmt.Errorf("local cluster: no component %q", name)
	}
	if p != nil && p.running() {
		return fmt.Errorf("local cluster: %s is still running", name)
	}
	if err := c.launch(name); err != nil {
		return err
	}
	if ready == nil {
		return nil
	}
	c.mu.Lock()
	p = c.procs[name]
	c.mu.Unlock()
	return p.waitFor(ctx, "ready", ready)
}
