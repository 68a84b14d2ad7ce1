package controller

import (
	"testing"

	"github.com/stretchr/testify/assert"
	batchv1 "k8s.io/api/batch/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/flowforge/flowforge/contract"
)

func TestSettingsSelectJobsByThePolicySelector(t *testing.T) {
	job := func(labels map[string]string) *batchv1.Job {
		return &batchv1.Job{ObjectMeta: metav1.ObjectMeta{Labels: labels}}
	}
	def := Settings{}
	assert.True(t, def.selects(job(map[string]string{contract.LabelApp: contract.AppName})), "the contract's selector by default")
	assert.False(t, def.selects(job(map[string]string{contract.LabelApp: "other"})))
	custom := Settings{SelectorLabel: "platform.example.com/agent", SelectorValue: "yes"}
	assert.True(t, custom.selects(job(map[string]string{"platform.example.com/agent": "yes"})))
	assert.False(t, custom.selects(job(map[string]string{contract.LabelApp: contract.AppName})), "only the policy's selector")
}
