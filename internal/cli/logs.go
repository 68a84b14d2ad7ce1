package cli

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/user"

	"github.com/spf13/cobra"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/flowforge/flowforge/controller/history"
	"github.com/flowforge/flowforge/templates/jobs"
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
			ctx := cmd.Context()
			c, err := o.client()
			if err != nil {
				return err
			}
			err = c.Logs(ctx, args[0], opts, o.streams.Out)
			if !errors.Is(err, jobs.ErrNotFound) {
				return err
			}
			hc, herr := o.history(ctx)
			if herr != nil {
				return fmt.Errorf("job %s is not in the cluster, and its archived logs are unavailable: %w", args[0], herr)
			}
			return hc.Logs(ctx, args[0], attempt, opts.Container, o.streams.Out)
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
	cfg, err := jobs.LoadConfig(o.kubeconfig)
	if err != nil {
		return nil, err
	}
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("kubernetes client: %w", err)
	}
	return cs, nil
}

// defaultUser names who runs the CLI.
func defaultUser() string {
	if u, err := user.Current(); err == nil && u.Username != "" {
		return u.Username
	}
	if u := os.Getenv("USER"); u != "" {
		return u
	}
	return "flowforge-cli"
}
