package install

import (
	"context"
	"os"
	"testing"

	"github.com/flowforge/flowforge/test/framework"
	"github.com/flowforge/flowforge/test/localcluster"
)

var testCluster *localcluster.Cluster

func TestMain(m *testing.M) {
	os.Exit(framework.Run(m, localcluster.Options{WorkerNodes: 1}, func(_ context.Context, c *localcluster.Cluster) (func(), error) {
		testCluster = c
		return func() {}, nil
	}))
}
