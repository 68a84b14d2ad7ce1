package certs

import (
	"context"
	"fmt"
	"os"
	"sync/atomic"
	"time"

	"k8s.io/apimachinery/pkg/util/uuid"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/leaderelection"
	"k8s.io/client-go/tools/leaderelection/resourcelock"
)

// Leader election timing: a new leader within about 15s of a crash.
const (
	leaseDuration = 15 * time.Second
	renewDeadline = 10 * time.Second
	retryPeriod   = 2 * time.Second
)

// LeaseName is the Lease the rotating replica holds, beside the Secret.
func (c *Config) LeaseName() string {
	key, _ := c.SecretKey()
	return key.Name + defaultLeaseSuffix
}

// RunLeaderElected runs r while this process holds the Lease LeaseName in
// the Secret's namespace, and campaigns again when it loses it, until ctx
// ends. Losing the Lease stops rotating, never serving. Without leader
// election r simply runs.
func (r *Rotator) RunLeaderElected(ctx context.Context, cfg *rest.Config) error {
	if !r.cfg.LeaderElection {
		return r.Run(ctx)
	}
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return fmt.Errorf("certs: leader election client: %w", err)
	}
	host, _ := os.Hostname()
	identity := host + "_" + string(uuid.NewUUID())
	lock, err := resourcelock.New(resourcelock.LeasesResourceLock, r.key.Namespace, r.cfg.LeaseName(),
		cs.CoreV1(), cs.CoordinationV1(), resourcelock.ResourceLockConfig{Identity: identity})
	if err != nil {
		return fmt.Errorf("certs: leader election lock: %w", err)
	}
	for ctx.Err() == nil {
		var led atomic.Bool
		leaderelection.RunOrDie(ctx, leaderelection.LeaderElectionConfig{
			Lock:            lock,
			LeaseDuration:   leaseDuration,
			RenewDeadline:   renewDeadline,
			RetryPeriod:     retryPeriod,
			ReleaseOnCancel: true,
			Name:            r.cfg.LeaseName(),
			Callbacks: leaderelection.LeaderCallbacks{
				OnStartedLeading: func(ctx context.Context) {
					led.Store(true)
					r.log.Info("Leading certificate rotation", "lease", r.cfg.LeaseName(), "identity", identity)
					r.forgetTrust()
					_ = r.Run(ctx)
				},
				OnStoppedLeading: func() {
					if !led.Load() {
						return
					}
					r.log.Info("Stopped leading certificate rotation", "lease", r.cfg.LeaseName(), "identity", identity)
				},
			},
		})
	}
	return nil
}

// forgetTrust makes a new leader wait a full Propagation before it moves
// the serving certificate to a CA that it has not seen injected itself.
func (r *Rotator) forgetTrust() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.trustedCA, r.trustedSince = nil, time.Time{}
}
