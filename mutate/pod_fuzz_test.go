package mutate

import (
	"context"
	"encoding/json"
	"testing"

	jsonpatch "github.com/evanphx/json-patch/v5"
	admissionv1 "k8s.io/api/admission/v1"
	corev1 "k8s.io/api/core/v1"
)

// FuzzHandlePod sends arbitrary objects through the pod handler. It must
// never panic; every refusal has a message; a patch yields a Pod that
// decodes, and hardening that Pod again changes nothing.
func FuzzHandlePod(f *testing.F) {
	f.Add(bareLabelledPod)
	f.Add(resolvedPriorityPod)
	f.Add(injectedPod)
	f.Add(`{"metadata":{"labels":{"app":"flowforge"},"ownerReferences":[{"apiVersion":"batch/v1","kind":"Job","name":"j","uid":"u","controller":true}]},"spec":{"containers":[{"name":"w"}],"initContainers":[{"name":"s","restartPolicy":"Always"}]}}`)
	f.Add(`{"metadata":{"labels":{"app":"flowforge"},"annotations":{"flowforge.io/timeout":"nonsense"}},"spec":{"containers":null,"volumes":[{"name":"kube-api-access-1","projected":{"sources":"no"}}]}}`)
	f.Add(`{"metadata":{"labels":{"app":"flowforge"}},"spec":{"automountServiceAccountToken":"yes"}}`)
	f.Add(`[]`)
	h := newPodHandler(f)
	f.Fuzz(func(t *testing.T, object string) {
		resp := h.Handle(context.Background(), podRequest(admissionv1.Create, []byte(object)))
		if !resp.Allowed {
			if resp.Result == nil || resp.Result.Message == "" {
				t.Fatalf("a refusal without a message: %+v", resp)
			}
			return
		}
		if len(resp.Patches) == 0 {
			return
		}
		ops, err := json.Marshal(resp.Patches)
		if err != nil {
			t.Fatal(err)
		}
		patch, err := jsonpatch.DecodePatch(ops)
		if err != nil {
			t.Fatalf("the patch does not decode: %v", err)
		}
		hardened, err := patch.Apply([]byte(object))
		if err != nil {
			t.Fatalf("the patch does not apply: %v", err)
		}
		var pod corev1.Pod
		if err := json.Unmarshal(hardened, &pod); err != nil {
			t.Fatalf("the hardened object is not a Pod: %v", err)
		}
		again := h.Handle(context.Background(), podRequest(admissionv1.Create, hardened))
		if len(again.Patches) != 0 {
			t.Fatalf("a second pass patched again: %v", again.Patches)
		}
	})
}
