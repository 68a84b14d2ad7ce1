package validate

import (
	"context"
	"encoding/json"
	"os"
	"strings"
	"sync"
	"testing"

	jsonpatch "github.com/evanphx/json-patch/v5"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	admissionv1 "k8s.io/api/admission/v1"
	authenticationv1 "k8s.io/api/authentication/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/utils/clock"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"
	"sigs.k8s.io/yaml"

	"github.com/flowforge/flowforge/mutate"
	"github.com/flowforge/flowforge/policies"
	"github.com/flowforge/flowforge/policies/engine"
)

// adversarialCase is one row of policies/validate/testdata/adversarial.yaml.
type adversarialCase struct {
	Name            string            `json:"name"`
	Kind            string            `json:"kind"`
	NamespaceLabels map[string]string `json:"namespaceLabels"`
	Object          json.RawMessage   `json:"object"`
	Update          json.RawMessage   `json:"update"`
	SubResource     string            `json:"subResource"`
	Fields          []string          `json:"fields"`
	// User and Groups send the request (default: the owner the object's
	// user-id label names); Claims are the Jobs that already hold its
	// job-id (default: none).
	User   string                 `json:"user"`
	Groups []string               `json:"groups"`
	Claims []policies.ClaimHolder `json:"claims"`
}

type adversarialTable struct {
	Escapes    []adversarialCase `json:"escapes"`
	Legitimate []adversarialCase `json:"legitimate"`
}

func loadAdversarial(t *testing.T) adversarialTable {
	t.Helper()
	data, err := os.ReadFile("../policies/validate/testdata/adversarial.yaml")
	require.NoError(t, err)
	var table adversarialTable
	require.NoError(t, yaml.Unmarshal(data, &table))
	return table
}

// testedPolicies: the package's engines run the embedded policy's tests
// once, not at every engine they build.
var testedPolicies = engine.NewTestedPolicies()

// loadEngine compiles and tests the embedded policies once for the package.
var loadEngine = sync.OnceValues(func() (*engine.Engine, error) {
	return engine.New(context.Background(), engine.Options{Tested: testedPolicies})
})

func sharedEngine(t testing.TB) *engine.Engine {
	t.Helper()
	e, err := loadEngine()
	require.NoError(t, err)
	return e
}

// admit runs a case through the admission chain as the API server would:
// mutation first for a Job, then validation, for CREATE or UPDATE.
func admit(t *testing.T, c adversarialCase) admission.Response {
	t.Helper()
	return admitWith(t, c, sharedEngine(t))
}

// enginePolicy is what admitWith needs of the eng: both handlers' view.
type enginePolicy interface {
	mutate.Policy
	Policy
}

// admitWith is admit with the given eng (see differential_test.go).
func admitWith(t *testing.T, c adversarialCase, eng enginePolicy) admission.Response {
	t.Helper()
	ns := func(context.Context, string) (map[string]string, error) { return c.NamespaceLabels, nil }
	object := []byte(c.Object)
	if c.Kind == "Job" {
		hardened, resp, err := mutate.Review(context.Background(), &mutate.Handler{Policy: eng, Namespaces: ns, Clock: clock.RealClock{}}, "agents", object)
		require.NoError(t, err, "mutation: %+v", resp.Result)
		object = hardened
	}
	if c.Kind == "Pod" {
		// Labelled Pods are hardened on CREATE too (mutate.PodHandler).
		object = hardenPod(t, &mutate.PodHandler{Policy: eng, Namespaces: ns, Clock: clock.RealClock{}}, object)
	}
	req := admissionv1.AdmissionRequest{
		UID:       "adversarial",
		Namespace: "agents",
		Operation: admissionv1.Create,
		Object:    runtime.RawExtension{Raw: object},
	}
	if len(c.Update) > 0 {
		patched, err := jsonpatch.MergePatch(object, c.Update)
		require.NoError(t, err)
		req.Operation = admissionv1.Update
		req.OldObject = runtime.RawExtension{Raw: object}
		req.Object = runtime.RawExtension{Raw: patched}
		req.SubResource = c.SubResource
	}
	req.UserInfo = requester(t, c, object)
	var h *Handler
	switch c.Kind {
	case "Job":
		h = NewJobHandler(eng, ns, clock.RealClock{})
	case "Pod":
		h = NewPodHandler(eng, ns, clock.RealClock{})
	default:
		t.Fatalf("unknown kind %q", c.Kind)
	}
	// The server wires the claims source for both kinds (see webhookserver).
	h.Claims = func(context.Context, string, string) ([]policies.ClaimHolder, error) { return c.Claims, nil }
	req.Kind = metav1.GroupVersionKind{Group: h.Kind.Group, Version: h.Kind.Version, Kind: h.Kind.Kind}
	return h.Handle(context.Background(), admission.Request{AdmissionRequest: req})
}

// hardenPod sends a Pod through the pod mutation as the API server would
// on CREATE and returns it with the patch applied.
func hardenPod(t *testing.T, h *mutate.PodHandler, object []byte) []byte {
	t.Helper()
	resp := h.Handle(context.Background(), admission.Request{AdmissionRequest: admissionv1.AdmissionRequest{
		UID:       "adversarial",
		Kind:      metav1.GroupVersionKind{Version: "v1", Kind: "Pod"},
		Namespace: "agents",
		Operation: admissionv1.Create,
		Object:    runtime.RawExtension{Raw: object},
	}})
	require.True(t, resp.Allowed, "pod mutation: %+v", resp.Result)
	if len(resp.Patches) == 0 {
		return object
	}
	ops, err := json.Marshal(resp.Patches)
	require.NoError(t, err)
	patch, err := jsonpatch.DecodePatch(ops)
	require.NoError(t, err)
	hardened, err := patch.Apply(object)
	require.NoError(t, err)
	return hardened
}

// requester is who sends a case: its User and Groups, else the owner the
// object's user-id label names.
func requester(t *testing.T, c adversarialCase, object []byte) authenticationv1.UserInfo {
	t.Helper()
	if c.User != "" {
		return authenticationv1.UserInfo{Username: c.User, Groups: c.Groups}
	}
	var meta struct {
		Metadata metav1.ObjectMeta `json:"metadata"`
	}
	require.NoError(t, json.Unmarshal(object, &meta))
	return authenticationv1.UserInfo{Username: meta.Metadata.Labels["user-id"], Groups: c.Groups}
}

func TestAdversarialEscapesAreDenied(t *testing.T) {
	table := loadAdversarial(t)
	require.GreaterOrEqual(t, len(table.Escapes), 25)
	names := map[string]bool{}
	for _, c := range table.Escapes {
		t.Run(c.Name, func(t *testing.T) {
			require.False(t, names[c.Name], "case names are unique")
			names[c.Name] = true
			require.NotEmpty(t, c.Fields, "an escape names the fields it must be denied on")
			resp := admit(t, c)
			require.False(t, resp.Allowed, "the escape was admitted")
			require.NotNil(t, resp.Result)
			assert.EqualValues(t, 422, resp.Result.Code)
			for _, f := range c.Fields {
				assert.Contains(t, resp.Result.Message, f+": Forbidden: ", "the denial names the field")
			}
		})
	}
}

func TestAdversarialLegitimateVariationsAreAdmitted(t *testing.T) {
	table := loadAdversarial(t)
	require.GreaterOrEqual(t, len(table.Legitimate), 10)
	for _, c := range table.Legitimate {
		t.Run(c.Name, func(t *testing.T) {
			resp := admit(t, c)
			msg := ""
			if resp.Result != nil {
				msg = resp.Result.Message
			}
			assert.True(t, resp.Allowed, "denied: %s", msg)
			assert.False(t, strings.Contains(msg, "Forbidden"))
		})
	}
}

// malformedRequests are escapes of issue 12's class 9: a request whose
// object is not what its kind says. The API server never sends one (it
// decodes and re-encodes every object), so they cannot go through it and
// live here rather than in adversarial.yaml: each is sent straight to the
// handlers, and both the mutating (for a Job) and the validating handler
// must refuse it as malformed (HTTP 400), never harden or admit it.
var malformedRequests = []struct {
	name   string
	kind   string // the kind the AdmissionReview request claims
	object string
	want   string
}{
	{"a privileged Pod sent as a Job", "Job",
		`{"apiVersion":"v1","kind":"Pod","metadata":{"name":"p","labels":{"app":"flowforge","job-id":"abc","user-id":"u1"}},"spec":{"containers":[{"name":"c","image":"ghcr.io/flowforge/claude-worker:1.0.0","securityContext":{"privileged":true}}]}}`,
		`its apiVersion "v1" and kind "Pod" are not the request's batch/v1 Job`},
	{"a Pod's body with the Job's apiVersion and kind", "Job",
		`{"apiVersion":"batch/v1","kind":"Job","metadata":{"name":"p","labels":{"app":"flowforge","job-id":"abc","user-id":"u1"}},"spec":{"containers":[{"name":"c","image":"ghcr.io/flowforge/claude-worker:1.0.0"}],"hostPID":true}}`,
		`unknown field "spec.containers"`},
	{"a Job sent as a Pod", "Pod",
		`{"apiVersion":"batch/v1","kind":"Job","metadata":{"name":"j","labels":{"app":"flowforge","job-id":"abc","user-id":"u1"}},"spec":{"template":{"spec":{"containers":[{"name":"c","image":"ghcr.io/flowforge/claude-worker:1.0.0"}]}}}}`,
		`its apiVersion "batch/v1" and kind "Job" are not the request's v1 Pod`},
	{"a Job without apiVersion and kind", "Job",
		`{"metadata":{"name":"j","labels":{"app":"flowforge","job-id":"abc","user-id":"u1"}},"spec":{"template":{"spec":{"containers":[{"name":"c","image":"ghcr.io/flowforge/claude-worker:1.0.0"}]}}}}`,
		`its apiVersion "" and kind ""`},
	{"a Job whose pod spec hides under a differently cased key", "Job",
		`{"apiVersion":"batch/v1","kind":"Job","metadata":{"name":"j","labels":{"app":"flowforge","job-id":"abc","user-id":"u1"}},"spec":{"template":{"Spec":{"hostNetwork":true,"containers":[{"name":"c","image":"ghcr.io/flowforge/claude-worker:1.0.0"}]}}}}`,
		`unknown field "spec.template.Spec"`},
	{"a Job with two pod specs", "Job",
		`{"apiVersion":"batch/v1","kind":"Job","metadata":{"name":"j","labels":{"app":"flowforge","job-id":"abc","user-id":"u1"}},"spec":{"template":{"spec":{"containers":[{"name":"c","image":"ghcr.io/flowforge/claude-worker:1.0.0"}]},"spec":{"hostPID":true,"containers":[{"name":"c","image":"ghcr.io/flowforge/claude-worker:1.0.0"}]}}}}`,
		`duplicate field "spec.template.spec"`},
	{"a Job of another API group", "Job",
		`{"apiVersion":"batch.evil.io/v1","kind":"Job","metadata":{"name":"j","labels":{"app":"flowforge","job-id":"abc","user-id":"u1"}},"spec":{"template":{"spec":{"containers":[{"name":"c","image":"ghcr.io/flowforge/claude-worker:1.0.0"}]}}}}`,
		`its apiVersion "batch.evil.io/v1"`},
}

func TestMalformedRequestsAreRefused(t *testing.T) {
	eng := sharedEngine(t)
	ns := func(context.Context, string) (map[string]string, error) {
		return map[string]string{"flowforge.io/managed": "true"}, nil
	}
	for _, c := range malformedRequests {
		t.Run(c.name, func(t *testing.T) {
			var v *Handler
			if c.kind == "Job" {
				v = NewJobHandler(eng, ns, clock.RealClock{})
			} else {
				v = NewPodHandler(eng, ns, clock.RealClock{})
			}
			req := admission.Request{AdmissionRequest: admissionv1.AdmissionRequest{
				UID:       "malformed",
				Kind:      metav1.GroupVersionKind{Group: v.Kind.Group, Version: v.Kind.Version, Kind: v.Kind.Kind},
				Namespace: "agents",
				Operation: admissionv1.Create,
				UserInfo:  authenticationv1.UserInfo{Username: "u1"},
				Object:    runtime.RawExtension{Raw: []byte(c.object)},
			}}
			handlers := []admission.Handler{v}
			if c.kind == "Job" {
				handlers = append(handlers, &mutate.Handler{Policy: eng, Namespaces: ns, Clock: clock.RealClock{}})
			}
			for _, h := range handlers {
				resp := h.Handle(context.Background(), req)
				require.False(t, resp.Allowed, "%T admitted it", h)
				assert.Empty(t, resp.Patches, "%T hardened it", h)
				require.NotNil(t, resp.Result)
				assert.EqualValues(t, 400, resp.Result.Code, "%T: %s", h, resp.Result.Message)
				assert.Contains(t, resp.Result.Message, c.want)
			}
		})
	}
}
