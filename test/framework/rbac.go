package framework

import (
	"context"
	"fmt"

	"k8s.io/client-go/rest"

	"github.com/flowforge/flowforge/deploy"
	"github.com/flowforge/flowforge/test/localcluster"
)

// ServiceAccountConfig applies deploy/rbac.yaml to the cluster and returns
// a copy of its admin config that impersonates one of FlowForge's service
// accounts, so that the program under test has exactly the rights a real
// deployment grants it: a missing permission fails the tests, not
// production.
func ServiceAccountConfig(ctx context.Context, c *localcluster.Cluster, serviceAccount string) (*rest.Config, error) {
	cl, err := AdminClient(c)
	if err != nil {
		return nil, err
	}
	if err := deploy.ApplyRBAC(ctx, cl); err != nil {
		return nil, fmt.Errorf("apply RBAC: %w", err)
	}
	cfg := rest.CopyConfig(c.RESTConfig)
	user, groups := deploy.ServiceAccountUser(serviceAccount)
	cfg.Impersonate = rest.ImpersonationConfig{UserName: user, Groups: groups}
	return cfg, nil
}
