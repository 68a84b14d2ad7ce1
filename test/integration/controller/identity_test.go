package controller

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/flowforge/flowforge/contract"
	"github.com/flowforge/flowforge/history"
	"github.com/flowforge/flowforge/jobs"
	"github.com/flowforge/flowforge/test/framework"
	"github.com/flowforge/flowforge/test/localcluster"
)

// impersonating returns a config of the admin's that impersonates user:
// the API server authenticates the requests as user, and the webhook sees
// that userInfo.
func impersonating(user string) *rest.Config {
	cfg := rest.CopyConfig(testCluster.RESTConfig)
	cfg.Impersonate = rest.ImpersonationConfig{UserName: user, Groups: []string{"system:authenticated"}}
	return cfg
}

// grantJobs lets user manage Jobs in ns, as a team's Role would.
func grantJobs(t *testing.T, ns, user string) {
	t.Helper()
	ctx := context.Background()
	_, err := clientset.RbacV1().Roles(ns).Create(ctx, &rbacv1.Role{
		ObjectMeta: metav1.ObjectMeta{Name: "job-editor"},
		Rules: []rbacv1.PolicyRule{{APIGroups: []string{"batch"}, Resources: []string{"jobs"},
			Verbs: []string{"get", "list", "watch", "create", "update", "patch", "delete"}}},
	}, metav1.CreateOptions{})
	require.NoError(t, err)
	_, err = clientset.RbacV1().RoleBindings(ns).Create(ctx, &rbacv1.RoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: "job-editor"},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: "job-editor"},
		Subjects:   []rbacv1.Subject{{APIGroup: rbacv1.GroupName, Kind: "User", Name: user}},
	}, metav1.CreateOptions{})
	require.NoError(t, err)
	// The API server's authorizer sees the binding within moments.
	cs, err := kubernetes.NewForConfig(impersonating(user))
	require.NoError(t, err)
	require.NoError(t, wait.PollUntilContextTimeout(ctx, 50*time.Millisecond, framework.DefaultTimeout, true, func(ctx context.Context) (bool, error) {
		_, err := cs.BatchV1().Jobs(ns).List(ctx, metav1.ListOptions{Limit: 1})
		return err == nil, nil
	}), "%s may list Jobs in %s", user, ns)
}

// TestOwnersCancelIsRecordedFromTheirIdentity: the owner cancels with the
// name the API server authenticated (SelfSubjectReview), and the history
// records that name as the canceller.
func TestOwnersCancelIsRecordedFromTheirIdentity(t *testing.T) {
	t.Parallel()
	ns := framework.Namespace(t, clientset, "owner-cancel", nil)
	grantJobs(t, ns, "carol")
	ctx := context.Background()
	carolJobs, err := kubernetes.NewForConfig(impersonating("carol"))
	require.NoError(t, err)
	job := agentJob("idc1", map[string]string{localcluster.AnnotationRun: "forever"}, func(j *batchv1.Job) { j.Labels[contract.LabelUserID] = "carol" })
	_, err = carolJobs.BatchV1().Jobs(ns).Create(ctx, job, metav1.CreateOptions{})
	require.NoError(t, err, "the owner creates a Job in their own name")
	require.NoError(t, wait.PollUntilContextTimeout(ctx, 50*time.Millisecond, framework.DefaultTimeout, true, func(ctx context.Context) (bool, error) {
		pods, err := framework.JobPods(ctx, clientset, ns, contract.JobName("idc1"))
		return err == nil && len(pods) == 1 && pods[0].Status.Phase == corev1.PodRunning, nil
	}))

	c, err := jobs.NewForConfig(impersonating("carol"), nil, jobs.Options{Namespace: ns})
	require.NoError(t, err)
	who, err := c.WhoAmI(ctx)
	require.NoError(t, err)
	require.Equal(t, "carol", who)
	_, err = c.Cancel(ctx, "idc1", who, "wrong repository")
	require.NoError(t, err)

	rec := exported(t, "idc1")
	assert.Equal(t, history.StatusCancelled, rec.Status)
	assert.Equal(t, "carol", rec.User)
	assert.Equal(t, "carol", rec.CancelledBy, "the authenticated canceller is recorded")
}

// TestJobIDStaysTakenAfterTheJobIsGone: once the controller has exported a
// Job and the Job is deleted, its job-id stays in the history, and the
// webhook refuses a new Job with it, even under the same name.
func TestJobIDStaysTakenAfterTheJobIsGone(t *testing.T) {
	t.Parallel()
	ns := framework.Namespace(t, clientset, "jobid-history", nil)
	ctx := context.Background()
	first, err := clientset.BatchV1().Jobs(ns).Create(ctx, agentJob("idh1", map[string]string{localcluster.AnnotationDuration: "300ms"}), metav1.CreateOptions{})
	require.NoError(t, err)
	rec := exported(t, "idh1")
	assert.Equal(t, history.StatusSucceeded, rec.Status)
	background := metav1.DeletePropagationBackground
	require.NoError(t, clientset.BatchV1().Jobs(ns).Delete(ctx, first.Name, metav1.DeleteOptions{PropagationPolicy: &background}))
	require.NoError(t, wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, framework.DefaultTimeout, true, func(ctx context.Context) (bool, error) {
		_, err := clientset.BatchV1().Jobs(ns).Get(ctx, first.Name, metav1.GetOptions{})
		return apierrors.IsNotFound(err), nil
	}), "the exported Job is deleted")

	dryRun := metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}}
	for _, name := range []string{first.Name, "another-name"} {
		again := agentJob("idh1", nil)
		again.Name = name
		// The webhook's cache sees the deletion within moments.
		var err error
		require.NoError(t, wait.PollUntilContextTimeout(ctx, 50*time.Millisecond, framework.DefaultTimeout, true, func(ctx context.Context) (bool, error) {
			_, err = clientset.BatchV1().Jobs(ns).Create(ctx, again, dryRun)
			return err != nil, nil
		}), "job-id idh1 reused by %s", name)
		assert.Contains(t, err.Error(), "validate.flowforge.io")
		assert.Contains(t, err.Error(), "metadata.labels[job-id]")
		assert.Contains(t, err.Error(), "is in the history")
		assert.Contains(t, err.Error(), string(first.UID))
	}
	_, err = clientset.BatchV1().Jobs(ns).Create(ctx, agentJob("idh2", nil), dryRun)
	require.NoError(t, err, "a new job-id is free")
}
