package localup

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/flowforge/flowforge/test/localcluster"
)

// Options configure the local stack.
type Options struct {
	// StateDir receives the cluster's state and logs (StateDir/cluster),
	// the admin kubeconfig (StateDir/kubeconfig) and a ready marker.
	StateDir string
	// BinDir holds the control-plane and FlowForge binaries.
	BinDir string
	// PolicyDir, if set, is served by the webhook instead of the embedded
	// policies, and edits to it are picked up without a restart.
	PolicyDir string
}

// Run starts the stack, writes the kubeconfig and the ready marker, and
// blocks until ctx ends; then it stops everything it started.
func Run(ctx context.Context, opts Options, out io.Writer) error {
	state, err := filepath.Abs(opts.StateDir)
	if err != nil {
		return fmt.Errorf("state dir: %w", err)
	}
	bin, err := filepath.Abs(opts.BinDir)
	if err != nil {
		return fmt.Errorf("bin dir: %w", err)
	}
	clusterDir := filepath.Join(state, "cluster")
	if err := os.RemoveAll(clusterDir); err != nil {
		return fmt.Errorf("clear old state: %w", err)
	}
	ready := filepath.Join(state, "ready")
	_ = os.Remove(ready)
	startCtx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	c, err := localcluster.Start(startCtx, localcluster.Options{
		BinDir: bin,
		Dir:    clusterDir,
		Logf:   func(f string, a ...any) { fmt.Fprintf(out, "localup: "+f+"\n", a...) },
	})
	if err != nil {
		return err
	}
	defer func() {
		fmt.Fprintln(out, "localup: stopping")
		_ = c.Stop()
		_ = os.Remove(ready)
	}()
	kubeconfig := filepath.Join(state, "kubeconfig")
	if err := os.WriteFile(kubeconfig, c.Kubeconfig, 0o600); err != nil {
		return fmt.Errorf("write kubeconfig: %w", err)
	}
	if err := os.WriteFile(ready, []byte(time.Now().UTC().Format(time.RFC3339)+"\n"), 0o644); err != nil {
		return fmt.Errorf("write ready marker: %w", err)
	}
	fmt.Fprintf(out, "localup: ready; kubeconfig at %s\n", kubeconfig)
	<-ctx.Done()
	return nil
}
