// Command localup runs FlowForge's local stack in the foreground until it is
// interrupted: the local cluster and, once built, FlowForge's webhook and
// controller registered with it. `make up` runs it in the background.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/flowforge/flowforge/test/localup"
)

func main() {
	var opts localup.Options
	flag.StringVar(&opts.StateDir, "state-dir", ".local", "directory for the cluster state, logs and kubeconfig")
	flag.StringVar(&opts.BinDir, "bin-dir", "bin", "directory holding the control-plane and FlowForge binaries")
	flag.StringVar(&opts.PolicyDir, "policy-dir", "", "serve policies from this directory (hot-reloaded) instead of the embedded ones")
	flag.DurationVar(&opts.CertValidity, "cert-validity", 0, "lifetime of the webhook's serving certificate, which it rotates itself (its CA lives twice as long; 0: 90 days); e.g. 2m to watch rotations")
	flag.Parse()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := localup.Run(ctx, opts, os.Stdout); err != nil {
		fmt.Fprintf(os.Stderr, "localup: %v\n", err)
		os.Exit(1)
	}
}
