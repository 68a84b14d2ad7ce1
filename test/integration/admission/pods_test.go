package admission

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/utils/ptr"

	"github.com/flowforge/flowforge/test/framework"
	"github.com/flowforge/flowforge/test/localcluster"
)

// Issue 12, class 7: labelled Pods that no hardened Job created.

func managedRestrictedNamespace(t *testing.T, prefix string) string {
	t.Helper()
	labels := framework.RestrictedLabels()
	labels["flowforge.io/managed"] = "true"
	return framework.Namespace(t, clientset, prefix, labels)
}

var podLabels = map[string]string{"app": "flowforge", "job-id": "pod-1", "user-id": "u-1"}

// plainPodSpec is what a user writes: an image, nothing else.
func plainPodSpec() corev1.PodSpec {
	return corev1.PodSpec{Containers: []corev1.Container{{Name: "worker", Image: "ghcr.io/flowforge/claude-worker:1.4.0"}}}
}

// assertHardenedPod checks what the pod mutation sets, as the API server
// stored it (so after its own admission plugins ran again on the result).
func assertHardenedPod(t *testing.T, pod *corev1.Pod, deadline int64) {
	t.Helper()
	spec := pod.Spec
	require.NotNil(t, spec.RuntimeClassName)
	assert.Equal(t, "gvisor", *spec.RuntimeClassName)
	assert.Equal(t, "flowforge-worker", spec.PriorityClassName)
	require.NotNil(t, spec.Priority, "the API server resolved the priority")
	assert.Equal(t, int32(1000), *spec.Priority, "the priority of the FlowForge class, not the one resolved before the mutation")
	require.NotNil(t, spec.PreemptionPolicy)
	assert.Equal(t, corev1.PreemptNever, *spec.PreemptionPolicy)
	assert.Equal(t, corev1.RestartPolicyNever, spec.RestartPolicy)
	require.NotNil(t, spec.ActiveDeadlineSeconds)
	assert.Equal(t, deadline, *spec.ActiveDeadlineSeconds)
	assert.False(t, *spec.AutomountServiceAccountToken)
	assert.Equal(t, "gvisor", spec.NodeSelector["flowforge.io/sandbox"])
	require.NotNil(t, spec.SecurityContext)
	assert.True(t, *spec.SecurityContext.RunAsNonRoot)
	assert.Equal(t, corev1.SeccompProfileTypeLocalhost, spec.SecurityContext.SeccompProfile.Type)
	c := spec.Containers[0].SecurityContext
	require.NotNil(t, c)
	assert.False(t, *c.AllowPrivilegeEscalation)
	assert.True(t, *c.ReadOnlyRootFilesystem)
	assert.Equal(t, []corev1.Capability{"ALL"}, c.Capabilities.Drop)
	assert.Equal(t, "2", spec.Containers[0].Resources.Limits.Cpu().String())
	assert.Contains(t, pod.Annotations, "flowforge.io/policy-revision")
	assert.Equal(t, "medium", pod.Annotations["flowforge.io/profile"])
}

// waitPodRunning waits until the pod runs on a sandboxed worker node.
func waitPodRunning(ctx context.Context, t *testing.T, ns, name string) *corev1.Pod {
	t.Helper()
	var pod *corev1.Pod
	err := wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, framework.DefaultTimeout, true, func(ctx context.Context) (bool, error) {
		var err error
		pod, err = clientset.CoreV1().Pods(ns).Get(ctx, name, metav1.GetOptions{})
		return err == nil && pod.Status.Phase == corev1.PodRunning, err
	})
	require.NoError(t, err, "pod %s/%s did not run: %+v", ns, name, pod)
	node, err := clientset.CoreV1().Nodes().Get(ctx, pod.Spec.NodeName, metav1.GetOptions{})
	require.NoError(t, err)
	assert.Equal(t, "gvisor", node.Labels["flowforge.io/sandbox"], "scheduled onto the sandbox pool")
	return pod
}

func TestBareLabelledPodIsHardenedAndRuns(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	ns := managedRestrictedNamespace(t, "bare-pod")
	created, err := clientset.CoreV1().Pods(ns).Create(ctx, &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "agent", Labels: podLabels, Annotations: map[string]string{localcluster.AnnotationRun: "forever"}},
		Spec:       plainPodSpec(),
	}, metav1.CreateOptions{})
	require.NoError(t, err, "a labelled Pod is hardened, then passes FlowForge's validation and PodSecurity restricted")
	assertHardenedPod(t, created, 3600)
	assert.Empty(t, created.Finalizers, "the log-export finalizer belongs to Job pods")
	waitPodRunning(ctx, t, ns, "agent")
}

func TestBarePodTimeoutAnnotationSetsItsDeadline(t *testing.T) {
	t.Parallel()
	ns := managedRestrictedNamespace(t, "bare-timeout")
	created, err := clientset.CoreV1().Pods(ns).Create(context.Background(), &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "agent", Labels: podLabels, Annotations: map[string]string{"flowforge.io/timeout": "15m"}},
		Spec:       plainPodSpec(),
	}, metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}})
	require.NoError(t, err)
	assertHardenedPod(t, created, 900)

	_, err = clientset.CoreV1().Pods(ns).Create(context.Background(), &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "too-long", Labels: podLabels, Annotations: map[string]string{"flowforge.io/timeout": "48h"}},
		Spec:       plainPodSpec(),
	}, metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "pods.validate.flowforge.io")
	assert.Contains(t, err.Error(), "spec.activeDeadlineSeconds")
}

func TestDeploymentPodsAreHardenedThroughTheReplicaSet(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	ns := managedRestrictedNamespace(t, "deploy")
	selector := map[string]string{"app": "flowforge", "job-id": "web-1"}
	labels := map[string]string{"app": "flowforge", "job-id": "web-1", "user-id": "u-1"}
	_, err := clientset.AppsV1().Deployments(ns).Create(ctx, &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: "web"},
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr.To[int32](2),
			Selector: &metav1.LabelSelector{MatchLabels: selector},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels, Annotations: map[string]string{localcluster.AnnotationRun: "forever"}},
				Spec:       plainPodSpec(),
			},
		},
	}, metav1.CreateOptions{})
	require.NoError(t, err)

	var pods []corev1.Pod
	err = wait.PollUntilContextTimeout(ctx, 200*time.Millisecond, framework.DefaultTimeout, true, func(ctx context.Context) (bool, error) {
		list, err := clientset.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: "job-id=web-1"})
		if err != nil {
			return false, err
		}
		pods = list.Items
		return len(pods) == 2, nil
	})
	require.NoError(t, err, "kube-controller-manager's ReplicaSet controller created the pods through the webhooks")
	for i := range pods {
		pod := &pods[i]
		require.NotEmpty(t, pod.OwnerReferences)
		assert.Equal(t, "ReplicaSet", pod.OwnerReferences[0].Kind)
		assertHardenedPod(t, pod, 3600)
		waitPodRunning(ctx, t, ns, pod.Name)
	}
	dep, err := clientset.AppsV1().Deployments(ns).Get(ctx, "web", metav1.GetOptions{})
	require.NoError(t, err)
	assert.Empty(t, replicaFailures(dep), "no pod creation was refused")
}

// replicaFailures returns the Deployment's ReplicaFailure conditions.
func replicaFailures(dep *appsv1.Deployment) []appsv1.DeploymentCondition {
	var out []appsv1.DeploymentCondition
	for _, c := range dep.Status.Conditions {
		if c.Type == appsv1.DeploymentReplicaFailure && c.Status == corev1.ConditionTrue {
			out = append(out, c)
		}
	}
	return out
}

func TestUnsafeDeploymentPodsAreRefused(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	// Managed, without PodSecurity enforce: the PodSecurity plugin runs
	// before the webhooks and would refuse the pod first.
	ns := framework.Namespace(t, clientset, "deploy-unsafe", map[string]string{"flowforge.io/managed": "true"})
	labels := map[string]string{"app": "flowforge", "job-id": "web-2", "user-id": "u-1"}
	spec := plainPodSpec()
	spec.Containers[0].SecurityContext = &corev1.SecurityContext{AllowPrivilegeEscalation: ptr.To(true)}
	_, err := clientset.AppsV1().Deployments(ns).Create(ctx, &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: "web"},
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr.To[int32](1),
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: labels}, Spec: spec},
		},
	}, metav1.CreateOptions{})
	require.NoError(t, err, "the Deployment itself is not FlowForge's to refuse; its pods are")

	// The ReplicaSet reports the refusal of its pods.
	var msg string
	err = wait.PollUntilContextTimeout(ctx, 200*time.Millisecond, framework.DefaultTimeout, true, func(ctx context.Context) (bool, error) {
		list, err := clientset.AppsV1().ReplicaSets(ns).List(ctx, metav1.ListOptions{})
		if err != nil {
			return false, err
		}
		for _, rs := range list.Items {
			for _, c := range rs.Status.Conditions {
				if c.Type == appsv1.ReplicaSetReplicaFailure && c.Status == corev1.ConditionTrue {
					msg = c.Message
					return true, nil
				}
			}
		}
		return false, nil
	})
	require.NoError(t, err, "the ReplicaSet never reported a refused pod")
	assert.Contains(t, msg, "pods.validate.flowforge.io")
	assert.Contains(t, msg, "spec.containers[0].securityContext.allowPrivilegeEscalation")
	pods, err := clientset.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{})
	require.NoError(t, err)
	assert.Empty(t, pods.Items)
}
