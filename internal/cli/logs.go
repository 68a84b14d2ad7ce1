package cli

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"

	"github.com/spf13/cobra"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/flowforge/flowforge/history"
	"github.com/flowforge/flowforge/jobs"
)

// Where `make up` and deploy/ publish the history API's address.
const (
	endpointsNamespace = "flowforge-system"
	endpointsConfigMap = "flowforge-endpoints"
	historyURLKey      = "historyURL"
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

// history finds the controller's history API: --history-url, else
// $FLOWFORGE_HISTORY_URL, else the address published in the cluster.
func (o *options) history(ctx context.Context) (*history.Client, error) {
	httpClient := &http.Client{Timeout: o.timeout}
	if o.historyURL != "" {
		return &history.Client{BaseURL: o.historyURL, HTTP: httpClient}, nil
	}
	cs, err := o.deps.clientset(o)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, o.timeout)
	defer cancel()
	cm, err := cs.CoreV1().ConfigMaps(endpointsNamespace).Get(ctx, endpointsConfigMap, metav1.GetOptions{})
	if err != nil {
		return nil, fmt.Errorf("no --history-url or $FLOWFORGE_HISTORY_URL, and ConfigMap %s/%s is unreadable: %w", endpointsNamespace, endpointsConfigMap, err)
	}
	url := cm.Data[historyURLKey]
	if url == "" {
		return nil, fmt.Errorf("ConfigMap %s/%s has no %s", endpointsNamespace, endpointsConfigMap, historyURLKey)
	}
	return &history.Client{BaseURL: url, HTTP: httpClient}, nil
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
