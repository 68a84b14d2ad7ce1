package mutate

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"strings"

	admissionv1 "k8s.io/api/admission/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/utils/clock"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	"github.com/flowforge/flowforge/policies/engine"
	"github.com/flowforge/flowforge/webhook"
)

// PodPath is where the pod handler is served, following controller-runtime's
// convention for a v1 Pod defaulting webhook.
const PodPath = "/mutate-v1-pod"

// PodName labels the pod webhook in metrics.
const PodName = "mutate-pod"

// PodHandler hardens labelled Pods at admission with the same policy as
// Jobs (data.flowforge.mutate.patch): the pod-level rules apply to a Pod's
// spec as they apply to a Job's pod template, and the rules for Pods only
// (policies/mutate/pod-lifecycle) bound the Pod by itself. A Pod a hardened
// Job created is already hardened, and the policy changes nothing on it but
// a backstop deadline.
type PodHandler struct {
	Policy     Policy
	Namespaces webhook.NamespaceLabels
	Clock      clock.PassiveClock
}

var _ admission.Handler = &PodHandler{}

// Handle answers one admission request.
func (h *PodHandler) Handle(ctx context.Context, req admission.Request) admission.Response {
	start := h.Clock.Now()
	resp := h.handle(ctx, req)
	webhook.Observe(PodName, start, h.Clock.Now(), resp)
	return resp
}

func (h *PodHandler) handle(ctx context.Context, req admission.Request) admission.Response {
	return harden(ctx, req, h.Policy, h.Namespaces, podHardening)
}

// ApplyPod applies policy settings to a decoded Pod, and returns the
// hardened Pod with the settings that changed it. The result must decode
// as a v1 Pod, and strictly so if the Pod did: a setting meant for a Job (a
// field a Pod does not have) is a policy error, and the Pod is denied
// rather than patched with a field the API server would silently drop. The
// handler only hardens Pods that decoded strictly (webhook.DecodeStrict).
func ApplyPod(obj map[string]any, ops []engine.Op) ([]byte, []engine.Op, error) {
	applied, err := engine.Apply(obj, ops)
	if err != nil {
		return nil, nil, fmt.Errorf("apply policy: %w", err)
	}
	if removed := stripInjectedToken(obj); removed != "" {
		applied = append(applied, engine.Op{Setting: injectedTokenSetting, Op: engine.OpRemove, Path: []any{"spec", "volumes", removed}})
	}
	mutated, err := json.Marshal(obj)
	if err != nil {
		return nil, nil, fmt.Errorf("encode hardened Pod: %w", err)
	}
	var check corev1.Pod
	if err := json.Unmarshal(mutated, &check); err != nil {
		return nil, nil, fmt.Errorf("policy produced an invalid Pod: %w", err)
	}
	if err := strictPod(mutated); err != nil {
		return nil, nil, fmt.Errorf("policy produced an invalid Pod: %w", err)
	}
	return mutated, applied, nil
}

// strictPod decodes raw as a v1 Pod, refusing unknown fields.
func strictPod(raw []byte) error {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	var pod corev1.Pod
	return dec.Decode(&pod)
}

// decodePod checks that the request carries a v1 Pod, that the object says
// so itself where it names its kind, and that it decodes as a Pod.
func decodePod(req admissionv1.AdmissionRequest) (map[string]any, error) {
	if req.Kind.Group != "" || req.Kind.Version != "v1" || req.Kind.Kind != "Pod" {
		return nil, fmt.Errorf("expected a v1 Pod, got %q", req.Kind.String())
	}
	if len(bytes.TrimSpace(req.Object.Raw)) == 0 {
		return nil, fmt.Errorf("the request has no object")
	}
	var typed corev1.Pod
	if err := webhook.DecodeStrict(req.Object.Raw, corev1.SchemeGroupVersion.WithKind("Pod"), &typed); err != nil {
		return nil, fmt.Errorf("the object is malformed, refused: %w", err)
	}
	obj, err := decodeJSON(req.Object.Raw)
	if err != nil {
		return nil, fmt.Errorf("the object is not a decodable v1 Pod: %w", err)
	}
	return obj, nil
}

// parsePod is decodePod with the strict decode deferred (see
// kindHardening.parse): a Pod that parses exactly is returned with
// deferred set; any other is decoded strictly here, as decodePod does.
func parsePod(req admissionv1.AdmissionRequest) (map[string]any, bool, error) {
	if req.Kind.Group != "" || req.Kind.Version != "v1" || req.Kind.Kind != "Pod" {
		return nil, false, fmt.Errorf("expected a v1 Pod, got %q", req.Kind.String())
	}
	if len(bytes.TrimSpace(req.Object.Raw)) == 0 {
		return nil, false, fmt.Errorf("the request has no object")
	}
	obj, exact, err := engine.ParseJSONObject(req.Object.Raw)
	if err == nil && exact {
		return obj, true, nil
	}
	if strictErr := strictPodRequest(req); strictErr != nil {
		return nil, false, strictErr
	}
	if err != nil {
		return nil, false, fmt.Errorf("the object is not a decodable v1 Pod: %w", err)
	}
	return obj, false, nil
}

// strictPodRequest is the strict decode parsePod deferred.
func strictPodRequest(req admissionv1.AdmissionRequest) error {
	var typed corev1.Pod
	if err := webhook.DecodeStrict(req.Object.Raw, corev1.SchemeGroupVersion.WithKind("Pod"), &typed); err != nil {
		return fmt.Errorf("the object is malformed, refused: %w", err)
	}
	return nil
}

// injectedTokenSetting names the removal of the API server's token volume
// in metrics.
const injectedTokenSetting = "automountServiceAccountToken.injectedVolume"

// injectedTokenPrefix is how the API server's ServiceAccount admission
// names the token volume it injects (kube-api-access-<random>).
const injectedTokenPrefix = "kube-api-access-"

// stripInjectedToken removes the service-account token volume the API
// server injected, with its mounts, from a Pod whose hardened spec says
// automountServiceAccountToken: false, and returns the volume's name ("" if
// there was none). The API server's ServiceAccount admission runs before
// the webhooks: it injected the volume because the Pod did not say false
// yet, and it does not take the volume back when the policy does. A token
// volume of any other name is left for validation to deny.
func stripInjectedToken(obj map[string]any) string {
	spec, _ := obj["spec"].(map[string]any)
	if automount, ok := spec["automountServiceAccountToken"].(bool); !ok || automount {
		return ""
	}
	volumes, _ := spec["volumes"].([]any)
	name := ""
	kept := make([]any, 0, len(volumes))
	for _, v := range volumes {
		vol, _ := v.(map[string]any)
		if n, _ := vol["name"].(string); name == "" && strings.HasPrefix(n, injectedTokenPrefix) && projectsToken(vol) {
			name = n
			continue
		}
		kept = append(kept, v)
	}
	if name == "" {
		return ""
	}
	spec["volumes"] = kept
	for _, kind := range []string{"initContainers", "containers"} {
		containers, _ := spec[kind].([]any)
		for _, c := range containers {
			ctr, _ := c.(map[string]any)
			mounts, ok := ctr["volumeMounts"].([]any)
			if !ok {
				continue
			}
			keep := make([]any, 0, len(mounts))
			for _, m := range mounts {
				if mount, _ := m.(map[string]any); mount["name"] != name {
					keep = append(keep, m)
				}
			}
			ctr["volumeMounts"] = keep
		}
	}
	return name
}

// podRewritten lists what stripInjectedToken rewrote, for the JSON patch:
// the volumes and the mounts of every container that has mounts.
func podRewritten(hardened map[string]any, applied []engine.Op) [][]any {
	stripped := false
	for _, op := range applied {
		stripped = stripped || op.Setting == injectedTokenSetting
	}
	if !stripped {
		return nil
	}
	out := [][]any{{"spec", "volumes"}}
	spec, _ := hardened["spec"].(map[string]any)
	for _, kind := range []string{"initContainers", "containers"} {
		containers, _ := spec[kind].([]any)
		for i, c := range containers {
			if ctr, _ := c.(map[string]any); ctr["volumeMounts"] != nil {
				out = append(out, []any{"spec", kind, i, "volumeMounts"})
			}
		}
	}
	return out
}

// projectsToken reports whether a volume projects a service-account token.
func projectsToken(vol map[string]any) bool {
	projected, _ := vol["projected"].(map[string]any)
	sources, _ := projected["sources"].([]any)
	for _, s := range sources {
		if src, _ := s.(map[string]any); src["serviceAccountToken"] != nil {
			return true
		}
	}
	return false
}
