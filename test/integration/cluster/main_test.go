package cluster

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
)

func TestMain(m *testing.M) {
	os.Exit(framework.Run(m, localcluster.Options{}, func(_ context.Context, c *localcluster.Cluster) (func(), error) {
		testCluster = c
		cs, err := c.Clientset()
		clientset = cs
		return func() {}, err
	}))
}
