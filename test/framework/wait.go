package framework

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/rand"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"

	"github.com/flowforge/flowforge/test/localcluster"
)

// DefaultTimeout bounds waits for things the cluster does on its own. It is
// a hang guard, not a speed check: on a loaded machine (a clean-clone make
// test at load 25) a pod create the webhook was too slow for puts the Job
// controller into its backoff, and a Job took more than a minute to start.
const DefaultTimeout = 2 * time.Minute

// Namespace creates a uniquely named namespace with labels, waits until pods
// can be created in it, and deletes it when the test ends.
func Namespace(t testing.TB, cs kubernetes.Interface, prefix string, labels map[string]string) string {
	t.Helper()
	name := prefix + "-" + rand.String(5)
	ctx, cancel := context.WithTimeout(context.Background(), DefaultTimeout)
	defer cancel()
	if err := localcluster.CreateNamespace(ctx, cs, name, labels); err != nil {
		t.Fatalf("create namespace: %v", err)
	}
	t.Cleanup(func() {
		ReleaseFinalizers(context.Background(), cs, name)
		_ = cs.CoreV1().Namespaces().Delete(context.Background(), name, metav1.DeleteOptions{})
	})
	return name
}

// ReleaseFinalizers removes FlowForge's export finalizers from the Jobs and
// Pods of a namespace, so that a test without the controller can delete it.
func ReleaseFinalizers(ctx context.Context, cs kubernetes.Interface, ns string) {
	patch := []byte(`{"metadata":{"finalizers":null}}`)
	if jobs, err := cs.BatchV1().Jobs(ns).List(ctx, metav1.ListOptions{}); err == nil {
		for _, j := range jobs.Items {
			if len(j.Finalizers) > 0 {
				_, _ = cs.BatchV1().Jobs(ns).Patch(ctx, j.Name, types.MergePatchType, patch, metav1.PatchOptions{})
			}
		}
	}
	if pods, err := cs.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{}); err == nil {
		for _, p := range pods.Items {
			if slices.Contains(p.Finalizers, "flowforge.io/log-export") {
				keep := slices.DeleteFunc(slices.Clone(p.Finalizers), func(f string) bool { return f == "flowforge.io/log-export" })
				body, _ := json.Marshal(map[string]any{"metadata": map[string]any{"finalizers": keep, "resourceVersion": p.ResourceVersion}})
				_, _ = cs.CoreV1().Pods(ns).Patch(ctx, p.Name, types.MergePatchType, body, metav1.PatchOptions{})
			}
		}
	}
}

// RestrictedLabels enforce the "restricted" Pod Security Standard.
func RestrictedLabels() map[string]string {
	return map[string]string{"pod-security.kubernetes.io/enforce": "restricted"}
}

// WaitForJobCondition waits until the Job has a condition of the given type
// with status True and returns the Job.
func WaitForJobCondition(ctx context.Context, cs kubernetes.Interface, ns, name string, cond batchv1.JobConditionType) (*batchv1.Job, error) {
	var job *batchv1.Job
	err := wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, DefaultTimeout, true, func(ctx context.Context) (bool, error) {
		var err error
		job, err = cs.BatchV1().Jobs(ns).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return false, nil
		}
		return JobHasCondition(job, cond), nil
	})
	if err != nil {
		return job, fmt.Errorf("job %s/%s never got condition %s: %w (status: %s)", ns, name, cond, err, describeJob(job))
	}
	return job, nil
}

// JobHasCondition reports whether the Job has the condition with status True.
func JobHasCondition(job *batchv1.Job, cond batchv1.JobConditionType) bool {
	for _, c := range job.Status.Conditions {
		if c.Type == cond && c.Status == corev1.ConditionTrue {
			return true
		}
	}
	return false
}

func describeJob(job *batchv1.Job) string {
	if job == nil {
		return "not found"
	}
	var parts []string
	for _, c := range job.Status.Conditions {
		parts = append(parts, fmt.Sprintf("%s=%s(%s)", c.Type, c.Status, c.Reason))
	}
	return fmt.Sprintf("active=%d succeeded=%d failed=%d conditions=[%s]",
		job.Status.Active, job.Status.Succeeded, job.Status.Failed, strings.Join(parts, " "))
}

// JobPods lists the pods of a Job.
func JobPods(ctx context.Context, cs kubernetes.Interface, ns, jobName string) ([]corev1.Pod, error) {
	list, err := cs.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: batchv1.JobNameLabel + "=" + jobName})
	if err != nil {
		return nil, fmt.Errorf("list pods of job %s: %w", jobName, err)
	}
	return list.Items, nil
}
