package admission

import (
	"context"
	"os"
	"testing"

	nodev1 "k8s.io/api/node/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/flowforge/flowforge/test/framework"
	"github.com/flowforge/flowforge/test/localcluster"
)

var (
	testCluster *localcluster.Cluster
	clientset   kubernetes.Interface
	hook        *framework.Webhook
	policyDir   string
)

func TestMain(m *testing.M) {
	os.Exit(framework.Run(m, localcluster.Options{}, func(ctx context.Context, c *localcluster.Cluster) (func(), error) {
		testCluster = c
		cs, err := c.Clientset()
		if err != nil {
			return nil, err
		}
		clientset = cs
		if policyDir, err = framework.CopyPolicies(); err != nil {
			return nil, err
		}
		if hook, err = framework.StartWebhook(ctx, c, framework.WebhookOptions{PolicyDir: policyDir}); err != nil {
			return nil, err
		}
		// A runtime class that exists but the policy does not allow, as in
		// most clusters: the API server's RuntimeClass admission refuses a
		// Pod naming an unknown class before any webhook, so FlowForge's
		// runtime-class rule is only reachable for Pods through a real one.
		if _, err := cs.NodeV1().RuntimeClasses().Create(ctx, &nodev1.RuntimeClass{ObjectMeta: metav1.ObjectMeta{Name: "runc"}, Handler: "runc"}, metav1.CreateOptions{}); err != nil {
			return nil, err
		}
		return func() {
			hook.Stop()
			_ = os.RemoveAll(policyDir)
		}, nil
	}))
}
