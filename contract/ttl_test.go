package contract_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	batchv1 "k8s.io/api/batch/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/flowforge/flowforge/contract"
)

func TestTTLAfterFinished(t *testing.T) {
	const key = contract.AnnotationTTLSecondsAfterFinished
	withSpecTTL := func(n int32) jobOpt { return func(j *batchv1.Job) { j.Spec.TTLSecondsAfterFinished = &n } }
	tests := []struct {
		name   string
		opts   []jobOpt
		wantOK bool
		ttl    time.Duration
		by     string
	}{
		{name: "annotation", opts: []jobOpt{withAnnotations(key, "90")}, wantOK: true, ttl: 90 * time.Second, by: contract.DeletedByFlowForge},
		{name: "annotation zero", opts: []jobOpt{withAnnotations(key, "0")}, wantOK: true, ttl: 0, by: contract.DeletedByFlowForge},
		{name: "annotation wins over spec", opts: []jobOpt{withAnnotations(key, "5"), withSpecTTL(60)}, wantOK: true, ttl: 5 * time.Second, by: contract.DeletedByFlowForge},
		{name: "legacy spec", opts: []jobOpt{withSpecTTL(60)}, wantOK: true, ttl: time.Minute, by: contract.DeletedByTTLController},
		{name: "none", wantOK: false},
		{name: "malformed annotation", opts: []jobOpt{withAnnotations(key, "1h"), withSpecTTL(60)}, wantOK: false},
		{name: "negative annotation", opts: []jobOpt{withAnnotations(key, "-5")}, wantOK: false},
		{name: "huge annotation", opts: []jobOpt{withAnnotations(key, "99999999999999")}, wantOK: false},
		{name: "negative spec", opts: []jobOpt{withSpecTTL(-1)}, wantOK: false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ttl, by, ok := contract.TTLAfterFinished(flowJob("a", tc.opts...), key)
			require.Equal(t, tc.wantOK, ok)
			assert.Equal(t, tc.ttl, ttl)
			assert.Equal(t, tc.by, by)
		})
	}
}

func TestStatusOfDeletion(t *testing.T) {
	const key = contract.AnnotationTTLSecondsAfterFinished
	running := contract.StatusOf(flowJob("a", withAnnotations(key, "120"), withCounts(1, 1, 0, 0)))
	require.NotNil(t, running.TTLSecondsAfterFinished)
	assert.Equal(t, int64(120), *running.TTLSecondsAfterFinished)
	assert.Equal(t, contract.DeletedByFlowForge, running.DeletedBy)
	assert.Nil(t, running.DeleteAfter, "not finished: no deletion time yet")

	done := contract.StatusOf(flowJob("a", withAnnotations(key, "120"), withConditions(cond(batchv1.JobFailed, "BackoffLimitExceeded", t1))))
	require.NotNil(t, done.DeleteAfter)
	assert.Equal(t, t1.Add(2*time.Minute), *done.DeleteAfter)

	complete := flowJob("a", func(j *batchv1.Job) {
		j.Spec.TTLSecondsAfterFinished = ptr.To[int32](30)
		j.Status.CompletionTime = ptr.To(metav1.NewTime(t2))
	}, withConditions(cond(batchv1.JobComplete, "", t2)))
	st := contract.StatusOf(complete)
	assert.Equal(t, contract.DeletedByTTLController, st.DeletedBy)
	assert.Equal(t, t2.Add(30*time.Second), *st.DeleteAfter)

	kept := contract.StatusOf(flowJob("a", withConditions(cond(batchv1.JobComplete, "", t2))))
	assert.Nil(t, kept.TTLSecondsAfterFinished)
	assert.Nil(t, kept.DeleteAfter)
	assert.Empty(t, kept.DeletedBy)
}
