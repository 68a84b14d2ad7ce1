package validate

import (
	"context"
	"testing"

	admissionv1 "k8s.io/api/admission/v1"
	"k8s.io/utils/clock"
)

// FuzzHandle sends arbitrary Pods (as CREATE and as UPDATE of the seed
// Pod) through the validating handler: it must never panic, and every
// refusal carries a message; a denial is a 422 that names fields.
func FuzzHandle(f *testing.F) {
	f.Add(privilegedPod)
	f.Add(plainPod)
	f.Add(`{"metadata":{"labels":{"app":"flowforge"}},"spec":{"volumes":[{"name":"h","hostPath":{"path":"/"}}],"containers":[{"name":"c","env":[{"name":"ANTHROPIC_API_KEY","value":"x"}]}]}}`)
	f.Add(`{"metadata":{"labels":{"app":"flowforge"}},"spec":{"ephemeralContainers":[{"name":"d"}],"securityContext":{"sysctls":[{"name":"kernel.msgmax"}]}}}`)
	f.Add(`null`)
	h := NewPodHandler(sharedEngine(f), managed, clock.RealClock{})
	check := func(t *testing.T, op admissionv1.Operation, object, old string) {
		resp := h.Handle(context.Background(), podRequest(op, object, old))
		if resp.Allowed {
			return
		}
		if resp.Result == nil || resp.Result.Message == "" {
			t.Fatalf("a refusal without a message: %+v", resp)
		}
		if resp.Result.Code == 422 && resp.Result.Details == nil {
			t.Fatalf("a denial without field details: %s", resp.Result.Message)
		}
	}
	f.Fuzz(func(t *testing.T, object string) {
		check(t, admissionv1.Create, object, "")
		check(t, admissionv1.Update, object, privilegedPod)
	})
}
