package serving

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"

	"github.com/flowforge/flowforge/contract"
	"github.com/flowforge/flowforge/test/framework"
)

// TestAStoppingReplicaDrains stops one replica (its context ends, as
// SIGTERM ends it through controller-runtime's signal handler) under a
// stream of labelled Job creates through the API server: the replica
// fails /readyz at once and says it is draining, while it still runs (it
// serves on for its drain delay, then shuts down gracefully), and not one
// admission fails, before, during or after.
func TestAStoppingReplicaDrains(t *testing.T) {
	ns := framework.Namespace(t, clientset, "drain", framework.RestrictedLabels())
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var (
		total, failed, duringDrain atomic.Int64
		draining                   atomic.Bool
		mu                         sync.Mutex
		failures                   []string
		wg                         sync.WaitGroup
		seq                        atomic.Int64
	)
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			tick := time.NewTicker(100 * time.Millisecond)
			defer tick.Stop()
			for {
				select {
				case <-ctx.Done():
					return
				case <-tick.C:
				}
				name := fmt.Sprintf("drain-%d", seq.Add(1))
				created, err := clientset.BatchV1().Jobs(ns).Create(context.Background(), job(name), metav1.CreateOptions{})
				total.Add(1)
				if draining.Load() {
					duringDrain.Add(1)
				}
				if err == nil && created.Annotations[contract.AnnotationPolicyRevision] == "" {
					err = fmt.Errorf("admitted unhardened")
				}
				if err != nil {
					failed.Add(1)
					mu.Lock()
					failures = append(failures, fmt.Sprintf("%s: %v", name, err))
					mu.Unlock()
				}
			}
		}()
	}
	time.Sleep(2 * time.Second)

	const stopping = 1
	probe := hook.Replicas[stopping].ProbeURL + "/readyz?verbose"
	readyz := func() (int, string, error) {
		resp, err := http.Get(probe) //nolint:gosec,noctx // the test's own probe address
		if err != nil {
			return 0, "", err
		}
		defer resp.Body.Close() //nolint:errcheck // read below
		body, err := io.ReadAll(resp.Body)
		return resp.StatusCode, string(body), err
	}
	code, _, err := readyz()
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, code, "ready before the stop")

	stopped := make(chan error, 1)
	draining.Store(true)
	go func() { stopped <- hook.StopReplica(stopping) }()
	var body string
	err = wait.PollUntilContextTimeout(context.Background(), 20*time.Millisecond, framework.DefaultTimeout, true, func(context.Context) (bool, error) {
		select {
		case err := <-stopped:
			return false, fmt.Errorf("the replica stopped before its readiness was seen failing: %v", err)
		default:
		}
		code, body, err = readyz()
		return err == nil && code == http.StatusServiceUnavailable, nil
	})
	require.NoError(t, err)
	require.Contains(t, body, "draining", "readiness says why")
	require.NoError(t, <-stopped, "the replica shut down gracefully")
	draining.Store(false)
	time.Sleep(2 * time.Second)
	require.NoError(t, hook.StartReplica(context.Background(), stopping))
	time.Sleep(time.Second)
	cancel()
	wg.Wait()
	t.Logf("%d Job creates, %d while the replica drained and stopped, %d failed", total.Load(), duringDrain.Load(), failed.Load())
	require.Zero(t, failed.Load(), "failed admissions:\n%s", strings.Join(failures, "\n"))
	require.Positive(t, duringDrain.Load(), "no admission while the replica drained: the test proved nothing")
}
