package jobs

import (
	"context"
	"errors"
	"strings"
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
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"
	clocktesting "k8s.io/utils/clock/testing"

	"github.com/flowforge/flowforge/contract"
	"github.com/flowforge/flowforge/templates"
)

// assignUIDs gives created Jobs a UID, as the API server does.
func assignUIDs(cs *fake.Clientset) {
	cs.PrependReactor("create", "jobs", func(a k8stesting.Action) (bool, runtime.Object, error) {
		job := a.(k8stesting.CreateAction).GetObject().(*batchv1.Job)
		job.UID = types.UID("uid-" + job.Name)
		return false, nil, nil
	})
}

func TestSubmitCreatesTheJob(t *testing.T) {
	cs := fake.NewClientset()
	assignUIDs(cs)
	c := newTestClient(t, cs)
	job, created, err := c.Submit(context.Background(), testRequest("abc"))
	require.NoError(t, err)
	assert.True(t, created)
	assert.Equal(t, "claude-job-abc", job.Name)
	assert.Equal(t, testNS, job.Namespace)
	assert.Equal(t, "abc", job.Labels["job-id"])
	assert.NotEmpty(t, job.Annotations[contract.AnnotationRequestHash])

	stored, err := cs.BatchV1().Jobs(testNS).Get(context.Background(), "claude-job-abc", metav1.GetOptions{})
	require.NoError(t, err)
	assert.Equal(t, job.Annotations, stored.Annotations)
	cms, err := cs.CoreV1().ConfigMaps(testNS).List(context.Background(), metav1.ListOptions{})
	require.NoError(t, err)
	assert.Empty(t, cms.Items, "a small task needs no ConfigMap")
}

func TestSubmitIsIdempotent(t *testing.T) {
	cs := fake.NewClientset()
	assignUIDs(cs)
	c := newTestClient(t, cs)
	first, created, err := c.Submit(context.Background(), testRequest("abc"))
	require.NoError(t, err)
	require.True(t, created)

	req := testRequest("abc")
	req.Profile, req.Timeout = "medium", time.Hour // the defaults, spelled out
	again, created, err := c.Submit(context.Background(), req)
	require.NoError(t, err)
	assert.False(t, created)
	assert.Equal(t, first.UID, again.UID)
	creates := 0
	for _, a := range cs.Actions() {
		if a.GetVerb() == "create" {
			creates++
		}
	}
	assert.Equal(t, 2, creates, "the second create met AlreadyExists")
}

func TestSubmitConflict(t *testing.T) {
	for _, tc := range []struct {
		name   string
		change func(*templates.Request)
		want   []string
	}{
		{"another task", func(r *templates.Request) { r.Task = "Delete the tests." }, []string{"the task, env, node selector or pod annotations differ"}},
		{"another branch", func(r *templates.Request) { r.Branch = "develop" }, []string{`branch "main", not "develop"`}},
		{"another user and profile", func(r *templates.Request) { r.UserID, r.Profile = "u-2", "large" },
			[]string{`user "u-1", not "u-2"`, `profile "medium", not "large"`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cs := fake.NewClientset()
			c := newTestClient(t, cs)
			_, _, err := c.Submit(context.Background(), testRequest("abc"))
			require.NoError(t, err)
			req := testRequest("abc")
			tc.change(&req)
			job, created, err := c.Submit(context.Background(), req)
			require.ErrorIs(t, err, ErrConflict)
			assert.Nil(t, job)
			assert.False(t, created)
			assert.Contains(t, err.Error(), "job claude-job-abc in namespace jobs-test")
			for _, s := range tc.want {
				assert.Contains(t, err.Error(), s)
			}
		})
	}
	t.Run("a Job not made by FlowForge", func(t *testing.T) {
		foreign := existingJob("abc")
		cs := fake.NewClientset(foreign)
		_, _, err := newTestClient(t, cs).Submit(context.Background(), testRequest("abc"))
		require.ErrorIs(t, err, ErrConflict)
		assert.Contains(t, err.Error(), "not created from a FlowForge request")

		foreign.Labels["job-id"] = "other"
		cs = fake.NewClientset(foreign)
		_, _, err = newTestClient(t, cs).Submit(context.Background(), testRequest("abc"))
		require.ErrorIs(t, err, ErrConflict)
		assert.Contains(t, err.Error(), `job-id label "other"`)
	})
}

func TestSubmitInvalidRequest(t *testing.T) {
	cs := fake.NewClientset()
	req := testRequest("Bad ID")
	req.Branch = "a..b"
	_, _, err := newTestClient(t, cs).Submit(context.Background(), req)
	var verr *templates.ValidationError
	require.ErrorAs(t, err, &verr)
	assert.Equal(t, []string{"id", "branch"}, verr.Fields())
	assert.Empty(t, cs.Actions(), "nothing reaches the API server")
}

func largeRequest(id string) templates.Request {
	req := testRequest(id)
	req.Task = strings.Repeat("Refactor the billing module.\n", 2000) // 58 KB
	return req
}

func TestSubmitLargeTask(t *testing.T) {
	cs := fake.NewClientset()
	assignUIDs(cs)
	c := newTestClient(t, cs)
	job, created, err := c.Submit(context.Background(), largeRequest("big"))
	require.NoError(t, err)
	require.True(t, created)

	var verbs []string
	for _, a := range cs.Actions() {
		verbs = append(verbs, a.GetVerb()+" "+a.GetResource().Resource)
	}
	assert.Equal(t, []string{"create configmaps", "create jobs", "patch configmaps"}, verbs,
		"the ConfigMap exists before the pod can start, and is then owned by the Job")

	cm, err := cs.CoreV1().ConfigMaps(testNS).Get(context.Background(), "claude-job-big-task", metav1.GetOptions{})
	require.NoError(t, err)
	assert.Equal(t, largeRequest("big").Task, cm.Data[contract.TaskConfigMapKey])
	require.Len(t, cm.OwnerReferences, 1)
	owner := cm.OwnerReferences[0]
	assert.Equal(t, metav1.OwnerReference{APIVersion: "batch/v1", Kind: "Job", Name: "claude-job-big", UID: job.UID}, owner)
	assert.Equal(t, "big", cm.Labels["job-id"])

	t.Run("resubmitting is idempotent", func(t *testing.T) {
		again, created, err := c.Submit(context.Background(), largeRequest("big"))
		require.NoError(t, err)
		assert.False(t, created)
		assert.Equal(t, job.UID, again.UID)
	})
	t.Run("another large task under the same id conflicts", func(t *testing.T) {
		req := largeRequest("big")
		req.Task += "And the invoices."
		_, _, err := c.Submit(context.Background(), req)
		require.ErrorIs(t, err, ErrConflict)
		cm, err := cs.CoreV1().ConfigMaps(testNS).Get(context.Background(), "claude-job-big-task", metav1.GetOptions{})
		require.NoError(t, err)
		assert.Equal(t, largeRequest("big").Task, cm.Data[contract.TaskConfigMapKey], "the existing Job's task is untouched")
	})
}

func TestSubmitLargeTaskCleansUp(t *testing.T) {
	t.Run("a denied Job leaves no ConfigMap behind", func(t *testing.T) {
		cs := fake.NewClientset()
		cs.PrependReactor("create", "jobs", func(k8stesting.Action) (bool, runtime.Object, error) {
			return true, nil, apierrors.NewForbidden(jobsGR, "claude-job-big", errors.New(`admission webhook "jobs.validate.flowforge.io" denied the request`))
		})
		_, created, err := newTestClient(t, cs).Submit(context.Background(), largeRequest("big"))
		require.Error(t, err)
		assert.False(t, created)
		assert.Contains(t, err.Error(), "denied the request")
		_, err = cs.CoreV1().ConfigMaps(testNS).Get(context.Background(), "claude-job-big-task", metav1.GetOptions{})
		assert.True(t, apierrors.IsNotFound(err))
	})
	t.Run("a stale ConfigMap of another request is replaced", func(t *testing.T) {
		stale := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{
			Name: "claude-job-big-task", Namespace: testNS, UID: "stale",
			Annotations: map[string]string{contract.AnnotationRequestHash: "old"},
		}, Data: map[string]string{contract.TaskConfigMapKey: "old task"}}
		cs := fake.NewClientset(stale)
		_, created, err := newTestClient(t, cs).Submit(context.Background(), largeRequest("big"))
		require.NoError(t, err)
		assert.True(t, created)
		cm, err := cs.CoreV1().ConfigMaps(testNS).Get(context.Background(), "claude-job-big-task", metav1.GetOptions{})
		require.NoError(t, err)
		assert.Equal(t, largeRequest("big").Task, cm.Data[contract.TaskConfigMapKey])
	})
	t.Run("an orphaned ConfigMap of the same request is adopted", func(t *testing.T) {
		cs := fake.NewClientset()
		c := newTestClient(t, cs)
		out, err := c.Renderer().Render(largeRequest("big"))
		require.NoError(t, err)
		cm := out.TaskConfigMap.DeepCopy()
		cm.Namespace = testNS
		_, err = cs.CoreV1().ConfigMaps(testNS).Create(context.Background(), cm, metav1.CreateOptions{})
		require.NoError(t, err)
		_, created, err := c.Submit(context.Background(), largeRequest("big"))
		require.NoError(t, err)
		assert.True(t, created)
		got, err := cs.CoreV1().ConfigMaps(testNS).Get(context.Background(), cm.Name, metav1.GetOptions{})
		require.NoError(t, err)
		assert.Len(t, got.OwnerReferences, 1)
	})
}

func TestGetNotFound(t *testing.T) {
	_, err := newTestClient(t, fake.NewClientset()).Get(context.Background(), "nope")
	require.ErrorIs(t, err, ErrNotFound)
	assert.True(t, apierrors.IsNotFound(err))
	assert.Equal(t, `job "nope" not found in namespace jobs-test`, err.Error())
}

func TestCancel(t *testing.T) {
	now := time.Date(2026, 11, 27, 10, 0, 0, 0, time.UTC)
	clk := clocktesting.NewFakeClock(now)
	cs := fake.NewClientset()
	c := newTestClient(t, cs, func(o *Options) { o.Clock = clk })
	_, _, err := c.Submit(context.Background(), testRequest("abc"))
	require.NoError(t, err)

	job, err := c.Cancel(context.Background(), "abc", "alice", "wrong branch")
	require.NoError(t, err)
	assert.Equal(t, "alice", job.Annotations[contract.AnnotationCancelRequestedBy])
	assert.Equal(t, "wrong branch", job.Annotations[contract.AnnotationCancelReason])
	assert.Equal(t, "2026-11-27T10:00:00Z", job.Annotations[contract.AnnotationCancelRequestedAt])
	assert.Equal(t, contract.PhaseCancelling, contract.StatusOf(job).Phase)

	clk.Step(time.Minute)
	again, err := c.Cancel(context.Background(), "abc", "bob", "changed my mind")
	require.NoError(t, err, "cancelling twice is not an error")
	assert.Equal(t, "alice", again.Annotations[contract.AnnotationCancelRequestedBy], "the first request is kept")
	assert.Equal(t, "2026-11-27T10:00:00Z", again.Annotations[contract.AnnotationCancelRequestedAt])

	_, err = c.Cancel(context.Background(), "abc", " ", "")
	require.ErrorContains(t, err, "by")
	_, err = c.Cancel(context.Background(), "missing", "alice", "")
	require.ErrorIs(t, err, ErrNotFound)
}

func TestCancelFinishedJob(t *testing.T) {
	done := existingJob("abc")
	done.Status.Conditions = []batchv1.JobCondition{{Type: batchv1.JobComplete, Status: corev1.ConditionTrue}}
	c := newTestClient(t, fake.NewClientset(done))
	job, err := c.Cancel(context.Background(), "abc", "alice", "")
	require.ErrorIs(t, err, ErrFinished)
	assert.Contains(t, err.Error(), "Succeeded")
	assert.NotContains(t, job.Annotations, contract.AnnotationCancelRequestedAt)
}

func TestCancelKeepsAConcurrentRequest(t *testing.T) {
	cs := fake.NewClientset(existingJob("abc"))
	c := newTestClient(t, cs)
	// Between our read and our patch, bob cancels: our patch then fails on
	// the resource version, and the second read sees bob's request.
	patches := 0
	cs.PrependReactor("patch", "jobs", func(k8stesting.Action) (bool, runtime.Object, error) {
		patches++
		if patches == 1 {
			job, err := cs.Tracker().Get(jobsGR.WithVersion("v1"), testNS, "claude-job-abc")
			require.NoError(t, err)
			j := job.(*batchv1.Job).DeepCopy()
			j.Annotations = map[string]string{
				contract.AnnotationCancelRequestedBy: "bob",
				contract.AnnotationCancelRequestedAt: "2026-11-27T09:00:00Z",
			}
			require.NoError(t, cs.Tracker().Update(jobsGR.WithVersion("v1"), j, testNS))
			return true, nil, apierrors.NewConflict(jobsGR, "claude-job-abc", errors.New("the object has been modified"))
		}
		return false, nil, nil
	})
	job, err := c.Cancel(context.Background(), "abc", "alice", "")
	require.NoError(t, err)
	assert.Equal(t, "bob", job.Annotations[contract.AnnotationCancelRequestedBy])
	assert.Equal(t, 1, patches)
}

func TestDelete(t *testing.T) {
	t.Run("background by default", func(t *testing.T) {
		cs := fake.NewClientset(existingJob("abc"))
		require.NoError(t, newTestClient(t, cs).Delete(context.Background(), "abc", ""))
		var policy *metav1.DeletionPropagation
		for _, a := range cs.Actions() {
			if d, ok := a.(k8stesting.DeleteAction); ok {
				policy = d.GetDeleteOptions().PropagationPolicy
			}
		}
		require.NotNil(t, policy)
		assert.Equal(t, metav1.DeletePropagationBackground, *policy)
		_, err := cs.BatchV1().Jobs(testNS).Get(context.Background(), "claude-job-abc", metav1.GetOptions{})
		assert.True(t, apierrors.IsNotFound(err))
	})
	t.Run("foreground when asked", func(t *testing.T) {
		cs := fake.NewClientset(existingJob("abc"))
		require.NoError(t, newTestClient(t, cs).Delete(context.Background(), "abc", metav1.DeletePropagationForeground))
		var deletes []k8stesting.DeleteAction
		for _, a := range cs.Actions() {
			if d, ok := a.(k8stesting.DeleteAction); ok {
				deletes = append(deletes, d)
			}
		}
		require.Len(t, deletes, 1)
		assert.Equal(t, metav1.DeletePropagationForeground, *deletes[0].GetDeleteOptions().PropagationPolicy)
		require.NotNil(t, deletes[0].GetDeleteOptions().Preconditions, "the Job found by its id, never a later one of its name")
	})
	t.Run("a missing job", func(t *testing.T) {
		err := newTestClient(t, fake.NewClientset()).Delete(context.Background(), "abc", "")
		require.ErrorIs(t, err, ErrNotFound)
	})
	t.Run("deleted by an attempt whose answer was lost", func(t *testing.T) {
		cs := fake.NewClientset(existingJob("abc"))
		calls := 0
		cs.PrependReactor("delete", "jobs", func(a k8stesting.Action) (bool, runtime.Object, error) {
			calls++
			if calls == 1 {
				require.NoError(t, cs.Tracker().Delete(jobsGR.WithVersion("v1"), testNS, "claude-job-abc"))
				return true, nil, apierrors.NewServerTimeout(jobsGR, "delete", 0)
			}
			return false, nil, nil
		})
		require.NoError(t, newTestClient(t, cs).Delete(context.Background(), "abc", ""))
		assert.Equal(t, 2, calls)
	})
}

func TestGetFindsAJobByItsJobIDWhateverItsName(t *testing.T) {
	byKubectl := existingJob("k1")
	byKubectl.Name = "nightly-fix-7f3c" // a client that names Jobs its own way
	unlabelled := existingJob("k1")
	unlabelled.Name, unlabelled.UID, unlabelled.Labels = "not-ours", "uid-x", map[string]string{"job-id": "k1"}
	c := newTestClient(t, fake.NewClientset(byKubectl, unlabelled))

	job, err := c.Get(context.Background(), "k1")
	require.NoError(t, err)
	assert.Equal(t, "nightly-fix-7f3c", job.Name, "found by app=flowforge,job-id=k1, not by a derived name")

	t.Run("several Jobs with one id", func(t *testing.T) {
		second := existingJob("k2")
		first := existingJob("k2")
		first.Name, first.UID = "k2-first", "uid-first"
		_, err := newTestClient(t, fake.NewClientset(first, second)).Get(context.Background(), "k2")
		require.ErrorIs(t, err, ErrAmbiguous)
		assert.Contains(t, err.Error(), `job id "k2" names 2 Jobs in namespace jobs-test (claude-job-k2, k2-first)`)
	})
	t.Run("an id no Job can carry", func(t *testing.T) {
		_, err := c.Get(context.Background(), "no/such id")
		require.ErrorContains(t, err, `"no/such id" is not a job id`)
		_, err = c.Get(context.Background(), "")
		require.ErrorContains(t, err, "a job id is required")
	})
	t.Run("cancel and delete act on it too", func(t *testing.T) {
		cs := fake.NewClientset(byKubectl.DeepCopy())
		cc := newTestClient(t, cs)
		cancelled, err := cc.Cancel(context.Background(), "k1", "alice", "")
		require.NoError(t, err)
		assert.Equal(t, "nightly-fix-7f3c", cancelled.Name)
		require.NoError(t, cc.Delete(context.Background(), "k1", ""))
		_, err = cs.BatchV1().Jobs(testNS).Get(context.Background(), "nightly-fix-7f3c", metav1.GetOptions{})
		assert.True(t, apierrors.IsNotFound(err))
	})
}
