package controller

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"k8s.io/client-go/kubernetes"

	"github.com/flowforge/flowforge/test/framework"
	"github.com/flowforge/flowforge/test/localcluster"
)

// pendingTimeout is what the test policy allows a Job to stay Pending.
const pendingTimeout = "6"

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
		// The production policy, with a pending timeout short enough to test.
		policyDir, err := framework.CopyPolicies()
		if err != nil {
			return nil, err
		}
		data := filepath.Join(policyDir, "data.yaml")
		raw, err := os.ReadFile(data)
		if err != nil {
			return nil, err
		}
		if err := os.WriteFile(data, []byte(strings.Replace(string(raw), "pendingTimeoutSeconds: 300", "pendingTimeoutSeconds: "+pendingTimeout, 1)), 0o644); err != nil {
			return nil, err
		}
		hook, err := framework.StartWebhook(ctx, c, framework.WebhookOptions{PolicyDir: policyDir})
		if err != nil {
			return nil, err
		}
		if ctl, err = framework.StartController(ctx, c, framework.ControllerOptions{PolicyDir: policyDir, ExportedSweepInterval: time.Second}); err != nil {
			hook.Stop()
			return nil, err
		}
		return func() {
			ctl.Stop()
			hook.Stop()
			_ = os.RemoveAll(policyDir)
		}, nil
	}))
}
