package failover

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/dynamic"

	"github.com/flowforge/flowforge/contract"
	"github.com/flowforge/flowforge/deploy"
	"github.com/flowforge/flowforge/history"
	historyv1alpha1 "github.com/flowforge/flowforge/history/apis/v1alpha1"
	"github.com/flowforge/flowforge/history/store"
	"github.com/flowforge/flowforge/test/framework"
	"github.com/flowforge/flowforge/test/localcluster"
)

// The election's timings are the program's defaults (what deploy/ runs):
// a killed leader is replaced once its lease expires.
const (
	leaseDuration = 15 * time.Second
	renewDeadline = 10 * time.Second
	retryPeriod   = 2 * time.Second
	leaseName     = "flowforge-controller-failover"
)

// envJobs overrides the size of the burst (default defaultJobs, the
// issue's number).
const (
	envJobs     = "FLOWFORGE_FAILOVER_JOBS"
	defaultJobs = 500
)

// logLines is what every Job's pod prints (kwok plays it).
var logLines = []string{"cloning", "working", "done"}

func burstSize(t *testing.T) int {
	v := os.Getenv(envJobs)
	if v == "" {
		return defaultJobs
	}
	n, err := strconv.Atoi(v)
	require.NoError(t, err, "$%s", envJobs)
	require.Positive(t, n, "$%s", envJobs)
	return n
}

// takeover is what the test measures after the kill.
type takeover struct {
	leading   time.Duration // kill → the standby reports it leads
	reconcile time.Duration // kill → the standby's first finished reconcile
	err       error
}

func TestLeaderKilledMidBurst(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	n := burstSize(t)
	began := time.Now()
	logf := func(format string, args ...any) {
		t.Helper()
		t.Logf("[%5.1fs] "+format, append([]any{time.Since(began).Seconds()}, args...)...)
	}
	dbURL, err := pg.CreateDatabase(ctx, "failover")
	require.NoError(t, err)
	ns := framework.Namespace(t, clientset, "failover", nil)

	// Two replicas start together, as a Deployment's do (and both run the
	// schema migrations at once).
	replicas := make([]*framework.ControllerProcess, 2)
	errs := make([]error, 2)
	var wg sync.WaitGroup
	for i := range replicas {
		wg.Go(func() {
			replicas[i], errs[i] = framework.StartControllerProcess(ctx, testCluster, framework.ControllerProcessOptions{
				Binary: controllerBin, Dir: workDir, Name: fmt.Sprintf("replica-%d", i), Database: dbURL,
				LeaderElectionID: leaseName, LeaseDuration: leaseDuration, RenewDeadline: renewDeadline, RetryPeriod: retryPeriod,
				HistoryCertDir: historyAPI.CertDir,
			})
		})
	}
	wg.Wait()
	for _, r := range replicas {
		if r == nil {
			continue
		}
		t.Cleanup(func() {
			r.Stop()
			if t.Failed() {
				t.Logf("--- last lines of %s ---\n%s", r.LogPath, r.LogTail(60))
			}
		})
	}
	for _, err := range errs {
		require.NoError(t, err)
	}
	leader, standby := awaitLeader(ctx, t, replicas)
	logf("leader %s (pid %d), standby %s (pid %d)", leader.Name, leader.Pid(), standby.Name, standby.Pid())

	// The API server reaches the aggregated history API on the standby:
	// every replica serves it, not only the leader.
	reg := *historyAPI
	reg.Port = standby.HistoryAPIPort()
	require.NoError(t, reg.Register(ctx, testCluster))
	executions, err := dynamic.NewForConfig(testCluster.RESTConfig)
	require.NoError(t, err)
	if err := framework.WaitHistoryAPI(ctx, testCluster); err != nil {
		apiService, getErr := executions.Resource(schema.GroupVersionResource{Group: "apiregistration.k8s.io", Version: "v1", Resource: "apiservices"}).
			Get(ctx, historyv1alpha1.SchemeGroupVersion.Version+"."+historyv1alpha1.GroupName, metav1.GetOptions{})
		if getErr != nil {
			t.Fatalf("%v (APIService: %v)", err, getErr)
		}
		conditions, _, _ := unstructured.NestedSlice(apiService.Object, "status", "conditions")
		t.Fatalf("%v (APIService status: %v)", err, conditions)
	}

	hist, err := store.Open(ctx, dbURL)
	require.NoError(t, err)
	t.Cleanup(func() { _ = hist.Close() })

	// The burst, in the background.
	run := strconv.FormatInt(time.Now().UnixNano()%1_000_000, 36)
	ids := make([]string, n)
	for i := range ids {
		ids[i] = fmt.Sprintf("fo-%s-%d", run, i)
	}
	created := make(chan error, 1)
	go func() { created <- createAll(ctx, ns, ids) }()

	// Kill the leader in the middle: once a fifth of the Jobs is exported.
	var atKill counts
	require.NoError(t, wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, 5*time.Minute, true, func(ctx context.Context) (bool, error) {
		atKill, err = count(ctx, hist, ns)
		return err == nil && atKill.exported >= n/5, err
	}), "a fifth of the burst exported before the kill")
	standbyReconciles, err := standby.Reconciles(ctx)
	require.NoError(t, err)
	require.Zero(t, standbyReconciles, "a standby reconciles nothing: the export loop is the leader's")
	standbyLeads, err := standby.IsLeader(ctx)
	require.NoError(t, err)
	require.False(t, standbyLeads)
	// The standby serves the history through the API server while it waits.
	listed, err := listExecutions(ctx, executions, ns)
	require.NoError(t, err, "the standby serves the aggregated history API")
	require.GreaterOrEqual(t, listed, atKill.exported, "the standby reads what the leader wrote")

	leader.Kill()
	killed := time.Now()
	measured := make(chan takeover, 1)
	go func() { measured <- measureTakeover(ctx, standby, killed) }()
	logf("killed the leader with %d of %d Jobs recorded and %d exported", atKill.recorded, n, atKill.exported)

	require.NoError(t, <-created, "create the burst")
	logf("created all %d Jobs", n)
	to := <-measured
	require.NoError(t, to.err, "the standby takes over")
	logf("takeover (lease %s, renew %s, retry %s): leading %s after the kill, first reconcile %s after the kill",
		leaseDuration, renewDeadline, retryPeriod, to.leading.Round(time.Millisecond), to.reconcile.Round(time.Millisecond))

	var final counts
	require.NoError(t, wait.PollUntilContextTimeout(ctx, 500*time.Millisecond, 5*time.Minute, true, func(ctx context.Context) (bool, error) {
		final, err = count(ctx, hist, ns)
		return err == nil && final.exported == n, err
	}), "every Job exported after the failover (last count: %+v)", final)
	logf("all %d Jobs exported %s after the kill", n, time.Since(killed).Round(time.Second))

	// Exactly once: one record per job id, with one attempt and one
	// complete, undoubled log archive.
	recs, err := hist.Jobs(ctx, history.Filter{Namespace: ns})
	require.NoError(t, err)
	byID := map[string]int{}
	for _, r := range recs {
		byID[r.ID]++
	}
	require.Len(t, recs, n, "one record per Job")
	want := strings.Join(logLines, "\n") + "\n"
	for _, id := range ids {
		require.Equal(t, 1, byID[id], "records of %s", id)
		rec, err := hist.Job(ctx, id)
		require.NoError(t, err)
		require.NotNil(t, rec.Exported, id)
		require.Equal(t, history.StatusSucceeded, rec.Status, id)
		require.Len(t, rec.Attempts, 1, "attempts of %s", id)
		archives, err := hist.LogArchives(ctx, rec.UID)
		require.NoError(t, err)
		require.Len(t, archives, 1, "log archives of %s", id)
		text, err := archives[0].Text()
		require.NoError(t, err)
		require.Equal(t, want, string(text), "the log of %s, archived once", id)
	}

	listed, err = listExecutions(ctx, executions, ns)
	require.NoError(t, err)
	require.Equal(t, n, listed, "kubectl get executions lists every Job once")

	// Released: the export finalizer is gone from every Job.
	jobs, err := clientset.BatchV1().Jobs(ns).List(ctx, metav1.ListOptions{})
	require.NoError(t, err)
	require.Len(t, jobs.Items, n)
	for _, j := range jobs.Items {
		require.NotContains(t, j.Finalizers, "flowforge.io/export", j.Name)
	}

	// The Lease moved to the standby.
	lease, err := clientset.CoordinationV1().Leases(deploy.Namespace).Get(ctx, leaseName, metav1.GetOptions{})
	require.NoError(t, err)
	require.NotNil(t, lease.Spec.LeaseTransitions)
	require.GreaterOrEqual(t, *lease.Spec.LeaseTransitions, int32(1))
	leads, err := standby.IsLeader(ctx)
	require.NoError(t, err)
	require.True(t, leads, "the former standby leads")
	logf("checked")
}

// awaitLeader waits until exactly one replica leads and returns it and the
// other.
func awaitLeader(ctx context.Context, t *testing.T, replicas []*framework.ControllerProcess) (leader, standby *framework.ControllerProcess) {
	t.Helper()
	require.NoError(t, wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, 2*leaseDuration+framework.DefaultTimeout, true, func(ctx context.Context) (bool, error) {
		var leading []int
		for i, r := range replicas {
			ok, err := r.IsLeader(ctx)
			if err != nil {
				return false, err
			}
			if ok {
				leading = append(leading, i)
			}
		}
		switch len(leading) {
		case 0:
			return false, nil
		case 1:
			leader, standby = replicas[leading[0]], replicas[1-leading[0]]
			return true, nil
		default:
			return false, fmt.Errorf("replicas %v lead at once", leading)
		}
	}), "one replica leads")
	return leader, standby
}

// measureTakeover polls the standby until it leads and has finished a
// reconcile, and returns both times since the kill (polling resolution:
// 20 ms plus a metrics scrape).
func measureTakeover(ctx context.Context, standby *framework.ControllerProcess, killed time.Time) takeover {
	var to takeover
	to.err = wait.PollUntilContextTimeout(ctx, 20*time.Millisecond, 4*leaseDuration, true, func(ctx context.Context) (bool, error) {
		if to.leading == 0 {
			leads, err := standby.IsLeader(ctx)
			if err != nil || !leads {
				return false, nil //nolint:nilerr // a scrape may fail while the replica is busy; keep polling
			}
			to.leading = time.Since(killed)
		}
		done, err := standby.Reconciles(ctx)
		if err != nil || done == 0 {
			return false, nil //nolint:nilerr // as above
		}
		to.reconcile = time.Since(killed)
		return true, nil
	})
	return to
}

// listExecutions counts a namespace's executions, read through the API
// server (page by page).
func listExecutions(ctx context.Context, dyn dynamic.Interface, ns string) (int, error) {
	gvr := historyv1alpha1.SchemeGroupVersion.WithResource(historyv1alpha1.Resource)
	total, cont := 0, ""
	for {
		list, err := dyn.Resource(gvr).Namespace(ns).List(ctx, metav1.ListOptions{Limit: 500, Continue: cont})
		if err != nil {
			return 0, err
		}
		total += len(list.Items)
		if cont = list.GetContinue(); cont == "" {
			return total, nil
		}
	}
}

// counts are the burst's records in the store.
type counts struct{ recorded, exported int }

func count(ctx context.Context, hist history.Store, ns string) (counts, error) {
	recs, err := hist.Jobs(ctx, history.Filter{Namespace: ns})
	if err != nil {
		return counts{}, err
	}
	c := counts{recorded: len(recs)}
	for _, r := range recs {
		if r.Exported != nil {
			c.exported++
		}
	}
	return c, nil
}

// createAll creates a Job per id, 32 at a time, retrying what the webhook
// refuses for load.
func createAll(ctx context.Context, ns string, ids []string) error {
	sem := make(chan struct{}, 32)
	errs := make(chan error, len(ids))
	var wg sync.WaitGroup
	for _, id := range ids {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			if err := create(ctx, ns, job(id)); err != nil {
				errs <- fmt.Errorf("create %s: %w", id, err)
			}
		})
	}
	wg.Wait()
	close(errs)
	var all []error
	for err := range errs {
		all = append(all, err)
	}
	if len(all) > 0 {
		return fmt.Errorf("%d of %d creates failed, first: %w", len(all), len(ids), all[0])
	}
	return nil
}

func create(ctx context.Context, ns string, j *batchv1.Job) error {
	backoff := 50 * time.Millisecond
	for attempt := 1; ; attempt++ {
		_, err := clientset.BatchV1().Jobs(ns).Create(ctx, j, metav1.CreateOptions{})
		retry := apierrors.IsInternalError(err) || apierrors.IsTooManyRequests(err) || apierrors.IsServerTimeout(err)
		if err == nil || attempt == 50 || !retry {
			return err
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, time.Second)
	}
}

// job is a plain agent Job whose pod runs 2 s and prints logLines.
func job(id string) *batchv1.Job {
	return &batchv1.Job{
		ObjectMeta: metav1.ObjectMeta{
			Name:   contract.JobName(id),
			Labels: map[string]string{contract.LabelApp: contract.AppName, contract.LabelJobID: id, contract.LabelUserID: "failover"},
		},
		Spec: batchv1.JobSpec{Template: corev1.PodTemplateSpec{
			ObjectMeta: metav1.ObjectMeta{Annotations: map[string]string{
				localcluster.AnnotationDuration:    "2s",
				localcluster.AnnotationLogs:        strings.Join(logLines, "\n"),
				localcluster.AnnotationLogInterval: "300ms",
			}},
			Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "worker", Image: "ghcr.io/flowforge/claude-worker:1.4.0"}}},
		}},
	}
}
