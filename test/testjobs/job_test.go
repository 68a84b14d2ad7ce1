package testjobs

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"

	"github.com/flowforge/flowforge/contract"
)

func TestMakeAgentJobFollowsTheContract(t *testing.T) {
	at := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	j := MakeAgentJob("abc", "agents").UserID("alice").UID("uid-abc").ResourceVersion("7").Created(at).
		Annotation(contract.AnnotationBranch, "main").PodAnnotations(map[string]string{"a": "b"}).
		Finalizers("flowforge.io/export").Deadline(60).BackoffLimit(1).Started(at).
		Condition(batchv1.JobComplete, "Done", at).Counts(1, 1, 2, 3).
		Apply(func(j *batchv1.Job) { j.Spec.Parallelism = new(int32) }).Obj()

	assert.Equal(t, contract.JobName("abc"), j.Name)
	assert.Equal(t, "agents", j.Namespace)
	assert.Equal(t, map[string]string{contract.LabelApp: contract.AppName, contract.LabelJobID: "abc", contract.LabelUserID: "alice"}, j.Labels)
	assert.Equal(t, "main", j.Annotations[contract.AnnotationBranch])
	assert.Equal(t, "b", j.Spec.Template.Annotations["a"])
	assert.EqualValues(t, "uid-abc", j.UID)
	assert.Equal(t, "7", j.ResourceVersion)
	assert.True(t, j.CreationTimestamp.Time.Equal(at))
	assert.Equal(t, []string{"flowforge.io/export"}, j.Finalizers)
	assert.EqualValues(t, 60, *j.Spec.ActiveDeadlineSeconds)
	assert.EqualValues(t, 1, *j.Spec.BackoffLimit)
	assert.NotNil(t, j.Spec.Parallelism)
	require.Len(t, j.Status.Conditions, 1)
	assert.Equal(t, corev1.ConditionTrue, j.Status.Conditions[0].Status)
	assert.EqualValues(t, 2, j.Status.Succeeded)
	assert.EqualValues(t, 1, *j.Status.Ready)
	assert.True(t, j.Status.StartTime.Time.Equal(at))
}

func TestMakeJobIsUnlabelled(t *testing.T) {
	j := MakeJob("plain", "ns").Image("registry.example.com/x:1").
		PodSpec(func(p *corev1.PodSpec) { p.RestartPolicy = corev1.RestartPolicyNever }).Name("renamed").Obj()
	assert.Empty(t, j.Labels)
	assert.Equal(t, "renamed", j.Name)
	require.Len(t, j.Spec.Template.Spec.Containers, 1)
	assert.Equal(t, "registry.example.com/x:1", j.Spec.Template.Spec.Containers[0].Image)
	assert.Equal(t, corev1.RestartPolicyNever, j.Spec.Template.Spec.RestartPolicy)
	j2 := MakeJob("x", "ns").Labels(map[string]string{"k": "v"}).Label("k2", "v2").Obj()
	assert.Equal(t, map[string]string{"k": "v", "k2": "v2"}, j2.Labels)
}
