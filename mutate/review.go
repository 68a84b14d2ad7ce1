package mutate

import (
	"context"
	"encoding/json"
	"fmt"

	jsonpatch "github.com/evanphx/json-patch/v5"
	admissionv1 "k8s.io/api/admission/v1"
	authenticationv1 "k8s.io/api/authentication/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"
)

// Review sends a Job (JSON) through the handler as the API server would
// on CREATE, applies the returned patch, and returns the hardened Job with
// the response. It is what `flowforge policy apply` and the golden tests
// use, so offline results are exactly the webhook's.
func Review(ctx context.Context, h admission.Handler, namespace string, job []byte) ([]byte, admission.Response, error) {
	req := admission.Request{AdmissionRequest: admissionv1.AdmissionRequest{
		UID:       types.UID("offline-review"),
		Kind:      metav1.GroupVersionKind{Group: "batch", Version: "v1", Kind: "Job"},
		Resource:  metav1.GroupVersionResource{Group: "batch", Version: "v1", Resource: "jobs"},
		Namespace: namespace,
		Operation: admissionv1.Create,
		UserInfo:  authenticationv1.UserInfo{Username: "flowforge-offline"},
		Object:    runtime.RawExtension{Raw: job},
	}}
	resp := h.Handle(ctx, req)
	if !resp.Allowed {
		msg := "denied"
		if resp.Result != nil {
			msg = resp.Result.Message
		}
		return nil, resp, fmt.Errorf("the mutating webhook refused the Job: %s", msg)
	}
	if len(resp.Patches) == 0 {
		return job, resp, nil
	}
	ops, err := json.Marshal(resp.Patches)
	if err != nil {
		return nil, resp, fmt.Errorf("encode patch: %w", err)
	}
	patch, err := jsonpatch.DecodePatch(ops)
	if err != nil {
		return nil, resp, fmt.Errorf("decode patch: %w", err)
	}
	hardened, err := patch.Apply(job)
	if err != nil {
		return nil, resp, fmt.Errorf("apply patch: %w", err)
	}
	return hardened, resp, nil
}
