package restart

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"

	"github.com/flowforge/flowforge/contract"
	"github.com/flowforge/flowforge/history"
	"github.com/flowforge/flowforge/history/store"
	"github.com/flowforge/flowforge/test/framework"
	"github.com/flowforge/flowforge/test/localcluster"
)

var (
	testCluster *localcluster.Cluster
	clientset   kubernetes.Interface
)

func TestMain(m *testing.M) {
	os.Exit(framework.Run(m, localcluster.Options{}, func(ctx context.Context, c *localcluster.Cluster) (func(), error) {
		testCluster = c
		cs, err := c.Clientset()
		if err != nil {
			return nil, err
		}
		clientset = cs
		hook, err := framework.StartWebhook(ctx, c, framework.WebhookOptions{})
		if err != nil {
			return nil, err
		}
		return hook.Stop, nil
	}))
}

func TestControllerStoppedMidExportAndRestarted(t *testing.T) {
	ctx := context.Background()
	ns := framework.Namespace(t, clientset, "restart", nil)
	lines := []string{"one", "two", "three", "four"}
	job := &batchv1.Job{
		ObjectMeta: metav1.ObjectMeta{
			Name:   contract.JobName("r1"),
			Labels: map[string]string{contract.LabelApp: contract.AppName, contract.LabelJobID: "r1", contract.LabelUserID: "alice"},
		},
		Spec: batchv1.JobSpec{Template: corev1.PodTemplateSpec{
			ObjectMeta: metav1.ObjectMeta{Annotations: map[string]string{
				localcluster.AnnotationLogs:        strings.Join(lines, "\n"),
				localcluster.AnnotationLogInterval: "200ms",
				localcluster.AnnotationDuration:    "2s",
			}},
			Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "worker", Image: "ghcr.io/flowforge/claude-worker:1.4.0"}}},
		}},
	}

	// The first controller stops right after archiving the logs, before it
	// records the final status or releases the Job.
	stopped := make(chan struct{})
	first, err := framework.StartController(ctx, testCluster, framework.ControllerOptions{
		ExportHook: func(step string) error {
			if step != "archived" {
				return nil
			}
			select {
			case <-stopped:
			default:
				close(stopped)
			}
			return errors.New("killed mid-export")
		},
	})
	require.NoError(t, err)
	_, err = clientset.BatchV1().Jobs(ns).Create(ctx, job, metav1.CreateOptions{})
	require.NoError(t, err)
	select {
	case <-stopped:
	case <-time.After(framework.DefaultTimeout):
		t.Fatal("the first controller never reached the export")
	}
	first.Stop()

	store, err := store.OpenSQLite(ctx, first.Database)
	require.NoError(t, err)
	rec, err := store.Job(ctx, "r1")
	require.NoError(t, err)
	assert.Nil(t, rec.Exported, "the first controller did not finish the export")
	require.NoError(t, store.Close())
	var stuck batchv1.Job
	got, err := clientset.BatchV1().Jobs(ns).Get(ctx, job.Name, metav1.GetOptions{})
	require.NoError(t, err)
	stuck = *got
	assert.Contains(t, stuck.Finalizers, "flowforge.io/export", "the Job is kept until its export completes")

	// The second controller takes over with the same store.
	second, err := framework.StartController(ctx, testCluster, framework.ControllerOptions{Database: first.Database})
	require.NoError(t, err)
	defer second.Stop()
	hc := &history.Client{BaseURL: second.HistoryURL}
	require.NoError(t, wait.PollUntilContextTimeout(ctx, 200*time.Millisecond, framework.DefaultTimeout, true, func(ctx context.Context) (bool, error) {
		rec, err = hc.Job(ctx, "r1")
		return err == nil && rec.Exported != nil, nil
	}))

	assert.Equal(t, history.StatusSucceeded, rec.Status)
	require.Len(t, rec.Attempts, 1, "one attempt, recorded once")
	var logs strings.Builder
	require.NoError(t, hc.Logs(ctx, "r1", 0, "", &logs))
	assert.Equal(t, strings.Join(lines, "\n")+"\n", logs.String(), "the archive is complete, and not doubled")
	jobs, err := hc.Jobs(ctx, "alice", "", "", 0)
	require.NoError(t, err)
	assert.Len(t, jobs, 1, "one record")

	require.NoError(t, wait.PollUntilContextTimeout(ctx, 200*time.Millisecond, framework.DefaultTimeout, true, func(ctx context.Context) (bool, error) {
		j, err := clientset.BatchV1().Jobs(ns).Get(ctx, job.Name, metav1.GetOptions{})
		return err == nil && len(j.Finalizers) == 0, nil
	}), "the second controller releases the Job")

	events, err := clientset.CoreV1().Events(ns).List(ctx, metav1.ListOptions{FieldSelector: fields.OneTermEqualSelector("involvedObject.name", job.Name).String()})
	require.NoError(t, err)
	counts := map[string]int{}
	for _, e := range events.Items {
		counts[e.Reason] += int(max(e.Count, 1))
	}
	assert.Equal(t, 1, counts["Started"], "%v", counts)
	assert.Equal(t, 1, counts["Succeeded"], "%v", counts)
	assert.Equal(t, 1, counts["Exported"], "%v", counts)

	duration, err := framework.ScrapeMetric(ctx, second.MetricsURL, `flowforge_job_duration_seconds_count{status="Succeeded"}`)
	require.NoError(t, err)
	assert.Equal(t, 1.0, duration, "the job's duration is observed once across both controllers")

	// Every line reached the log sink (at least once: a line shipped in the
	// last second before a crash may be shipped again).
	shipped := map[string]bool{}
	for _, c := range []*framework.Controller{first, second} {
		for _, l := range c.Shipped.Lines() {
			var m map[string]any
			require.NoError(t, json.Unmarshal([]byte(l), &m))
			shipped[m["msg"].(string)] = true
		}
	}
	for _, l := range lines {
		assert.True(t, shipped[l], "line %q was shipped", l)
	}
}
