package cluster

import (
	"bufio"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/utils/ptr"

	"github.com/flowforge/flowforge/test/framework"
	"github.com/flowforge/flowforge/test/localcluster"
)

// restrictedJob is a Job that the "restricted" Pod Security Standard admits.
func restrictedJob(name string, annotations map[string]string) *batchv1.Job {
	return &batchv1.Job{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: batchv1.JobSpec{
			BackoffLimit: ptr.To[int32](0),
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Annotations: annotations},
				Spec: corev1.PodSpec{
					RestartPolicy: corev1.RestartPolicyNever,
					SecurityContext: &corev1.PodSecurityContext{
						RunAsNonRoot:   ptr.To(true),
						RunAsUser:      ptr.To[int64](1000),
						SeccompProfile: &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault},
					},
					Containers: []corev1.Container{{
						Name:  "worker",
						Image: "registry.example.com/flowforge/agent:1.0.0",
						SecurityContext: &corev1.SecurityContext{
							AllowPrivilegeEscalation: ptr.To(false),
							Capabilities:             &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}},
						},
					}},
				},
			},
		},
	}
}

func createJob(t *testing.T, ns string, job *batchv1.Job) {
	t.Helper()
	_, err := clientset.BatchV1().Jobs(ns).Create(context.Background(), job, metav1.CreateOptions{})
	require.NoError(t, err)
}

func TestCompliantJobCompletes(t *testing.T) {
	ns := framework.Namespace(t, clientset, "complete", framework.RestrictedLabels())
	createJob(t, ns, restrictedJob("ok", map[string]string{localcluster.AnnotationDuration: "500ms"}))

	job, err := framework.WaitForJobCondition(context.Background(), clientset, ns, "ok", batchv1.JobComplete)
	require.NoError(t, err)
	assert.Equal(t, int32(1), job.Status.Succeeded)

	pods, err := framework.JobPods(context.Background(), clientset, ns, "ok")
	require.NoError(t, err)
	require.Len(t, pods, 1)
	assert.Equal(t, corev1.PodSucceeded, pods[0].Status.Phase)
	assert.Equal(t, localcluster.GeneralNodeName, pods[0].Spec.NodeName, "untolerated pods land on the untainted node")
}

func TestFailingJobRetriesThenFails(t *testing.T) {
	ns := framework.Namespace(t, clientset, "retries", framework.RestrictedLabels())
	job := restrictedJob("exit3", map[string]string{localcluster.AnnotationExitCode: "3", localcluster.AnnotationDuration: "200ms"})
	job.Spec.BackoffLimit = ptr.To[int32](2)
	createJob(t, ns, job)

	done, err := framework.WaitForJobCondition(context.Background(), clientset, ns, "exit3", batchv1.JobFailed)
	require.NoError(t, err)
	assert.Equal(t, int32(3), done.Status.Failed, "one attempt plus backoffLimit retries")
	assert.Equal(t, "BackoffLimitExceeded", jobConditionReason(done, batchv1.JobFailed))

	pods, err := framework.JobPods(context.Background(), clientset, ns, "exit3")
	require.NoError(t, err)
	require.Len(t, pods, 3)
	for _, p := range pods {
		require.Len(t, p.Status.ContainerStatuses, 1, "pod %s", p.Name)
		term := p.Status.ContainerStatuses[0].State.Terminated
		require.NotNil(t, term, "pod %s has a terminated state", p.Name)
		assert.Equal(t, int32(3), term.ExitCode, "pod %s exit code", p.Name)
		assert.Equal(t, corev1.PodFailed, p.Status.Phase)
	}
}

func TestActiveDeadlineFailsJob(t *testing.T) {
	ns := framework.Namespace(t, clientset, "deadline", framework.RestrictedLabels())
	job := restrictedJob("slow", map[string]string{localcluster.AnnotationRun: "forever"})
	job.Spec.ActiveDeadlineSeconds = ptr.To[int64](2)
	createJob(t, ns, job)

	done, err := framework.WaitForJobCondition(context.Background(), clientset, ns, "slow", batchv1.JobFailed)
	require.NoError(t, err)
	assert.Equal(t, batchv1.JobReasonDeadlineExceeded, jobConditionReason(done, batchv1.JobFailed))
}

func TestTTLDeletesFinishedJob(t *testing.T) {
	ns := framework.Namespace(t, clientset, "ttl", framework.RestrictedLabels())
	job := restrictedJob("short-lived", map[string]string{localcluster.AnnotationDuration: "200ms"})
	job.Spec.TTLSecondsAfterFinished = ptr.To[int32](1)
	createJob(t, ns, job)

	_, err := framework.WaitForJobCondition(context.Background(), clientset, ns, "short-lived", batchv1.JobComplete)
	require.NoError(t, err)
	err = wait.PollUntilContextTimeout(context.Background(), 200*time.Millisecond, framework.DefaultTimeout, true, func(ctx context.Context) (bool, error) {
		_, err := clientset.BatchV1().Jobs(ns).Get(ctx, "short-lived", metav1.GetOptions{})
		return apierrors.IsNotFound(err), nil
	})
	require.NoError(t, err, "the TTL-after-finished controller deletes the Job")
}

func TestPodLogsStreamWhileRunning(t *testing.T) {
	ns := framework.Namespace(t, clientset, "logs", framework.RestrictedLabels())
	lines := []string{"cloning repository", "running task", "pushing branch", "done"}
	createJob(t, ns, restrictedJob("chatty", map[string]string{
		localcluster.AnnotationLogs:        strings.Join(lines, "\n"),
		localcluster.AnnotationLogInterval: "300ms",
		localcluster.AnnotationDuration:    "3s",
	}))

	ctx, cancel := context.WithTimeout(context.Background(), framework.DefaultTimeout)
	defer cancel()
	var pod corev1.Pod
	require.NoError(t, wait.PollUntilContextCancel(ctx, 100*time.Millisecond, true, func(ctx context.Context) (bool, error) {
		pods, err := framework.JobPods(ctx, clientset, ns, "chatty")
		if err != nil || len(pods) == 0 || pods[0].Status.Phase != corev1.PodRunning {
			return false, nil
		}
		pod = pods[0]
		return true, nil
	}))

	stream, err := clientset.CoreV1().Pods(ns).GetLogs(pod.Name, &corev1.PodLogOptions{Follow: true}).Stream(ctx)
	require.NoError(t, err)
	defer stream.Close() //nolint:errcheck // test cleanup
	scanner := bufio.NewScanner(stream)
	var got []string
	for len(got) < len(lines) && scanner.Scan() {
		got = append(got, scanner.Text())
		if len(got) == 1 {
			// The first line arrived through a follow stream; the pod must still be running.
			p, err := clientset.CoreV1().Pods(ns).Get(ctx, pod.Name, metav1.GetOptions{})
			require.NoError(t, err)
			assert.Equal(t, corev1.PodRunning, p.Status.Phase, "lines stream while the pod runs")
		}
	}
	assert.Equal(t, lines, got)
}

func TestPodSecurityRestrictedRefusesNonCompliantPod(t *testing.T) {
	ns := framework.Namespace(t, clientset, "psa", framework.RestrictedLabels())
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "root"},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{
			Name: "c", Image: "registry.example.com/x:1",
			SecurityContext: &corev1.SecurityContext{Privileged: ptr.To(true)},
		}}},
	}
	_, err := clientset.CoreV1().Pods(ns).Create(context.Background(), pod, metav1.CreateOptions{})
	require.Error(t, err)
	assert.True(t, apierrors.IsForbidden(err), "PodSecurity answers 403: %v", err)
	assert.Contains(t, err.Error(), `violates PodSecurity "restricted:latest"`)
	assert.Contains(t, err.Error(), "privileged")
}

func jobConditionReason(job *batchv1.Job, cond batchv1.JobConditionType) string {
	for _, c := range job.Status.Conditions {
		if c.Type == cond {
			return c.Reason
		}
	}
	return ""
}
