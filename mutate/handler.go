package mutate

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"

	admissionv1 "k8s.io/api/admission/v1"
	batchv1 "k8s.io/api/batch/v1"
	"k8s.io/utils/clock"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	"github.com/flowforge/flowforge/policies/engine"
	"github.com/flowforge/flowforge/webhook"
)

// Path is where the handler is served, following controller-runtime's
// convention for a batch/v1 Job defaulting webhook.
const Path = "/mutate-batch-v1-job"

// Name labels this webhook in metrics.
const Name = "mutate"

// Policy is the part of the policy engine the handler uses.
type Policy interface {
	Current() *engine.Policy
	Mutate(ctx context.Context, in engine.Input) (*engine.Mutation, error)
}

// Handler hardens Jobs at admission.
type Handler struct {
	Policy     Policy
	Namespaces webhook.NamespaceLabels
	Clock      clock.PassiveClock
}

var _ admission.Handler = &Handler{}

// Handle answers one admission request.
func (h *Handler) Handle(ctx context.Context, req admission.Request) admission.Response {
	start := h.Clock.Now()
	resp := h.handle(ctx, req)
	webhook.Observe(Name, start, h.Clock.Now(), resp)
	return resp
}

func (h *Handler) handle(ctx context.Context, req admission.Request) admission.Response {
	return harden(ctx, req, h.Policy, h.Namespaces, jobHardening)
}

// Apply applies policy settings to a raw Job and returns the hardened Job,
// with the settings that changed it. The result must still be a valid Job.
func Apply(raw []byte, ops []engine.Op) ([]byte, []engine.Op, error) {
	obj, err := decodeJSON(raw)
	if err != nil {
		return nil, nil, fmt.Errorf("decode Job: %w", err)
	}
	return applyTo(obj, ops)
}

// applyTo applies ops to a decoded Job, then checks and encodes the result.
func applyTo(obj map[string]any, ops []engine.Op) ([]byte, []engine.Op, error) {
	applied, err := engine.Apply(obj, ops)
	if err != nil {
		return nil, nil, fmt.Errorf("apply policy: %w", err)
	}
	mutated, err := json.Marshal(obj)
	if err != nil {
		return nil, nil, fmt.Errorf("encode hardened Job: %w", err)
	}
	var check batchv1.Job
	if err := json.Unmarshal(mutated, &check); err != nil {
		return nil, nil, fmt.Errorf("policy produced an invalid Job: %w", err)
	}
	return mutated, applied, nil
}

// applyChecked applies ops to a decoded Job and checks that what the ops
// wrote is still a valid Job, without encoding the whole result: the rest
// of the object already decoded strictly as a batch/v1 Job (decodeObject),
// so only the written values can break it (see writtenBy).
func applyChecked(obj map[string]any, ops []engine.Op) ([]byte, []engine.Op, error) {
	applied, err := engine.Apply(obj, ops)
	if err != nil {
		return nil, nil, fmt.Errorf("apply policy: %w", err)
	}
	written, err := json.Marshal(engine.WrittenBy(obj, applied))
	if err != nil {
		return nil, nil, fmt.Errorf("encode hardened Job: %w", err)
	}
	var check batchv1.Job
	if err := json.Unmarshal(written, &check); err != nil {
		return nil, nil, fmt.Errorf("policy produced an invalid Job: %w", err)
	}
	return nil, applied, nil
}

// Decode checks that the request carries a batch/v1 Job and decodes it.
func Decode(req admissionv1.AdmissionRequest) (*batchv1.Job, error) {
	if err := checkKind(req); err != nil {
		return nil, err
	}
	if len(bytes.TrimSpace(req.Object.Raw)) == 0 {
		return nil, fmt.Errorf("the request has no object")
	}
	var job batchv1.Job
	if err := webhook.DecodeStrict(req.Object.Raw, jobKind, &job); err != nil {
		return nil, fmt.Errorf("the object is not a decodable batch/v1 Job: %w", err)
	}
	return &job, nil
}

// jobKind is the kind the Job webhook is registered for.
var jobKind = batchv1.SchemeGroupVersion.WithKind("Job")

func checkKind(req admissionv1.AdmissionRequest) error {
	if req.Kind.Group != batchv1.GroupName || req.Kind.Version != "v1" || req.Kind.Kind != "Job" {
		return fmt.Errorf("expected a batch/v1 Job, got %q", req.Kind.String())
	}
	return nil
}

// decodeObject decodes the request's object once, keeping numbers exact;
// the policy input and the applier both work on the result. First the
// object must decode strictly as what the request says it is (a Pod sent
// as a Job is malformed, never hardened: see webhook.DecodeStrict).
func decodeObject(req admissionv1.AdmissionRequest) (map[string]any, error) {
	if _, err := Decode(req); err != nil {
		return nil, err
	}
	obj, err := decodeJSON(req.Object.Raw)
	if err != nil {
		return nil, fmt.Errorf("the object is not a decodable batch/v1 Job: %w", err)
	}
	return obj, nil
}

// parseObject is decodeObject with the strict decode deferred (see
// kindHardening.parse): an object that parses exactly is returned with
// deferred set; any other is decoded strictly here, as decodeObject does.
func parseObject(req admissionv1.AdmissionRequest) (map[string]any, bool, error) {
	if err := checkKind(req); err != nil {
		return nil, false, err
	}
	if len(bytes.TrimSpace(req.Object.Raw)) == 0 {
		return nil, false, fmt.Errorf("the request has no object")
	}
	obj, exact, err := engine.ParseJSONObject(req.Object.Raw)
	if err == nil && exact {
		return obj, true, nil
	}
	if _, decodeErr := Decode(req); decodeErr != nil {
		return nil, false, decodeErr
	}
	if err != nil {
		return nil, false, fmt.Errorf("the object is not a decodable batch/v1 Job: %w", err)
	}
	return obj, false, nil
}

// strictJob is the strict decode parseObject deferred.
func strictJob(req admissionv1.AdmissionRequest) error {
	_, err := Decode(req)
	return err
}

func decodeJSON(raw []byte) (map[string]any, error) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var obj map[string]any
	if err := dec.Decode(&obj); err != nil {
		return nil, err
	}
	if obj == nil {
		return nil, fmt.Errorf("not a JSON object")
	}
	return obj, nil
}

type objMeta struct {
	name   string
	labels map[string]string
}

// objectMeta reads the name and labels of a decoded object.
func objectMeta(obj map[string]any) objMeta {
	m, _ := obj["metadata"].(map[string]any)
	out := objMeta{labels: map[string]string{}}
	out.name, _ = m["name"].(string)
	if out.name == "" {
		out.name, _ = m["generateName"].(string)
	}
	labels, _ := m["labels"].(map[string]any)
	for k, v := range labels {
		if s, ok := v.(string); ok {
			out.labels[k] = s
		}
	}
	return out
}

func isDryRun(req admission.Request) bool {
	return req.DryRun != nil && *req.DryRun
}
