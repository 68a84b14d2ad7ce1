package floor

import (
	"context"
	"encoding/json"
	"testing"

	jsonpatch "github.com/evanphx/json-patch/v5"
	"github.com/stretchr/testify/require"
	admissionv1 "k8s.io/api/admission/v1"
	batchv1 "k8s.io/api/batch/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"
)

func review(raw string) admission.Request {
	return admission.Request{AdmissionRequest: admissionv1.AdmissionRequest{
		UID: "u", Operation: admissionv1.Create,
		Kind:   metav1.GroupVersionKind{Group: "batch", Version: "v1", Kind: "Job"},
		Object: runtime.RawExtension{Raw: []byte(raw)},
	}}
}

func TestFloorHardens(t *testing.T) {
	tests := []struct {
		name, job string
		allowed   bool
		patched   bool
	}{
		{"labelled", `{"apiVersion":"batch/v1","kind":"Job","metadata":{"name":"j","labels":{"app":"flowforge","job-id":"a"}},"spec":{"template":{"spec":{"containers":[{"name":"w","image":"x"}]}}}}`, true, true},
		{"unlabelled", `{"apiVersion":"batch/v1","kind":"Job","metadata":{"name":"j"},"spec":{"template":{"spec":{"containers":[{"name":"w","image":"x"}]}}}}`, true, false},
		{"not a Job", `[]`, false, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			req := review(tc.job)
			resp := NewHandler().Handle(context.Background(), req)
			require.Equal(t, tc.allowed, resp.Allowed)
			require.Equal(t, tc.patched, len(resp.Patches) > 0)
			if !tc.patched {
				return
			}
			ops, err := json.Marshal(resp.Patches)
			require.NoError(t, err)
			patch, err := jsonpatch.DecodePatch(ops)
			require.NoError(t, err)
			out, err := patch.Apply(req.Object.Raw)
			require.NoError(t, err)
			var job batchv1.Job
			require.NoError(t, json.Unmarshal(out, &job))
			require.True(t, *job.Spec.Template.Spec.SecurityContext.RunAsNonRoot)
			require.Equal(t, "a", job.Spec.Template.Labels["job-id"])
			require.False(t, *job.Spec.Template.Spec.Containers[0].SecurityContext.AllowPrivilegeEscalation)
		})
	}
}
