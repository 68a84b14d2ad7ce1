package history

import (
	"context"
	"os"
	"testing"

	"k8s.io/client-go/kubernetes"

	"github.com/flowforge/flowforge/test/framework"
	"github.com/flowforge/flowforge/test/localcluster"
)

var (
	testCluster *localcluster.Cluster
	clientset   kubernetes.Interface
	ctl         *framework.Controller
)

func TestMain(m *testing.M) {
	os.Exit(framework.Run(m, localcluster.Options{}, func(ctx context.Context, c *localcluster.Cluster) (func(), error) {
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
		if ctl, err = framework.StartController(ctx, c, framework.ControllerOptions{}); err != nil {
			hook.Stop()
			return nil, err
		}
		return func() {
			ctl.Stop()
			hook.Stop()
		}, nil
	}))
}
