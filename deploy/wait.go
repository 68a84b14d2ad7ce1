package deploy

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"

	"github.com/flowforge/flowforge/contract"
)

// WaitServed waits, up to timeout, until the API server calls FlowForge's
// webhook for a labelled Job in namespace: a dry-run create comes back
// hardened (with the policy-revision annotation) or refused by a webhook.
// Until the API server has picked up the webhook configurations and the
// Service they reference, the create is admitted unhardened or fails
// calling the webhook; the error then names the last answer.
func WaitServed(ctx context.Context, cs kubernetes.Interface, namespace string, timeout time.Duration) error {
	job := &batchv1.Job{
		ObjectMeta: metav1.ObjectMeta{
			GenerateName: "flowforge-webhook-probe-",
			Namespace:    namespace,
			Labels:       map[string]string{contract.LabelApp: contract.AppName},
		},
		Spec: batchv1.JobSpec{Template: corev1.PodTemplateSpec{Spec: corev1.PodSpec{
			RestartPolicy: corev1.RestartPolicyNever,
			Containers:    []corev1.Container{{Name: "probe", Image: "busybox"}},
		}}},
	}
	var last error
	err := wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, timeout, true, func(ctx context.Context) (bool, error) {
		got, err := cs.BatchV1().Jobs(namespace).Create(ctx, job, metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}})
		switch {
		case err == nil && got.Annotations[contract.AnnotationPolicyRevision] != "":
			return true, nil
		case err != nil && strings.Contains(err.Error(), "denied the request"):
			return true, nil
		case err != nil:
			last = err
		default:
			last = errors.New("a labelled Job was admitted unhardened: the webhook configurations are not in force yet")
		}
		return false, nil
	})
	if err != nil {
		return fmt.Errorf("deploy: the API server does not call the webhook: %w (last answer: %w)", err, last)
	}
	return nil
}
