package failover

import (
	"context"
	"fmt"
	"os"
	"testing"
	"time"

	"k8s.io/client-go/kubernetes"

	"github.com/flowforge/flowforge/test/framework"
	"github.com/flowforge/flowforge/test/localcluster"
	"github.com/flowforge/flowforge/test/postgres"
)

var (
	testCluster *localcluster.Cluster
	clientset   kubernetes.Interface
	// pg is the Postgres server the controllers share.
	pg *postgres.Server
	// controllerBin is cmd/flowforge-controller built from this tree.
	controllerBin string
	// workDir holds the binary and the controllers' kubeconfigs and logs.
	workDir string
	// historyAPI is the aggregated history API's Service address and
	// certificate, which every replica serves.
	historyAPI *framework.HistoryAPI
)

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	var err error
	if workDir, err = os.MkdirTemp("", "flowforge-failover-"); err != nil {
		fmt.Fprintf(os.Stderr, "FAIL: %v\n", err)
		return 1
	}
	defer os.RemoveAll(workDir) //nolint:errcheck // best effort
	if controllerBin, err = framework.BuildController(ctx, workDir); err != nil {
		fmt.Fprintf(os.Stderr, "FAIL: %v\n", err)
		return 1
	}
	if pg, err = postgres.Start(ctx, postgres.Options{}); err != nil {
		fmt.Fprintf(os.Stderr, "FAIL: the failover tests need a Postgres server: %v\n", err)
		return 1
	}
	defer pg.Stop() //nolint:errcheck // best effort
	return framework.Run(m, localcluster.Options{}, func(ctx context.Context, c *localcluster.Cluster) (func(), error) {
		testCluster = c
		cs, err := c.Clientset()
		if err != nil {
			return nil, err
		}
		clientset = cs
		if historyAPI, err = framework.PrepareHistoryAPI(c); err != nil {
			return nil, err
		}
		hook, err := framework.StartWebhook(ctx, c, framework.WebhookOptions{})
		if err != nil {
			return nil, err
		}
		return hook.Stop, nil
	})
}
