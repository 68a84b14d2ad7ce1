package cli

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/spf13/cobra"
	"k8s.io/client-go/kubernetes"

	"github.com/flowforge/flowforge/history"
	"github.com/flowforge/flowforge/jobs"
)

func newLogsCommand(o *options) *cobra.Command {
	var opts jobs.LogOptions
	var attempt int
	cmd := &cobra.Command{
		Use:   "logs [-f] <job-id>",
		Short: "Print a job's logs (from the archive once the cluster has deleted it)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkOutput(o.output); err != nil {
				return err
			}
			structured := o.output == "json" || o.output == "yaml"
			if structured && opts.Follow {
				return withCode(ExitUsage, errors.New("-f streams text: drop -o, or drop -f to get the logs as one JSON or YAML document"))
			}
			ctx := cmd.Context()
			c, err := o.client()
			if err != nil {
				return err
			}
			doc := jobLogs{ID: args[0], Source: "cluster"}
			var buf limitedBuffer
			out := o.streams.Out
			if structured {
				out = &buf
			}
			err = c.Logs(ctx, args[0], opts, out)
			if errors.Is(err, jobs.ErrNotFound) {
				hc, herr := o.history(ctx)
				if herr != nil {
					return historyUnavailable(args[0], o.namespace, "its archived logs are", herr)
				}
				doc.Source = "history"
				err = hc.Logs(ctx, args[0], attempt, opts.Container, out)
				if errors.Is(err, history.ErrNotFound) {
					return &notFoundAnywhere{id: args[0], namespace: o.namespace, program: o.name}
				}
				if errors.Is(err, history.ErrUnavailable) {
					return historyUnavailable(args[0], o.namespace, "its archived logs are", err)
				}
			}
			if err != nil || !structured {
				return err
			}
			doc.Logs = buf.String()
			_, err = printStructured(o.streams.Out, o.output, doc)
			return err
		},
	}
	f := cmd.Flags()
	f.BoolVarP(&opts.Follow, "follow", "f", false, "stream the logs while the job runs")
	f.StringVarP(&opts.Container, "container", "c", "", "container (default: the worker)")
	f.BoolVar(&opts.AllAttempts, "all-attempts", false, "show every attempt, not only the latest")
	f.BoolVar(&opts.Timestamps, "timestamps", false, "prefix lines with their time")
	f.IntVar(&attempt, "attempt", 0, "for an archived job: only this attempt")
	return cmd
}

// historyReader reads the execution history: history.APIClient through
// the API server, a fake in tests.
type historyReader interface {
	Jobs(ctx context.Context, user, status string, since time.Time, limit int) ([]history.Job, error)
	Job(ctx context.Context, id string) (*history.Job, error)
	Logs(ctx context.Context, id string, attempt int, container string, w io.Writer) error
}

// history reads the history of the namespace through the API server
// (history.flowforge.io), with the kubeconfig's credentials: RBAC decides
// what the user reads, and no address of the controller is needed.
func (o *options) history(_ context.Context) (historyReader, error) {
	return o.deps.history(o)
}

// clusterHistory is the history client for the flags' kubeconfig.
func clusterHistory(o *options) (historyReader, error) {
	cfg, err := o.restConfig()
	if err != nil {
		return nil, err
	}
	return history.NewAPIClient(cfg, o.namespace)
}

// clusterClientset builds a clientset for the cluster of the kubeconfig.
func clusterClientset(o *options) (kubernetes.Interface, error) {
	cfg, err := o.restConfig()
	if err != nil {
		return nil, err
	}
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("kubernetes client: %w", err)
	}
	return cs, nil
}

// jobLogs is what `logs -o json` prints.
type jobLogs struct {
	ID string `json:"id"`
	// Source is "cluster" (the pods) or "history" (the archive).
	Source string `json:"source"`
	Logs   string `json:"logs"`
}

// maxStructuredLogs bounds the logs `logs -o json` holds in memory.
const maxStructuredLogs = 64 << 20

// limitedBuffer is a buffer that refuses to grow past maxStructuredLogs.
type limitedBuffer struct{ bytes.Buffer }

func (b *limitedBuffer) Write(p []byte) (int, error) {
	if b.Len()+len(p) > maxStructuredLogs {
		return 0, fmt.Errorf("the logs exceed %d MiB: drop -o to stream them as text", maxStructuredLogs>>20)
	}
	return b.Buffer.Write(p)
}
