package framework

import (
	"context"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/flowforge/flowforge/test/localcluster"
)

// Run starts a local cluster, calls setup, runs the package's tests and stops
// the cluster. It returns the exit code for os.Exit. A cluster that cannot
// start fails the package with the reason: integration tests never skip.
func Run(m *testing.M, opts localcluster.Options, setup func(context.Context, *localcluster.Cluster) (teardown func(), err error)) int {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	if opts.Logf == nil {
		opts.Logf = func(format string, args ...any) {
			fmt.Fprintf(os.Stderr, "localcluster: "+format+"\n", args...)
		}
	}
	c, err := localcluster.Start(ctx, opts)
	if err != nil {
		fmt.Fprintf(os.Stderr, "FAIL: the local cluster did not start, so no integration test can run:\n%v\n", err)
		return 1
	}
	defer func() {
		if err := c.Stop(); err != nil {
			fmt.Fprintf(os.Stderr, "stopping the local cluster: %v\n", err)
		}
	}()
	teardown := func() {}
	if setup != nil {
		if teardown, err = setup(ctx, c); err != nil {
			fmt.Fprintf(os.Stderr, "FAIL: setting up the local cluster: %v\n", err)
			return 1
		}
	}
	defer teardown()
	return m.Run()
}
