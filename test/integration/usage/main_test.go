package usage

import (
	"context"
	"os"
	"testing"
	"time"

	"k8s.io/client-go/kubernetes"

	"github.com/flowforge/flowforge/test/framework"
	"github.com/flowforge/flowforge/test/localcluster"
)

// usageInterval is how often the controller samples metrics.k8s.io here
// (the default, 15s, would only make the Jobs run longer).
const usageInterval = 2 * time.Second

var (
	testCluster *localcluster.Cluster
	clientset   kubernetes.Interface
)

func TestMain(m *testing.M) {
	os.Exit(framework.Run(m, localcluster.Options{ResourceMetrics: true}, func(ctx context.Context, c *localcluster.Cluster) (func(), error) {
		testCluster = c
		cs, err := c.Clientset()
		if err != nil {
			return nil, err
		}
		clientset = cs
		hook, err := framework.StartWebhook(ctx, c, framework.WebhookOptions{})
		if err != nil {
			return nil, err
		}
		ctl, err := framework.StartController(ctx, c, framework.ControllerOptions{UsageInterval: usageInterval})
		if err != nil {
			hook.Stop()
			return nil, err
		}
		return func() {
			ctl.Stop()
			hook.Stop()
		}, nil
	}))
}
