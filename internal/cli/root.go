package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/spf13/cobra"
	"k8s.io/client-go/kubernetes"

	"github.com/flowforge/flowforge/templates"
	"github.com/flowforge/flowforge/templates/jobs"
)

// Exit codes.
const (
	ExitOK        = 0
	ExitError     = 1
	ExitUsage     = 2
	ExitFailed    = 3
	ExitTimedOut  = 4
	ExitCancelled = 5
	ExitDenied    = 6
)

// exitError carries an exit code with an error (or none).
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string {
	if e.err == nil {
		return fmt.Sprintf("exit code %d", e.code)
	}
	return e.err.Error()
}

func (e *exitError) Unwrap() error { return e.err }

// withCode attaches an exit code to an error; err may be nil for a
// non-zero exit that has already been explained on the output.
func withCode(code int, err error) error { return &exitError{code: code, err: err} }

// Streams are the command's input and outputs.
type Streams struct {
	In       io.Reader
	Out, Err io.Writer
	// IsTerminal tells whether Out is a terminal (live progress display).
	IsTerminal bool
}

// options are the global flags.
type options struct {
	kubeconfig string
	namespace  string
	output     string
	historyURL string
	timeout    time.Duration
	streams    Streams
	deps       deps
}

// deps are what the commands take from the outside world: the cluster and
// the clock. NewRootCommand uses the real ones (defaultDeps); tests give
// fakes to newRootCommandWith.
type deps struct {
	// newClient builds the Jobs client for the flags' kubeconfig,
	// namespace and request timeout.
	newClient func(o *options) (*jobs.Client, error)
	// clientset builds a clientset for the flags' kubeconfig; history uses
	// it to read the ConfigMap that publishes the history API's address.
	clientset func(o *options) (kubernetes.Interface, error)
	// now is the time that ages, durations and progress are measured from.
	now func() time.Time
}

func defaultDeps() deps {
	return deps{newClient: clusterClient, clientset: clusterClientset, now: time.Now}
}

// Execute runs the command line and returns the process exit code.
func Execute(ctx context.Context, args []string, streams Streams) int {
	return run(ctx, NewRootCommand(streams), args, streams)
}

// run executes a command tree and maps its error to an exit code,
// explaining it on streams.Err.
func run(ctx context.Context, root *cobra.Command, args []string, streams Streams) int {
	root.SetArgs(args)
	err := root.ExecuteContext(ctx)
	if err == nil {
		return ExitOK
	}
	var ee *exitError
	if errors.As(err, &ee) {
		if ee.err != nil {
			fmt.Fprintf(streams.Err, "Error: %v\n", ee.err)
		}
		return ee.code
	}
	fmt.Fprintf(streams.Err, "Error: %v\n", err)
	var invalid *templates.ValidationError
	if errors.As(err, &invalid) {
		return ExitUsage
	}
	return ExitError
}

// NewRootCommand builds the flowforge command tree.
func NewRootCommand(streams Streams) *cobra.Command {
	return newRootCommandWith(streams, defaultDeps())
}

// newRootCommandWith builds the command tree on the given dependencies.
func newRootCommandWith(streams Streams, d deps) *cobra.Command {
	o := &options{streams: streams, deps: d}
	root := &cobra.Command{
		Use:   "flowforge",
		Short: "Run AI coding agents as hardened Kubernetes Jobs",
		Long: `flowforge submits agent jobs to Kubernetes and follows them: their status,
logs, cancellation, and their history after the cluster has deleted them.
It also checks admission policy changes offline.`,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetIn(streams.In)
	root.SetOut(streams.Out)
	root.SetErr(streams.Err)
	pf := root.PersistentFlags()
	pf.StringVar(&o.kubeconfig, "kubeconfig", "", "path to the kubeconfig (default: in-cluster, then $KUBECONFIG, then ~/.kube/config)")
	pf.StringVarP(&o.namespace, "namespace", "n", jobs.DefaultNamespace, "namespace of the agent Jobs")
	pf.StringVarP(&o.output, "output", "o", "table", "output format: table, json or yaml")
	pf.StringVar(&o.historyURL, "history-url", os.Getenv("FLOWFORGE_HISTORY_URL"), "URL of the controller's history API (default: $FLOWFORGE_HISTORY_URL, else discovered from the cluster)")
	pf.DurationVar(&o.timeout, "request-timeout", 30*time.Second, "timeout of each API request")
	root.AddCommand(
		newSubmitCommand(o),
		newStatusCommand(o),
		newWatchCommand(o),
		newListCommand(o),
		newLogsCommand(o),
		newCancelCommand(o),
		newHistoryCommand(o),
		newPolicyCommand(o),
	)
	return root
}

// client builds a Jobs client for the cluster.
func (o *options) client() (*jobs.Client, error) { return o.deps.newClient(o) }

// now is the current time of the command's clock.
func (o *options) now() time.Time { return o.deps.now() }

// clusterClient builds a Jobs client for the cluster of the kubeconfig.
func clusterClient(o *options) (*jobs.Client, error) {
	cfg, err := jobs.LoadConfig(o.kubeconfig)
	if err != nil {
		return nil, err
	}
	r, err := templates.NewRenderer(templates.RendererOptions{})
	if err != nil {
		return nil, err
	}
	return jobs.NewForConfig(cfg, r, jobs.Options{Namespace: o.namespace, RequestTimeout: o.timeout})
}

// phaseExit maps a terminal phase to the exit code.
func phaseExit(p jobs.Phase) int {
	switch p {
	case jobs.PhaseSucceeded:
		return ExitOK
	case jobs.PhaseFailed:
		return ExitFailed
	case jobs.PhaseTimedOut:
		return ExitTimedOut
	case jobs.PhaseCancelled:
		return ExitCancelled
	}
	return ExitOK
}
