// Command flowforge is FlowForge's CLI. See internal/cli. Installed (or
// linked) as kubectl-flowforge on PATH, it is a kubectl plugin:
// `kubectl flowforge ...`; the name only changes its usage text.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"golang.org/x/term"

	"github.com/flowforge/flowforge/internal/cli"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	streams := cli.Streams{
		In: os.Stdin, Out: os.Stdout, Err: os.Stderr,
		IsTerminal:    term.IsTerminal(int(os.Stdout.Fd())),
		ErrIsTerminal: term.IsTerminal(int(os.Stderr.Fd())),
	}
	if streams.IsTerminal {
		if width, _, err := term.GetSize(int(os.Stdout.Fd())); err == nil {
			streams.Width = width
		}
	}
	code := cli.ExecuteAs(ctx, os.Args[0], os.Args[1:], streams)
	stop()
	os.Exit(code)
}
