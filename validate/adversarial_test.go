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
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/utils/clock"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"
	"sigs.k8s.io/yaml"

	"github.com/flowforge/flowforge/mutate"
	"github.com/flowforge/flowforge/policies"
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

// loadEngine compiles and tests the embedded policies once for the package.
var loadEngine = sync.OnceValues(func() (*policies.Engine, error) {
	return policies.NewEngine(context.Background(), policies.Options{})
})

func sharedEngine(t testing.TB) *policies.Engine {
	t.Helper()
	e, err := loadEngine()
	require.NoError(t, err)
	return e
}

// admit runs a case through the admission chain as the API server would:
// mutation first for a Job, then validation, for CREATE or UPDATE.
func admit(t *testing.T, c adversarialCase) admission.Response {
	t.Helper()
	engine := sharedEngine(t)
	ns := func(context.Context, string) (map[string]string, error) { return c.NamespaceLabels, nil }
	object := []byte(c.Object)
	if c.Kind == "Job" {
		hardened, resp, err := mutate.Review(context.Background(), &mutate.Handler{Policy: engine, Namespaces: ns, Clock: clock.RealClock{}}, "agents", object)
		require.NoError(t, err, "mutation: %+v", resp.Result)
		object = hardened
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
	var h *Handler
	switch c.Kind {
	case "Job":
		h = NewJobHandler(engine, ns, clock.RealClock{})
	case "Pod":
		h = NewPodHandler(engine, ns, clock.RealClock{})
	default:
		t.Fatalf("unknown kind %q", c.Kind)
	}
	req.Kind = metav1.GroupVersionKind{Group: h.Kind.Group, Version: h.Kind.Version, Kind: h.Kind.Kind}
	return h.Handle(context.Background(), admission.Request{AdmissionRequest: req})
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
