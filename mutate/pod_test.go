package mutate

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"testing"

	jsonpatch "github.com/evanphx/json-patch/v5"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	admissionv1 "k8s.io/api/admission/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/pod-security-admission/api"
	psapolicy "k8s.io/pod-security-admission/policy"
	"k8s.io/utils/clock"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	"github.com/flowforge/flowforge/policies"
	"github.com/flowforge/flowforge/policies/engine"
)

const (
	// bareLabelledPod is a Pod as a user (or a Deployment's template) writes it.
	bareLabelledPod = `{"apiVersion":"v1","kind":"Pod","metadata":{"name":"p","labels":{"app":"flowforge","job-id":"a","user-id":"u"}},"spec":{"containers":[{"name":"w","image":"ghcr.io/flowforge/claude-worker:1.4.0"}]}}`
	// resolvedPriorityPod is what the API server's Priority admission leaves
	// before webhooks run: no class, priority 0.
	resolvedPriorityPod = `{"apiVersion":"v1","kind":"Pod","metadata":{"name":"p","labels":{"app":"flowforge","job-id":"a","user-id":"u"}},"spec":{"priority":0,"preemptionPolicy":"PreemptLowerPriority","containers":[{"name":"w","image":"ghcr.io/flowforge/claude-worker:1.4.0"}]}}`
)

func newPodHandler(t testing.TB) *PodHandler {
	t.Helper()
	return &PodHandler{
		Policy: newEngine(t),
		Namespaces: func(context.Context, string) (map[string]string, error) {
			return map[string]string{"flowforge.io/managed": "true"}, nil
		},
		Clock: clock.RealClock{},
	}
}

func podRequest(op admissionv1.Operation, raw []byte) admission.Request {
	return admission.Request{AdmissionRequest: admissionv1.AdmissionRequest{
		UID:       "uid-1",
		Kind:      metav1.GroupVersionKind{Version: "v1", Kind: "Pod"},
		Resource:  metav1.GroupVersionResource{Version: "v1", Resource: "pods"},
		Namespace: "agents",
		Operation: op,
		Object:    runtime.RawExtension{Raw: raw},
	}}
}

// harden sends a Pod through the handler and returns it with the patch applied.
func hardenPodRaw(t *testing.T, h *PodHandler, raw []byte) ([]byte, admission.Response) {
	t.Helper()
	resp := h.Handle(context.Background(), podRequest(admissionv1.Create, raw))
	require.True(t, resp.Allowed, "%+v", resp.Result)
	if len(resp.Patches) == 0 {
		return raw, resp
	}
	ops, err := json.Marshal(resp.Patches)
	require.NoError(t, err)
	patch, err := jsonpatch.DecodePatch(ops)
	require.NoError(t, err)
	out, err := patch.Apply(raw)
	require.NoError(t, err)
	return out, resp
}

// validatePod runs the validating policy on a Pod CREATE.
func validatePod(t *testing.T, e *engine.Engine, raw []byte) []engine.Violation {
	t.Helper()
	req := podRequest(admissionv1.Create, raw)
	// No Job holds the pod's job-id, as the server's claims source would say.
	v, err := e.Validate(context.Background(), engine.Input{Request: &req.AdmissionRequest, NamespaceLabels: map[string]string{"flowforge.io/managed": "true"}, Claims: &policies.Claims{}})
	require.NoError(t, err)
	return v.Deny
}

func TestPodHardening(t *testing.T) {
	h := newPodHandler(t)
	eng := h.Policy.(*engine.Engine)
	jobOwned := func(raw string) string {
		var pod corev1.Pod
		require.NoError(t, json.Unmarshal([]byte(raw), &pod))
		pod.OwnerReferences = []metav1.OwnerReference{{APIVersion: "batch/v1", Kind: "Job", Name: "j", UID: "u", Controller: new(bool)}}
		*pod.OwnerReferences[0].Controller = true
		out, err := json.Marshal(pod)
		require.NoError(t, err)
		return string(out)
	}
	tests := []struct {
		name     string
		raw      string
		deadline int64
	}{
		{name: "bare pod gets the default deadline", raw: bareLabelledPod, deadline: 3600},
		{name: "pod with a timeout annotation", raw: `{"apiVersion":"v1","kind":"Pod","metadata":{"name":"p","labels":{"app":"flowforge","job-id":"a","user-id":"u"},"annotations":{"flowforge.io/timeout":"20m"}},"spec":{"containers":[{"name":"w","image":"ghcr.io/flowforge/claude-worker:1.4.0"}]}}`, deadline: 1200},
		{name: "pod the API server resolved a priority for", raw: resolvedPriorityPod, deadline: 3600},
		{name: "pod claiming a Job controller gets the maximum", raw: jobOwned(bareLabelledPod), deadline: 14400},
	}
	evaluator, err := psapolicy.NewEvaluator(psapolicy.DefaultChecks(), nil)
	require.NoError(t, err)
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			hardened, resp := hardenPodRaw(t, h, []byte(tc.raw))
			require.NotEmpty(t, resp.Patches)
			var pod corev1.Pod
			require.NoError(t, json.Unmarshal(hardened, &pod))
			assert.Equal(t, "gvisor", *pod.Spec.RuntimeClassName)
			assert.Equal(t, "flowforge-worker", pod.Spec.PriorityClassName)
			assert.Nil(t, pod.Spec.Priority, "the API server resolves the priority of the new class again")
			assert.Nil(t, pod.Spec.PreemptionPolicy)
			assert.Equal(t, corev1.RestartPolicyNever, pod.Spec.RestartPolicy)
			assert.Equal(t, "gvisor", pod.Spec.NodeSelector["flowforge.io/sandbox"])
			require.NotNil(t, pod.Spec.ActiveDeadlineSeconds)
			assert.Equal(t, tc.deadline, *pod.Spec.ActiveDeadlineSeconds)
			assert.Equal(t, "medium", pod.Annotations["flowforge.io/profile"])
			assert.Empty(t, pod.Finalizers, "the export finalizer belongs to Job pods")

			assert.Empty(t, validatePod(t, eng, hardened), "a hardened Pod passes validation")
			results := evaluator.EvaluatePod(api.LevelVersion{Level: api.LevelRestricted, Version: api.LatestVersion()}, &pod.ObjectMeta, &pod.Spec)
			for _, r := range results {
				assert.True(t, r.Allowed, "PodSecurity restricted: %s: %s", r.ForbiddenReason, r.ForbiddenDetail)
			}

			again, resp2 := hardenPodRaw(t, h, hardened)
			assert.Empty(t, resp2.Patches, "a second pass changes nothing")
			assert.JSONEq(t, string(hardened), string(again))
		})
	}
}

// A Pod created from a hardened Job's template: the policy adds only the
// backstop deadline, and validation admits it.
func TestJobPodIsLeftAsItIs(t *testing.T) {
	jh := newHandler(t, nil)
	job, _, err := Review(context.Background(), jh, "agents", []byte(labelledJob))
	require.NoError(t, err)
	var j struct {
		Spec struct {
			Template corev1.PodTemplateSpec `json:"template"`
		} `json:"spec"`
	}
	require.NoError(t, json.Unmarshal(job, &j))
	controller := true
	pod := corev1.Pod{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Pod"},
		ObjectMeta: j.Spec.Template.ObjectMeta,
		Spec:       j.Spec.Template.Spec,
	}
	pod.Name = "j-abcde"
	pod.OwnerReferences = []metav1.OwnerReference{{APIVersion: "batch/v1", Kind: "Job", Name: "j", UID: "u", Controller: &controller}}
	raw, err := json.Marshal(pod)
	require.NoError(t, err)

	h := newPodHandler(t)
	hardened, resp := hardenPodRaw(t, h, raw)
	require.Len(t, resp.Patches, 1, "%v", resp.Patches)
	assert.Equal(t, "/spec/activeDeadlineSeconds", resp.Patches[0].Path)
	assert.Empty(t, validatePod(t, h.Policy.(*engine.Engine), hardened))
}

func TestPodHandlerDecisions(t *testing.T) {
	h := newPodHandler(t)
	tests := []struct {
		name        string
		req         admission.Request
		allowed     bool
		patched     bool
		code        int32
		msgContains string
	}{
		{name: "labelled create is hardened", req: podRequest(admissionv1.Create, []byte(bareLabelledPod)), allowed: true, patched: true},
		{name: "unlabelled create is untouched", req: podRequest(admissionv1.Create, []byte(`{"apiVersion":"v1","kind":"Pod","metadata":{"name":"x"},"spec":{"containers":[{"name":"c","image":"i"}]}}`)), allowed: true},
		{name: "a field this build does not know is malformed", req: podRequest(admissionv1.Create, []byte(strings.Replace(bareLabelledPod, `"spec":{`, `"spec":{"fieldFromTheFuture":true,`, 1))), code: http.StatusBadRequest, msgContains: "fieldFromTheFuture"},
		{name: "update is left alone", req: podRequest(admissionv1.Update, []byte(bareLabelledPod)), allowed: true},
		{name: "connect is left alone", req: podRequest(admissionv1.Connect, nil), allowed: true},
		{name: "unknown operation", req: podRequest("EXPLODE", []byte(bareLabelledPod)), code: http.StatusBadRequest, msgContains: "unsupported operation"},
		{name: "missing object", req: podRequest(admissionv1.Create, nil), code: http.StatusBadRequest, msgContains: "no object"},
		{name: "not JSON", req: podRequest(admissionv1.Create, []byte(`{"metadata":`)), code: http.StatusBadRequest, msgContains: "malformed"},
		{name: "wrongly typed Pod", req: podRequest(admissionv1.Create, []byte(`{"apiVersion":"v1","kind":"Pod","metadata":{"labels":{"app":"flowforge"}},"spec":{"containers":[{"name":7}]}}`)), code: http.StatusBadRequest, msgContains: "malformed"},
		{name: "not an object", req: podRequest(admissionv1.Create, []byte(`null`)), code: http.StatusBadRequest, msgContains: "malformed"},
		{name: "a Job sent as a Pod", req: podRequest(admissionv1.Create, []byte(labelledJob)), code: http.StatusBadRequest, msgContains: "are not the request's v1 Pod"},
		{name: "wrong kind", req: func() admission.Request {
			r := podRequest(admissionv1.Create, []byte(bareLabelledPod))
			r.Kind = metav1.GroupVersionKind{Group: "batch", Version: "v1", Kind: "Job"}
			return r
		}(), code: http.StatusBadRequest, msgContains: "expected a v1 Pod"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			resp := h.Handle(context.Background(), tc.req)
			assert.Equal(t, tc.allowed, resp.Allowed)
			assert.Equal(t, tc.patched, len(resp.Patches) > 0)
			if tc.code != 0 {
				require.NotNil(t, resp.Result)
				assert.Equal(t, tc.code, resp.Result.Code)
				assert.Contains(t, resp.Result.Message, tc.msgContains)
			}
		})
	}
}

func TestPodHandlerFailsClosed(t *testing.T) {
	base := newPodHandler(t)
	t.Run("policy evaluation error", func(t *testing.T) {
		h := &PodHandler{Policy: failingPolicy{base.Policy.(*engine.Engine)}, Namespaces: base.Namespaces, Clock: clock.RealClock{}}
		resp := h.Handle(context.Background(), podRequest(admissionv1.Create, []byte(bareLabelledPod)))
		assert.False(t, resp.Allowed)
		assert.Contains(t, resp.Result.Message, "could not harden this Pod, so it is denied: rego exploded")
	})
	t.Run("namespace lookup error", func(t *testing.T) {
		h := &PodHandler{Policy: base.Policy, Clock: clock.RealClock{},
			Namespaces: func(context.Context, string) (map[string]string, error) { return nil, errors.New("cache not synced") }}
		resp := h.Handle(context.Background(), podRequest(admissionv1.Create, []byte(bareLabelledPod)))
		assert.False(t, resp.Allowed)
		assert.Contains(t, resp.Result.Message, "cache not synced")
	})
	t.Run("a Job setting aimed at a Pod", func(t *testing.T) {
		obj, err := decodeJSON([]byte(bareLabelledPod))
		require.NoError(t, err)
		_, _, err = ApplyPod(obj, []engine.Op{{Setting: "backoffLimit", Op: "set", Path: []any{"spec", "backoffLimit"}, Value: 2}})
		assert.ErrorContains(t, err, "policy produced an invalid Pod")
	})
	t.Run("policy output that cannot be applied", func(t *testing.T) {
		obj, err := decodeJSON([]byte(bareLabelledPod))
		require.NoError(t, err)
		_, _, err = ApplyPod(obj, []engine.Op{{Setting: "bad", Op: "set", Path: []any{"spec", "containers", 7, "x"}, Value: true}})
		assert.ErrorContains(t, err, "out of range")
	})
}

// injectedPod is a labelled Pod as the API server's ServiceAccount admission
// leaves it before the webhooks run: with its token volume and mounts.
const injectedPod = `{"apiVersion":"v1","kind":"Pod","metadata":{"name":"p","labels":{"app":"flowforge","job-id":"a","user-id":"u"}},"spec":{
"serviceAccountName":"default",
"initContainers":[{"name":"proxy","image":"ghcr.io/flowforge/egress-proxy:1.0.0","restartPolicy":"Always","volumeMounts":[{"name":"kube-api-access-x7k2p","mountPath":"/var/run/secrets/kubernetes.io/serviceaccount","readOnly":true}]}],
"containers":[{"name":"w","image":"ghcr.io/flowforge/claude-worker:1.4.0","volumeMounts":[{"name":"data","mountPath":"/data"},{"name":"kube-api-access-x7k2p","mountPath":"/var/run/secrets/kubernetes.io/serviceaccount","readOnly":true}]}],
"volumes":[{"name":"data","emptyDir":{}},{"name":"kube-api-access-x7k2p","projected":{"sources":[{"serviceAccountToken":{"expirationSeconds":3607,"path":"token"}},{"configMap":{"name":"kube-root-ca.crt","items":[{"key":"ca.crt","path":"ca.crt"}]}},{"downwardAPI":{"items":[{"path":"namespace","fieldRef":{"apiVersion":"v1","fieldPath":"metadata.namespace"}}]}}]}}]}}`

func TestInjectedTokenVolumeIsRemoved(t *testing.T) {
	h := newPodHandler(t)
	hardened, _ := hardenPodRaw(t, h, []byte(injectedPod))
	var pod corev1.Pod
	require.NoError(t, json.Unmarshal(hardened, &pod))
	assert.False(t, *pod.Spec.AutomountServiceAccountToken)
	names := []string{}
	for _, v := range pod.Spec.Volumes {
		names = append(names, v.Name)
	}
	assert.Equal(t, []string{"data", "flowforge-tmp", "flowforge-workspace"}, names)
	for _, c := range append(pod.Spec.InitContainers, pod.Spec.Containers...) {
		for _, m := range c.VolumeMounts {
			assert.NotEqual(t, "kube-api-access-x7k2p", m.Name, c.Name)
		}
	}
	assert.Equal(t, "/data", pod.Spec.Containers[0].VolumeMounts[0].MountPath, "the user's own mounts stay")
	assert.Empty(t, validatePod(t, h.Policy.(*engine.Engine), hardened))
}

func TestOtherTokenVolumesAreLeftForValidation(t *testing.T) {
	h := newPodHandler(t)
	raw := strings.ReplaceAll(injectedPod, "kube-api-access-x7k2p", "my-token")
	hardened, _ := hardenPodRaw(t, h, []byte(raw))
	assert.Contains(t, string(hardened), `"my-token"`)
	fields := []string{}
	for _, v := range validatePod(t, h.Policy.(*engine.Engine), hardened) {
		fields = append(fields, v.Field)
	}
	assert.Contains(t, fields, "spec.volumes[1].projected.sources[0].serviceAccountToken")

	// A Pod that keeps its token (automount not false) keeps the volume:
	// only the hardened value false says the API server should not have
	// injected it.
	obj, err := decodeJSON([]byte(injectedPod))
	require.NoError(t, err)
	assert.Empty(t, stripInjectedToken(obj))
	obj["spec"].(map[string]any)["automountServiceAccountToken"] = false
	assert.Equal(t, "kube-api-access-x7k2p", stripInjectedToken(obj))
}
