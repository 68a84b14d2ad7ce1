package admission

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
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/utils/ptr"

	"github.com/flowforge/flowforge/contract"
	"github.com/flowforge/flowforge/jobs"
	"github.com/flowforge/flowforge/test/framework"
)

// The identity tests send requests as other users through the real API
// server: the admin client impersonates them (Impersonate-User), so the
// webhook sees exactly the userInfo the API server authenticated.

// as returns a clientset that impersonates user with groups.
func as(t *testing.T, user string, groups ...string) kubernetes.Interface {
	t.Helper()
	cs, err := kubernetes.NewForConfig(asConfig(user, groups...))
	require.NoError(t, err)
	return cs
}

func asConfig(user string, groups ...string) *rest.Config {
	cfg := rest.CopyConfig(testCluster.RESTConfig)
	cfg.Impersonate = rest.ImpersonationConfig{UserName: user, Groups: append([]string{"system:authenticated"}, groups...)}
	return cfg
}

// grantJobs lets subjects manage Jobs in ns, as a team's Role would: RBAC
// lets them in, and FlowForge decides what their Jobs may claim.
func grantJobs(t *testing.T, ns string, subjects ...rbacv1.Subject) {
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
		Subjects:   subjects,
	}, metav1.CreateOptions{})
	require.NoError(t, err)
	// The API server's authorizer sees the binding within moments.
	for _, s := range subjects {
		user := s.Name
		if s.Kind == "ServiceAccount" {
			user = "system:serviceaccount:" + s.Namespace + ":" + s.Name
		}
		cs := as(t, user)
		require.NoError(t, wait.PollUntilContextTimeout(ctx, 50*time.Millisecond, framework.DefaultTimeout, true, func(ctx context.Context) (bool, error) {
			_, err := cs.BatchV1().Jobs(ns).List(ctx, metav1.ListOptions{Limit: 1})
			return err == nil, nil
		}), "%s may list Jobs in %s", user, ns)
	}
}

func users(names ...string) []rbacv1.Subject {
	out := make([]rbacv1.Subject, 0, len(names))
	for _, n := range names {
		out = append(out, rbacv1.Subject{APIGroup: rbacv1.GroupName, Kind: "User", Name: n})
	}
	return out
}

// ownedJob is a plain labelled Job named after its job id, for user.
func ownedJob(id, user string) *batchv1.Job {
	j := plainJob(contract.JobName(id), nil)
	j.Labels["job-id"] = id
	j.Labels["user-id"] = user
	return j
}

var dryRun = metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}}

// requireRefused checks that FlowForge's validating webhook refused a
// request and named field.
func requireRefused(t *testing.T, err error, field string, msg ...string) {
	t.Helper()
	require.Error(t, err, "the API server admitted it")
	assert.Contains(t, err.Error(), "validate.flowforge.io", "FlowForge's webhook refused it")
	assert.Contains(t, err.Error(), field, "the denial names the field")
	for _, m := range msg {
		assert.Contains(t, err.Error(), m)
	}
}

func TestUserIDIsTheRequester(t *testing.T) {
	t.Parallel()
	ns := framework.Namespace(t, clientset, "identity", nil)
	sa := "system:serviceaccount:" + ns + ":ci"
	grantJobs(t, ns, append(users("alice", "bob", "backend"), rbacv1.Subject{Kind: "ServiceAccount", Name: "ci", Namespace: ns})...)
	ctx := context.Background()

	t.Run("the owner", func(t *testing.T) {
		_, err := as(t, "alice").BatchV1().Jobs(ns).Create(ctx, ownedJob("own", "alice"), dryRun)
		require.NoError(t, err)
	})
	t.Run("another user's user-id", func(t *testing.T) {
		_, err := as(t, "bob").BatchV1().Jobs(ns).Create(ctx, ownedJob("theirs", "alice"), dryRun)
		requireRefused(t, err, "metadata.labels[user-id]", `user-id "alice" is not the requester`, `user-id "bob"`)
	})
	t.Run("a service account's canonical user id", func(t *testing.T) {
		cs := as(t, sa, "system:serviceaccounts", "system:serviceaccounts:"+ns)
		_, err := cs.BatchV1().Jobs(ns).Create(ctx, ownedJob("sa", "sa."+ns+".ci"), dryRun)
		require.NoError(t, err)
		_, err = cs.BatchV1().Jobs(ns).Create(ctx, ownedJob("sa2", "ci"), dryRun)
		requireRefused(t, err, "metadata.labels[user-id]", `user-id "sa.`+ns+`.ci"`)
	})
	t.Run("a trusted submitter, with any user-id", func(t *testing.T) {
		// system:masters is trusted in the shipped policy data.
		_, err := as(t, "backend", "system:masters").BatchV1().Jobs(ns).Create(ctx, ownedJob("for-alice", "alice"), dryRun)
		require.NoError(t, err)
		_, err = as(t, "backend").BatchV1().Jobs(ns).Create(ctx, ownedJob("for-alice", "alice"), dryRun)
		requireRefused(t, err, "metadata.labels[user-id]", "identity.trustedSubmitters")
	})
}

func TestJobIDBelongsToOneJob(t *testing.T) {
	t.Parallel()
	ns := framework.Namespace(t, clientset, "jobid", nil)
	grantJobs(t, ns, users("alice", "bob")...)
	ctx := context.Background()
	alice := as(t, "alice").BatchV1().Jobs(ns)
	first, err := alice.Create(ctx, ownedJob("j1", "alice"), metav1.CreateOptions{})
	require.NoError(t, err)

	t.Run("a second Job with the job-id", func(t *testing.T) {
		second := ownedJob("j1", "bob")
		second.Name = "claude-job-j1-again"
		// The webhook's cache sees the first Job within moments.
		var err error
		require.NoError(t, wait.PollUntilContextTimeout(ctx, 50*time.Millisecond, framework.DefaultTimeout, true, func(ctx context.Context) (bool, error) {
			_, err = as(t, "bob").BatchV1().Jobs(ns).Create(ctx, second, dryRun)
			return err != nil, nil
		}), "a second Job claimed job-id j1")
		requireRefused(t, err, "metadata.labels[job-id]", `job-id "j1" belongs to another Job`, string(first.UID))
	})
	t.Run("a retried create of the same Job", func(t *testing.T) {
		_, err := alice.Create(ctx, ownedJob("j1", "alice"), metav1.CreateOptions{})
		require.Error(t, err)
		assert.True(t, apierrors.IsAlreadyExists(err), "the API server's answer, not a denial: %v", err)
	})
	t.Run("an update of the Job itself", func(t *testing.T) {
		_, err := alice.Patch(ctx, first.Name, types.MergePatchType, []byte(`{"metadata":{"annotations":{"note":"x"}}}`), metav1.PatchOptions{})
		require.NoError(t, err)
	})
	t.Run("a Pod borrowing the job-id", func(t *testing.T) {
		// Created directly, even by an admin and with an owner reference
		// to the Job: only the Job controller creates the Job's pods.
		pod := &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Name: "borrower", Labels: map[string]string{"app": "flowforge", "job-id": "j1", "user-id": "alice"},
				OwnerReferences: []metav1.OwnerReference{{APIVersion: "batch/v1", Kind: "Job", Name: first.Name, UID: first.UID, Controller: ptr.To(true)}}},
			Spec: *first.Spec.Template.Spec.DeepCopy(),
		}
		_, err := clientset.CoreV1().Pods(ns).Create(ctx, pod, dryRun)
		requireRefused(t, err, "metadata.labels[job-id]", `job-id "j1" belongs to Job "claude-job-j1"`)
	})
	t.Run("the same job-id in another namespace", func(t *testing.T) {
		other := framework.Namespace(t, clientset, "jobid", nil)
		_, err := clientset.BatchV1().Jobs(other).Create(ctx, ownedJob("j1", "alice"), dryRun)
		require.NoError(t, err)
	})
}

func TestOnlyOwnGitCredentials(t *testing.T) {
	t.Parallel()
	ns := framework.Namespace(t, clientset, "gitcreds", nil)
	grantJobs(t, ns, users("alice")...)
	ctx := context.Background()
	jobsAPI := as(t, "alice").BatchV1().Jobs(ns)
	withSecret := func(id, secret string) *batchv1.Job {
		j := ownedJob(id, "alice")
		j.Spec.Template.Spec.Containers[0].Env = []corev1.EnvVar{{Name: "GIT_CREDENTIALS", ValueFrom: &corev1.EnvVarSource{
			SecretKeyRef: &corev1.SecretKeySelector{LocalObjectReference: corev1.LocalObjectReference{Name: secret}, Key: "credentials"},
		}}}
		return j
	}
	_, err := jobsAPI.Create(ctx, withSecret("g1", "git-credentials-g1"), dryRun)
	require.NoError(t, err, "its own")

	_, err = jobsAPI.Create(ctx, withSecret("g2", "git-credentials-victim"), dryRun)
	requireRefused(t, err, "spec.template.spec.containers[0].env[0].valueFrom.secretKeyRef.name", "another job's git credentials")

	projected := ownedJob("g3", "alice")
	projected.Spec.Template.Spec.Volumes = []corev1.Volume{{Name: "creds", VolumeSource: corev1.VolumeSource{Projected: &corev1.ProjectedVolumeSource{
		Sources: []corev1.VolumeProjection{{Secret: &corev1.SecretProjection{LocalObjectReference: corev1.LocalObjectReference{Name: "git-credentials-victim"}}}},
	}}}}
	_, err = jobsAPI.Create(ctx, projected, dryRun)
	requireRefused(t, err, "spec.template.spec.volumes[0].projected.sources[0].secret.name")
}

func TestCancellationIsTheOwnersAndRecordsTheRequester(t *testing.T) {
	t.Parallel()
	ns := framework.Namespace(t, clientset, "cancel", nil)
	grantJobs(t, ns, users("alice", "bob", "ops")...)
	ctx := context.Background()
	client := func(user string, groups ...string) *jobs.Client {
		c, err := jobs.NewForConfig(asConfig(user, groups...), nil, jobs.Options{Namespace: ns})
		require.NoError(t, err)
		return c
	}
	_, err := as(t, "alice").BatchV1().Jobs(ns).Create(ctx, ownedJob("c1", "alice"), metav1.CreateOptions{})
	require.NoError(t, err)

	bob := client("bob")
	who, err := bob.WhoAmI(ctx)
	require.NoError(t, err)
	require.Equal(t, "bob", who, "the API server's view of the client")
	_, err = bob.Cancel(ctx, "c1", who, "not mine")
	requireRefused(t, err, "metadata.annotations[flowforge.io/cancel-requested-at]", `"bob" may not cancel this Job`)
	_, err = bob.Cancel(ctx, "c1", "alice", "pretending")
	requireRefused(t, err, "metadata.annotations[flowforge.io/cancel-requested-by]", `must name the requester "bob"`)

	alice := client("alice")
	_, err = alice.Cancel(ctx, "c1", "someone-else", "a free-text name")
	requireRefused(t, err, "metadata.annotations[flowforge.io/cancel-requested-by]")
	who, err = alice.WhoAmI(ctx)
	require.NoError(t, err)
	job, err := alice.Cancel(ctx, "c1", who, "done with it")
	require.NoError(t, err)
	assert.Equal(t, "alice", job.Annotations[contract.AnnotationCancelRequestedBy], "the authenticated owner is recorded")
	assert.Equal(t, contract.PhaseCancelling, contract.StatusOf(job).Phase)

	// Once recorded, nobody rewrites it, not even a canceller.
	_, err = as(t, "ops", "system:masters").BatchV1().Jobs(ns).Patch(ctx, contract.JobName("c1"), types.MergePatchType,
		[]byte(`{"metadata":{"annotations":{"flowforge.io/cancel-requested-by":"ops"}}}`), metav1.PatchOptions{})
	requireRefused(t, err, "metadata.annotations[flowforge.io/cancel-requested-by]", "cannot be changed or withdrawn")

	// A canceller group member cancels a Job that is not theirs.
	_, err = as(t, "alice").BatchV1().Jobs(ns).Create(ctx, ownedJob("c2", "alice"), metav1.CreateOptions{})
	require.NoError(t, err)
	job, err = client("ops", "system:masters").Cancel(ctx, "c2", "ops", "maintenance")
	require.NoError(t, err)
	assert.Equal(t, "ops", job.Annotations[contract.AnnotationCancelRequestedBy])
}
