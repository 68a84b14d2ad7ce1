package certs

import (
	"context"
	"os"
	"testing"
	"time"

	"k8s.io/client-go/kubernetes"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/flowforge/flowforge/certs"
	"github.com/flowforge/flowforge/test/framework"
	"github.com/flowforge/flowforge/test/localcluster"
)

var (
	clientset kubernetes.Interface
	admin     client.Client
	hook      *framework.Webhook
	// certCfg: a serving certificate of 30s renewed at 20s, a CA of 60s
	// renewed at 40s, so that both rotate within a test.
	certCfg = certs.Config{
		Secret:             certs.DefaultSecret,
		Validity:           30 * time.Second,
		CAValidity:         60 * time.Second,
		Propagation:        3 * time.Second,
		Resync:             time.Second,
		MutatingWebhooks:   []string{certs.DefaultMutating},
		ValidatingWebhooks: []string{certs.DefaultValidating},
		LeaderElection:     true,
	}
)

func TestMain(m *testing.M) {
	os.Exit(framework.Run(m, localcluster.Options{}, func(ctx context.Context, c *localcluster.Cluster) (func(), error) {
		cs, err := c.Clientset()
		if err != nil {
			return nil, err
		}
		clientset = cs
		if admin, err = framework.AdminClient(c); err != nil {
			return nil, err
		}
		if hook, err = framework.StartWebhook(ctx, c, framework.WebhookOptions{Certs: &certCfg}); err != nil {
			return nil, err
		}
		return hook.Stop, nil
	}))
}
