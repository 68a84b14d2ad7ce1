package admission

import (
	"bytes"
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/httpstream"
	"k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/tools/remotecommand"

	"github.com/flowforge/flowforge/test/framework"
	"github.com/flowforge/flowforge/test/localcluster"
)

// Issue 12, class 8: interactive access, in-place resize and CronJobs.

// runningAgent creates a labelled bare Pod (hardened by the webhook) that
// runs until deleted, and waits until it runs.
func runningAgent(ctx context.Context, t *testing.T, ns string) *corev1.Pod {
	t.Helper()
	_, err := clientset.CoreV1().Pods(ns).Create(ctx, &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "agent", Labels: podLabels, Annotations: map[string]string{localcluster.AnnotationRun: "forever"}},
		Spec:       plainPodSpec(),
	}, metav1.CreateOptions{})
	require.NoError(t, err)
	return waitPodRunning(ctx, t, ns, "agent")
}

// stream runs exec or attach as kubectl does: WebSocket first, SPDY as
// the fallback.
func stream(ctx context.Context, t *testing.T, ns, pod, sub string, opts runtime.Object) error {
	t.Helper()
	req := clientset.CoreV1().RESTClient().Post().Namespace(ns).Resource("pods").Name(pod).SubResource(sub).VersionedParams(opts, scheme.ParameterCodec)
	ws, err := remotecommand.NewWebSocketExecutor(testCluster.RESTConfig, "GET", req.URL().String())
	require.NoError(t, err)
	spdy, err := remotecommand.NewSPDYExecutor(testCluster.RESTConfig, "POST", req.URL())
	require.NoError(t, err)
	exec, err := remotecommand.NewFallbackExecutor(ws, spdy, func(err error) bool {
		return httpstream.IsUpgradeFailure(err) || httpstream.IsHTTPSProxyError(err)
	})
	require.NoError(t, err)
	var out bytes.Buffer
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	return exec.StreamWithContext(ctx, remotecommand.StreamOptions{Stdin: bytes.NewReader(nil), Stdout: &out, Stderr: &out})
}

func TestExecAndAttachOnALabelledPodAreRefused(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	ns := managedRestrictedNamespace(t, "interactive")
	runningAgent(ctx, t, ns)

	err := stream(ctx, t, ns, "agent", "exec", &corev1.PodExecOptions{Container: "worker", Command: []string{"sh", "-c", "env"}, Stdin: true, Stdout: true, Stderr: true})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "pods-connect.validate.flowforge.io")
	assert.Contains(t, err.Error(), `exec into FlowForge pod "agent" is not allowed`)

	err = stream(ctx, t, ns, "agent", "attach", &corev1.PodAttachOptions{Container: "worker", Stdin: true, Stdout: true, Stderr: true})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "pods-connect.validate.flowforge.io")
	assert.Contains(t, err.Error(), `attach to FlowForge pod "agent" is not allowed`)

	// What a user sees with the real CLI.
	out, err := kubectl(t, "exec", "-n", ns, "agent", "-c", "worker", "--", "env")
	require.Error(t, err)
	assert.Contains(t, out, `admission webhook "pods-connect.validate.flowforge.io" denied the request`)
	assert.Contains(t, out, `FlowForge: pods/exec: exec into FlowForge pod "agent" is not allowed`)
}

func TestPortForwardAndProxyOnALabelledPodAreRefused(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	ns := managedRestrictedNamespace(t, "forward")
	runningAgent(ctx, t, ns)
	// Admission runs before the API server upgrades the connection or dials
	// the kubelet, so a plain request gets the webhook's answer.
	err := clientset.CoreV1().RESTClient().Post().Namespace(ns).Resource("pods").Name("agent").SubResource("portforward").
		Param("ports", "8080").Do(ctx).Error()
	require.Error(t, err)
	assert.True(t, apierrors.IsForbidden(err), "%v", err)
	assert.Contains(t, err.Error(), `port-forward to FlowForge pod "agent" is not allowed`)

	err = clientset.CoreV1().RESTClient().Get().Namespace(ns).Resource("pods").Name("agent:8080").SubResource("proxy").Do(ctx).Error()
	require.Error(t, err)
	assert.Contains(t, err.Error(), "pods-connect.validate.flowforge.io")
	assert.Contains(t, err.Error(), "pods/proxy")
}

func TestInPlaceResizeOfALabelledPodIsRefused(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	ns := managedRestrictedNamespace(t, "resize")
	// A pod whose containers are not running yet: the API server refuses a
	// resize of running containers whose status reports no resources (kwok
	// reports none, as a kubelet without in-place resize) before any webhook.
	pod, err := clientset.CoreV1().Pods(ns).Create(ctx, &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "agent", Labels: podLabels, Annotations: map[string]string{localcluster.AnnotationImagePull: "fail"}},
		Spec:       plainPodSpec(),
	}, metav1.CreateOptions{})
	require.NoError(t, err)
	patch, err := json.Marshal(map[string]any{"spec": map[string]any{"containers": []map[string]any{{
		"name":      "worker",
		"resources": map[string]any{"limits": map[string]any{"cpu": "1500m"}},
	}}}})
	require.NoError(t, err)
	_, err = clientset.CoreV1().Pods(ns).Patch(ctx, pod.Name, types.StrategicMergePatchType, patch, metav1.PatchOptions{}, "resize")
	require.Error(t, err)
	assert.Contains(t, err.Error(), "pods.validate.flowforge.io")
	assert.Contains(t, err.Error(), "spec.containers[0].resources")
	assert.Contains(t, err.Error(), "in-place resize of a FlowForge pod is not allowed")
}

func cronJob(name string, templateLabels map[string]string, privileged bool) *batchv1.CronJob {
	job := plainJob(name, nil)
	// The API server validates the template itself before any webhook.
	job.Spec.Template.Spec.RestartPolicy = corev1.RestartPolicyNever
	if privileged {
		job.Spec.Template.Spec.Containers[0].SecurityContext = &corev1.SecurityContext{Privileged: &privileged}
	}
	return &batchv1.CronJob{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: batchv1.CronJobSpec{
			Schedule:          "0 3 * * *",
			ConcurrencyPolicy: batchv1.ForbidConcurrent,
			JobTemplate:       batchv1.JobTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: templateLabels}, Spec: job.Spec},
		},
	}
}

func TestFlowForgeCronJobsAreRefusedUpFront(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	ns := managedRestrictedNamespace(t, "cron")
	labels := map[string]string{"app": "flowforge", "job-id": "nightly", "user-id": "u-1"}
	dryRun := metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}}

	_, err := clientset.BatchV1().CronJobs(ns).Create(ctx, cronJob("nightly", labels, false), dryRun)
	require.Error(t, err, "a job-id names one Job: a CronJob may not stamp out many")
	assert.Contains(t, err.Error(), "cronjobs.validate.flowforge.io")
	assert.Contains(t, err.Error(), "spec.jobTemplate.metadata.labels[app]")
	assert.Contains(t, err.Error(), "one-shot")

	_, err = clientset.BatchV1().CronJobs(ns).Create(ctx, cronJob("unlabelled", map[string]string{"team": "x"}, false), dryRun)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "managed-cronjobs.validate.flowforge.io")
	assert.Contains(t, err.Error(), "not allowed in a FlowForge namespace")

	other := framework.Namespace(t, clientset, "cron-elsewhere", nil)
	_, err = clientset.BatchV1().CronJobs(other).Create(ctx, cronJob("labelled-elsewhere", labels, false), dryRun)
	require.Error(t, err, "a labelled template is refused outside managed namespaces too")
	assert.Contains(t, err.Error(), "spec.jobTemplate.metadata.labels[app]")
	_, err = clientset.BatchV1().CronJobs(other).Create(ctx, cronJob("theirs", map[string]string{"team": "x"}, true), dryRun)
	require.NoError(t, err, "an unlabelled CronJob outside managed namespaces is not FlowForge's")
}
