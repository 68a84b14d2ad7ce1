package mutate

import (
	"context"
	"encoding/json"
	"testing"

	admissionv1 "k8s.io/api/admission/v1"
	batchv1 "k8s.io/api/batch/v1"
)

// FuzzHandle sends arbitrary objects through the mutating handler. It must
// never panic; every answer is an allowance, a patch or an error with a
// message; a patch yields a Job that decodes, and hardening that Job again
// changes nothing.
func FuzzHandle(f *testing.F) {
	f.Add(labelledJob)
	f.Add(`{"metadata":{"labels":{"app":"flowforge"}},"spec":{"template":{"spec":{"containers":[{"name":"a"},{"name":"b","securityContext":{"privileged":true}}],"initContainers":[{"name":"i"}]}}}}`)
	f.Add(`{"metadata":{"labels":{"app":"flowforge"},"annotations":{"flowforge.io/timeout":"1h","flowforge.io/profile":"large"}},"spec":{"ttlSecondsAfterFinished":99999999,"template":{"spec":{"containers":[{"name":"w","resources":{"requests":{"cpu":"9"}}}],"volumes":[{"name":"v","emptyDir":{}}]}}}}`)
	f.Add(`{"metadata":{"labels":{"app":"flowforge"}},"spec":{"template":{"spec":{"containers":null}}}}`)
	f.Add(`[]`)
	f.Add(`{"metadata":{"labels":{"app":"flowforge"}},"spec":{"template":{"spec":{"containers":[{"name":"w","volumeMounts":[{"name":"x","mountPath":"/tmp"}]}],"volumes":[{"name":"x","emptyDir":"no"}]}}}}`)
	h := newHandler(f, nil)
	f.Fuzz(func(t *testing.T, object string) {
		resp := h.Handle(context.Background(), request(admissionv1.Create, []byte(object)))
		if !resp.Allowed {
			if resp.Result == nil || resp.Result.Message == "" {
				t.Fatalf("a refusal without a message: %+v", resp)
			}
			return
		}
		if len(resp.Patches) == 0 {
			return
		}
		hardened, _, err := Review(context.Background(), h, "agents", []byte(object))
		if err != nil {
			t.Fatalf("the patch does not apply: %v", err)
		}
		var job batchv1.Job
		if err := json.Unmarshal(hardened, &job); err != nil {
			t.Fatalf("the hardened object is not a Job: %v", err)
		}
		again := h.Handle(context.Background(), request(admissionv1.Create, hardened))
		if len(again.Patches) != 0 {
			t.Fatalf("a second pass patched again: %v", again.Patches)
		}
	})
}
