package controller

import (
	"context"
	"io"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/go-logr/logr"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"k8s.io/apimachinery/pkg/util/wait"

	"github.com/flowforge/flowforge/contract"
	"github.com/flowforge/flowforge/policies"
)

func TestSettingsComeFromPolicyData(t *testing.T) {
	config, err := policies.NewConfigSource(policies.ConfigSourceOptions{})
	require.NoError(t, err)
	s := SettingsFrom(config, Options{})()
	assert.Equal(t, 300*time.Second, s.PendingTimeout)
	assert.Equal(t, "flowforge.io/export", s.JobFinalizer)
	assert.Equal(t, "flowforge.io/log-export", s.PodFinalizer)
	assert.Equal(t, contract.AnnotationTTLSecondsAfterFinished, s.TTLAnnotation, "the policy data and the templates contract name the same annotation")
	assert.Equal(t, contract.LabelApp, s.SelectorLabel)
	assert.Equal(t, contract.AppName, s.SelectorValue)
	assert.EqualValues(t, 10<<20, s.LogArchiveLimit, "default cap")
	assert.Equal(t, 2*time.Minute, s.ExportGrace)

	s = SettingsFrom(config, Options{LogArchiveLimit: 1024, ExportGrace: time.Second})()
	assert.EqualValues(t, 1024, s.LogArchiveLimit)
	assert.Equal(t, time.Second, s.ExportGrace)
}

func TestHTTPRunnableServesUntilStopped(t *testing.T) {
	free, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := free.Addr().String()
	require.NoError(t, free.Close())
	r := httpRunnable(addr, http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("hi")) }), logr.Discard())
	assert.False(t, r.(*httpServer).NeedLeaderElection(), "the history API serves on every replica")
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Start(ctx) }()
	var body string
	require.NoError(t, wait.PollUntilContextTimeout(context.Background(), 20*time.Millisecond, 10*time.Second, true, func(context.Context) (bool, error) {
		resp, err := http.Get("http://" + addr)
		if err != nil {
			return false, nil
		}
		defer resp.Body.Close() //nolint:errcheck // test
		b, _ := io.ReadAll(resp.Body)
		body = string(b)
		return true, nil
	}))
	assert.Equal(t, "hi", body)
	cancel()
	require.NoError(t, <-done)
}

func TestHTTPRunnableReportsABusyAddress(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer l.Close() //nolint:errcheck // test
	err = httpRunnable(l.Addr().String(), http.NotFoundHandler(), logr.Discard()).Start(context.Background())
	assert.ErrorContains(t, err, "history API")
}

func TestCheckLeaderElection(t *testing.T) {
	for _, tc := range []struct {
		name  string
		opts  Options
		fault string
	}{
		{name: "off: anything goes", opts: Options{LeaseDuration: time.Second, RenewDeadline: time.Hour}},
		{name: "defaults", opts: Options{LeaderElection: true}},
		{name: "short lease for tests", opts: Options{LeaderElection: true, LeaseDuration: 6 * time.Second, RenewDeadline: 4 * time.Second, RetryPeriod: time.Second}},
		{name: "lease not longer than renew", opts: Options{LeaderElection: true, LeaseDuration: 10 * time.Second}, fault: "must be longer than the renew deadline"},
		{name: "renew too close to retry", opts: Options{LeaderElection: true, RenewDeadline: 5 * time.Second, RetryPeriod: 5 * time.Second}, fault: "1.2 times the retry period"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := checkLeaderElection(tc.opts)
			if tc.fault == "" {
				require.NoError(t, err)
				return
			}
			require.ErrorContains(t, err, tc.fault)
		})
	}
	require.Nil(t, positive(0))
	require.Equal(t, 3*time.Second, *positive(3 * time.Second))
}

// With two replicas, the standby serves reads and does nothing else: the
// exports, log shipping and retention are the leader's.
func TestWhichRunnablesNeedTheLease(t *testing.T) {
	assert.False(t, (&historyAPI{}).NeedLeaderElection(), "the aggregated history API serves on every replica")
	assert.False(t, (&httpServer{}).NeedLeaderElection(), "the debugging history view serves on every replica")
	assert.True(t, (&Shipper{}).NeedLeaderElection(), "one replica ships logs")
	assert.True(t, (&Retention{}).NeedLeaderElection(), "one replica prunes")
}
