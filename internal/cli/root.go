package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/flowforge/flowforge/contract"
	"github.com/flowforge/flowforge/jobs"
	"github.com/flowforge/flowforge/policies/engine"
	"github.com/flowforge/flowforge/templates"
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
	// ErrIsTerminal tells whether Err is a terminal (coloured warnings).
	ErrIsTerminal bool
	// Width is the terminal's width in columns (0: unknown); the live
	// status line is cut to it.
	Width int
}

// options are the global flags.
type options struct {
	// config holds kubectl's global flags (--kubeconfig, --context,
	// --cluster, --as, --as-group, ...), as every kubectl plugin does.
	config    *genericclioptions.ConfigFlags
	namespace string
	output    string
	timeout   time.Duration
	streams   Streams
	deps      deps
	// name is how people call the program: flowforge or kubectl flowforge.
	name string
	// warnings prints the API server's warnings as kubectl does:
	// "Warning: ..." on stderr, each once.
	warnings rest.WarningHandler
}

// deps are what the commands take from the outside world: the cluster and
// the clock. NewRootCommand uses the real ones (defaultDeps); tests give
// fakes to newRootCommandWith.
type deps struct {
	// newClient builds the Jobs client for the flags' kubeconfig,
	// namespace and request timeout.
	newClient func(o *options) (*jobs.Client, error)
	// clientset builds a clientset for the flags' kubeconfig.
	clientset func(o *options) (kubernetes.Interface, error)
	// history builds the history client for the flags' kubeconfig and
	// namespace.
	history func(o *options) (historyReader, error)
	// now is the time that ages, durations and progress are measured from.
	now func() time.Time
	// refresh is how often the live status line on a terminal is redrawn
	// and the job's latest event read; 0 redraws only when the job
	// changes and shows no events.
	refresh time.Duration
	// tested, if set, records the policy sets whose tests passed, for
	// commands that load a policy more than once in one process (tests);
	// nil runs a policy's tests at every load.
	tested *engine.TestedPolicies
}

// defaultRefresh is how often a terminal's status line is redrawn.
const defaultRefresh = time.Second

func defaultDeps() deps {
	return deps{newClient: clusterClient, clientset: clusterClientset, history: clusterHistory, now: time.Now, refresh: defaultRefresh}
}

// Execute runs the command line and returns the process exit code.
func Execute(ctx context.Context, args []string, streams Streams) int {
	return run(ctx, NewRootCommand(streams), args, streams)
}

// ExecuteAs runs the command line of the program named argv0 (os.Args[0]):
// as kubectl-flowforge, a kubectl plugin, its usage says
// "kubectl flowforge"; the commands are the same.
func ExecuteAs(ctx context.Context, argv0 string, args []string, streams Streams) int {
	return run(ctx, newRoot(streams, defaultDeps(), DisplayName(argv0)), args, streams)
}

// PluginBinary is the name under which kubectl finds the CLI as a plugin.
const PluginBinary = "kubectl-flowforge"

// DisplayName is the command name people type for a program named argv0:
// "kubectl flowforge" for the kubectl plugin binary, else "flowforge".
func DisplayName(argv0 string) string {
	base := strings.TrimSuffix(filepath.Base(argv0), ".exe")
	if base == PluginBinary {
		return "kubectl flowforge"
	}
	return "flowforge"
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
	return newRoot(streams, d, "flowforge")
}

// newRoot builds the command tree of the program people call name
// ("flowforge", or "kubectl flowforge" for the plugin).
func newRoot(streams Streams, d deps, name string) *cobra.Command {
	o := &options{
		streams: streams, deps: d, name: name,
		warnings: rest.NewWarningWriter(streams.Err, rest.WarningWriterOptions{Deduplicate: true, Color: streams.ErrIsTerminal}),
	}
	root := &cobra.Command{
		Use:   "flowforge",
		Short: "Run AI coding agents as hardened Kubernetes Jobs",
		Long: `flowforge submits agent jobs to Kubernetes and follows them: their status,
logs, cancellation, and their history after the cluster has deleted them.
It also checks admission policy changes offline.`,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	if name != root.Name() {
		root.Annotations = map[string]string{cobra.CommandDisplayNameAnnotation: name}
	}
	root.SetIn(streams.In)
	root.SetOut(streams.Out)
	root.SetErr(streams.Err)
	pf := root.PersistentFlags()
	o.config = newConfigFlags()
	o.config.AddFlags(pf) // skips the fields newConfigFlags cleared
	pf.StringVarP(&o.namespace, "namespace", "n", jobs.DefaultNamespace, "namespace of the agent Jobs")
	pf.StringVarP(&o.output, "output", "o", "table", "output format: table, json or yaml")
	pf.DurationVar(&o.timeout, "request-timeout", 30*time.Second, "timeout of each API request (a duration: 30s, 2m)")
	root.AddCommand(
		newSubmitCommand(o),
		newStatusCommand(o),
		newWatchCommand(o),
		newListCommand(o),
		newLogsCommand(o),
		newCancelCommand(o),
		newHistoryCommand(o),
		newPolicyCommand(o),
		newVersionCommand(o),
	)
	o.registerCompletions(root)
	return root
}

// newConfigFlags are kubectl's global flags, less those FlowForge defines
// itself: -n (its default is FlowForge's Jobs namespace, not the
// context's; a namespace override would also make an empty kubeconfig
// look usable, pointing at localhost:8080), --request-timeout (a duration) and --user (the commands
// that filter by user, or submit for one, already have a --user flag;
// pick the kubeconfig user with --context instead), and the discovery
// cache, which FlowForge does not use.
func newConfigFlags() *genericclioptions.ConfigFlags {
	cf := genericclioptions.NewConfigFlags(false)
	cf.Namespace = nil
	cf.Timeout = nil
	cf.AuthInfoName = nil
	cf.CacheDir = nil
	return cf
}

// restConfig is the API server's configuration from kubectl's global
// flags and the kubeconfig (--kubeconfig, else $KUBECONFIG, else
// ~/.kube/config, as kubectl), with the CLI's warning handler. Without any
// kubeconfig it falls back to jobs.LoadConfig: the in-cluster
// configuration, else an error that lists what was tried.
func (o *options) restConfig() (*rest.Config, error) {
	if path := o.kubeconfigFlag(); path != "" {
		if _, err := os.Stat(path); err != nil {
			if errors.Is(err, os.ErrNotExist) {
				return nil, fmt.Errorf("kubeconfig %s: %s does not exist", path, path)
			}
			return nil, fmt.Errorf("kubeconfig %s: %w", path, err)
		}
	}
	loader := o.config.ToRawKubeConfigLoader()
	raw, err := loader.RawConfig()
	if err != nil && !clientcmd.IsEmptyConfig(err) {
		return nil, fmt.Errorf("kubeconfig: %w", err)
	}
	var cfg *rest.Config
	if len(raw.Clusters) == 0 && o.flagValue(o.config.APIServer) == "" {
		// No kubeconfig at all: kubectl would try localhost:8080; the
		// CLI tries the in-cluster configuration, else says what it tried.
		if cfg, err = jobs.LoadConfig(""); err != nil {
			return nil, err
		}
	} else if cfg, err = loader.ClientConfig(); err != nil {
		return nil, fmt.Errorf("kubeconfig: %w", err)
	}
	cfg = rest.CopyConfig(cfg)
	cfg.WarningHandler = o.warnings
	cfg.WarningHandlerWithContext = nil
	if cfg.UserAgent == "" {
		cfg.UserAgent = "flowforge-cli"
	}
	return cfg, nil
}

func (o *options) kubeconfigFlag() string {
	if o.config == nil {
		return ""
	}
	return o.flagValue(o.config.KubeConfig)
}

func (o *options) flagValue(p *string) string {
	if p == nil {
		return ""
	}
	return *p
}

// client builds a Jobs client for the cluster.
func (o *options) client() (*jobs.Client, error) { return o.deps.newClient(o) }

// now is the current time of the command's clock.
func (o *options) now() time.Time { return o.deps.now() }

// clusterClient builds a Jobs client for the cluster of the kubeconfig.
func clusterClient(o *options) (*jobs.Client, error) {
	cfg, err := o.restConfig()
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
func phaseExit(p contract.Phase) int {
	switch p {
	case contract.PhaseSucceeded:
		return ExitOK
	case contract.PhaseFailed:
		return ExitFailed
	case contract.PhaseTimedOut:
		return ExitTimedOut
	case contract.PhaseCancelled:
		return ExitCancelled
	}
	return ExitOK
}
