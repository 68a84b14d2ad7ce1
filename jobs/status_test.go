package jobs

import (
	"context"
	"testing"
	"time"

	"github.com/flowforge/flowforge/test/testjobs"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"

	"github.com/flowforge/flowforge/contract"
)

var (
	t0 = time.Date(2026, 11, 27, 10, 0, 0, 0, time.UTC)
	t1 = t0.Add(time.Minute)
	t2 = t0.Add(2 * time.Minute)
)

func cond(typ batchv1.JobConditionType, reason string, at time.Time) batchv1.JobCondition {
	return batchv1.JobCondition{Type: typ, Status: corev1.ConditionTrue, Reason: reason, Message: reason + " message", LastTransitionTime: metav1.NewTime(at)}
}

type jobOpt func(*batchv1.Job)

func withConditions(cs ...batchv1.JobCondition) jobOpt {
	return func(j *batchv1.Job) { j.Status.Conditions = cs }
}

func withCounts(active, ready, succeeded, failed int32) jobOpt {
	return func(j *batchv1.Job) {
		j.Status.Active, j.Status.Ready, j.Status.Succeeded, j.Status.Failed = active, &ready, succeeded, failed
	}
}

func flowJob(id string, opts ...jobOpt) *batchv1.Job {
	w := testjobs.MakeAgentJob(id, testNS).ResourceVersion("7").Created(t0).
		Label(contract.LabelComponent, contract.ComponentWorker).
		Annotation(contract.AnnotationRepository, "acme/widgets").Annotation(contract.AnnotationBranch, "main").
		Annotation(contract.AnnotationProfile, "medium").Annotation(contract.AnnotationTemplate, "claude-code").
		Annotation(contract.AnnotationPolicyRevision, "2026-11-27-abc")
	for _, o := range opts {
		o(w.Obj())
	}
	return w.Obj()
}

func TestStatusAndList(t *testing.T) {
	other := flowJob("c", withConditions(cond(batchv1.JobComplete, "CompletionsReached", t2)))
	other.Labels["user-id"] = "u-2"
	older := flowJob("b", withCounts(1, 1, 0, 0))
	older.CreationTimestamp = metav1.NewTime(t0.Add(-time.Hour))
	notOurs := &batchv1.Job{ObjectMeta: metav1.ObjectMeta{Name: "backup", Namespace: testNS, Labels: map[string]string{"app": "backup"}}}
	cs := fake.NewClientset(flowJob("a"), older, other, notOurs)
	c := newTestClient(t, cs)

	st, err := c.Status(context.Background(), "b")
	require.NoError(t, err)
	assert.Equal(t, contract.PhaseRunning, st.Phase)
	_, err = c.Status(context.Background(), "zzz")
	require.ErrorIs(t, err, ErrNotFound)

	ids := func(list []contract.Status) []string {
		var out []string
		for _, s := range list {
			out = append(out, s.ID)
		}
		return out
	}
	all, err := c.List(context.Background(), ListOptions{})
	require.NoError(t, err)
	assert.Equal(t, []string{"b", "a", "c"}, ids(all), "oldest first, then by name; other Jobs are not listed")

	mine, err := c.List(context.Background(), ListOptions{UserID: "u-1"})
	require.NoError(t, err)
	assert.Equal(t, []string{"b", "a"}, ids(mine))

	running, err := c.List(context.Background(), ListOptions{Phase: contract.PhaseRunning})
	require.NoError(t, err)
	assert.Equal(t, []string{"b"}, ids(running))

	_, err = c.List(context.Background(), ListOptions{UserID: "not a label"})
	require.ErrorContains(t, err, "not a valid label value")
}

func TestListFollowsPages(t *testing.T) {
	cs := fake.NewClientset()
	var continues []string
	cs.PrependReactor("list", "jobs", func(a k8stesting.Action) (bool, runtime.Object, error) {
		opts := a.(k8stesting.ListActionImpl).ListOptions
		continues = append(continues, opts.Continue)
		assert.Equal(t, int64(listPageSize), opts.Limit)
		if opts.Continue == "" {
			return true, &batchv1.JobList{ListMeta: metav1.ListMeta{Continue: "page-2"}, Items: []batchv1.Job{*flowJob("a")}}, nil
		}
		return true, &batchv1.JobList{Items: []batchv1.Job{*flowJob("b")}}, nil
	})
	list, err := newTestClient(t, cs).List(context.Background(), ListOptions{})
	require.NoError(t, err)
	assert.Len(t, list, 2)
	assert.Equal(t, []string{"", "page-2"}, continues)
}
