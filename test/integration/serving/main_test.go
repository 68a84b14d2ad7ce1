package serving

import (
	"context"
	"os"
	"testing"

	"k8s.io/client-go/kubernetes"

	"github.com/flowforge/flowforge/test/framework"
	"github.com/flowforge/flowforge/test/localcluster"
	"github.com/flowforge/flowforge/webhook/server"
)

var (
	testCluster *localcluster.Cluster
	clientset   kubernetes.Interface
	hook        *framework.Webhook
)

func TestMain(m *testing.M) {
	os.Exit(framework.Run(m, localcluster.Options{}, func(ctx context.Context, c *localcluster.Cluster) (func(), error) {
		testCluster = c
		cs, err := c.Clientset()
		if err != nil {
			return nil, err
		}
		clientset = cs
		if hook, err = framework.StartWebhook(ctx, c, framework.WebhookOptions{DrainDelay: server.DefaultDrainDelay}); err != nil {
			return nil, err
		}
		return hook.Stop, nil
	}))
}
