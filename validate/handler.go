package validate

import (
	"bytes"
	"context"
	"fmt"
	"net/http"

	"github.com/go-logr/logr"
	admissionv1 "k8s.io/api/admission/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"k8s.io/utils/clock"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	"github.com/flowforge/flowforge/internal/metrics"
	"github.com/flowforge/flowforge/policies"
	"github.com/flowforge/flowforge/policies/engine"
	"github.com/flowforge/flowforge/webhook"
)

// Paths, following controller-runtime's conventions.
const (
	JobPath = "/validate-batch-v1-job"
	PodPath = "/validate-v1-pod"
)

// Policy is the part of the policy engine the handlers use.
type Policy interface {
	Current() *engine.Policy
	Validate(ctx context.Context, in engine.Input) (*engine.Validation, error)
}

// Handler validates one kind of object.
type Handler struct {
	// Name labels the webhook in metrics: "validate-job" or "validate-pod".
	Name       string
	Kind       schema.GroupVersionKind
	Policy     Policy
	Namespaces webhook.NamespaceLabels
	Clock      clock.PassiveClock
	// Claims finds who else holds a Job's job-id (see the identity
	// policy). Without it, a labelled Job CREATE is denied: the policy
	// fails closed when it cannot know.
	Claims webhook.JobIDClaims
}

var _ admission.Handler = &Handler{}

// NewJobHandler validates batch/v1 Jobs.
func NewJobHandler(p Policy, ns webhook.NamespaceLabels, c clock.PassiveClock) *Handler {
	return &Handler{Name: "validate-job", Kind: batchv1.SchemeGroupVersion.WithKind("Job"), Policy: p, Namespaces: ns, Clock: c}
}

// NewPodHandler validates v1 Pods.
func NewPodHandler(p Policy, ns webhook.NamespaceLabels, c clock.PassiveClock) *Handler {
	return &Handler{Name: "validate-pod", Kind: corev1.SchemeGroupVersion.WithKind("Pod"), Policy: p, Namespaces: ns, Clock: c}
}

// Handle answers one admission request.
func (h *Handler) Handle(ctx context.Context, req admission.Request) admission.Response {
	start := h.Clock.Now()
	resp := h.handle(ctx, req)
	webhook.Observe(h.Name, start, h.Clock.Now(), resp)
	return resp
}

func (h *Handler) handle(ctx context.Context, req admission.Request) admission.Response {
	switch req.Operation {
	case admissionv1.Create, admissionv1.Update:
	case admissionv1.Delete, admissionv1.Connect:
		return admission.Allowed("FlowForge validates CREATE and UPDATE only")
	default:
		return webhook.Errorf(http.StatusBadRequest, "unsupported operation %q", req.Operation)
	}
	meta, parsed, err := h.decode(req.AdmissionRequest)
	if err != nil {
		return admission.Errored(http.StatusBadRequest, err)
	}
	// malformed runs the strict decode that decode deferred (parsed is
	// set), and decoded puts it before an answer: every answer but a
	// verdict whose decision vouches for the object's decoding runs it, so
	// a malformed object is refused as malformed whatever else happens.
	malformed := func() *admission.Response {
		if parsed == nil {
			return nil
		}
		if _, err := h.decodeRaw(req.Object.Raw, "object"); err != nil {
			resp := admission.Errored(http.StatusBadRequest, err)
			return &resp
		}
		return nil
	}
	decoded := func(resp admission.Response) admission.Response {
		if bad := malformed(); bad != nil {
			return *bad
		}
		return resp
	}
	policy := h.Policy.Current()
	nsLabels, err := h.Namespaces(ctx, req.Namespace)
	if err != nil {
		return decoded(admission.Errored(http.StatusInternalServerError, fmt.Errorf("FlowForge could not validate this %s, so it is denied: %w", h.Kind.Kind, err)))
	}
	if !webhook.Selected(policy, meta.Labels) && !webhook.ManagedNamespace(policy, nsLabels) {
		if req.Operation != admissionv1.Update || !h.wasSelected(policy, req.AdmissionRequest) {
			return decoded(admission.Allowed("not a FlowForge object"))
		}
	}
	log := logr.FromContextOrDiscard(ctx).WithValues("namespace", req.Namespace, "name", name(meta), "dryRun", isDryRun(req))

	claims, err := h.claims(ctx, policy, req.AdmissionRequest, meta)
	if err != nil {
		if bad := malformed(); bad != nil {
			return *bad
		}
		log.Error(err, "Denying: job-id claims unknown")
		return admission.Errored(http.StatusInternalServerError, fmt.Errorf("FlowForge could not validate this %s, so it is denied: %w", h.Kind.Kind, err))
	}
	verdict, err := h.Policy.Validate(ctx, engine.Input{Request: &req.AdmissionRequest, NamespaceLabels: nsLabels, Claims: claims, Parsed: parsed})
	if err != nil {
		if bad := malformed(); bad != nil {
			return *bad
		}
		log.Error(err, "Denying: policy evaluation failed")
		return admission.Errored(http.StatusInternalServerError, fmt.Errorf("FlowForge could not validate this %s, so it is denied: %w", h.Kind.Kind, err))
	}
	if parsed != nil && !parsed.DecodeVouched() {
		if bad := malformed(); bad != nil {
			return *bad
		}
		parsed.MarkDecoded()
	}
	warnings := make([]string, 0, len(verdict.Warn))
	for _, w := range verdict.Warn {
		warnings = append(warnings, w.String())
	}
	if len(verdict.Deny) == 0 {
		return admission.Allowed("").WithWarnings(warnings...)
	}
	if !isDryRun(req) {
		metrics.Denials.WithLabelValues(h.Name).Add(float64(len(verdict.Deny)))
	}
	log.Info("Denied", "violations", len(verdict.Deny), "revision", verdict.Revision)
	return Denial(h.Kind, name(meta), verdict.Deny).WithWarnings(warnings...)
}

// claims gathers, for a Job or Pod CREATE, the Jobs that already hold its
// job-id (from a local cache: no network). Nil when there is nothing to
// gather or no source, which the identity policy treats as unknown.
func (h *Handler) claims(ctx context.Context, policy *engine.Policy, req admissionv1.AdmissionRequest, meta *metav1.ObjectMeta) (*policies.Claims, error) {
	if (h.Kind.Kind != "Job" && h.Kind.Kind != "Pod") || req.Operation != admissionv1.Create || h.Claims == nil {
		return nil, nil
	}
	label, _ := policy.Config("identity", "jobIDLabel").(string)
	id := meta.Labels[label]
	if label == "" || id == "" {
		return &policies.Claims{}, nil
	}
	holders, err := h.Claims(ctx, req.Namespace, id)
	if err != nil {
		return nil, fmt.Errorf("read the Jobs that hold %s %q: %w", label, id, err)
	}
	return &policies.Claims{JobID: holders}, nil
}

// maxListedViolations bounds the violations a denial lists.
const maxListedViolations = 64

// Denial builds one response listing every violation with its field path
// (the first maxListedViolations, then how many more), as a 422 Invalid
// status in the style of kubectl's field errors.
func Denial(gvk schema.GroupVersionKind, name string, violations []engine.Violation) admission.Response {
	listed := violations[:min(len(violations), maxListedViolations)]
	errs := make(field.ErrorList, 0, len(listed)+1)
	for _, v := range listed {
		errs = append(errs, field.Forbidden(field.NewPath(v.Field), v.Msg))
	}
	if more := len(violations) - len(listed); more > 0 {
		// apimachinery joins the messages in time quadratic in their
		// number (issue 14: 235 GB for a Job of 5,000 containers).
		errs = append(errs, field.Forbidden(field.NewPath("metadata"), fmt.Sprintf("and %d more violations", more)))
	}
	status := apierrors.NewInvalid(gvk.GroupKind(), name, errs).Status()
	return admission.Response{AdmissionResponse: admissionv1.AdmissionResponse{Allowed: false, Result: &status}}
}

// decode checks the kind and that the object (and, on UPDATE, the old
// object) decode, and returns the object's metadata. On CREATE, an object
// that parses exactly is returned parsed (for the policy input) and its
// strict typed decode is left to handle, which skips it when the cached
// decision vouches for it (see engine.Object.DecodeVouched).
func (h *Handler) decode(req admissionv1.AdmissionRequest) (*metav1.ObjectMeta, *engine.Object, error) {
	if req.Kind.Group != h.Kind.Group || req.Kind.Version != h.Kind.Version || req.Kind.Kind != h.Kind.Kind {
		return nil, nil, fmt.Errorf("expected a %s, got %q", h.Kind.String(), req.Kind.String())
	}
	if req.Operation == admissionv1.Create {
		if parsed, err := engine.ParseObject(req.Object.Raw); err == nil && parsed.Exact() {
			name, generateName, labels := parsed.Meta()
			return &metav1.ObjectMeta{Name: name, GenerateName: generateName, Labels: labels}, parsed, nil
		}
	}
	meta, err := h.decodeRaw(req.Object.Raw, "object")
	if err != nil {
		return nil, nil, err
	}
	if req.Operation == admissionv1.Update {
		if _, err := h.decodeRaw(req.OldObject.Raw, "oldObject"); err != nil {
			return nil, nil, err
		}
	}
	return meta, nil, nil
}

func (h *Handler) decodeRaw(raw []byte, what string) (*metav1.ObjectMeta, error) {
	if len(bytes.TrimSpace(raw)) == 0 {
		return nil, fmt.Errorf("the request has no %s", what)
	}
	// Strictly, as what the request says it is: a Pod sent as a Job is
	// malformed (see webhook.DecodeStrict).
	switch h.Kind.Kind {
	case "Job":
		var job batchv1.Job
		if err := webhook.DecodeStrict(raw, h.Kind, &job); err != nil {
			return nil, fmt.Errorf("the %s is not a decodable %s: %w", what, h.Kind.String(), err)
		}
		return &job.ObjectMeta, nil
	case "Pod":
		var pod corev1.Pod
		if err := webhook.DecodeStrict(raw, h.Kind, &pod); err != nil {
			return nil, fmt.Errorf("the %s is not a decodable %s: %w", what, h.Kind.String(), err)
		}
		return &pod.ObjectMeta, nil
	}
	return nil, fmt.Errorf("no decoder for %s", h.Kind.String())
}

// wasSelected reports whether the old object of an UPDATE carried the
// selector label: removing the label is itself a violation to evaluate.
func (h *Handler) wasSelected(policy *engine.Policy, req admissionv1.AdmissionRequest) bool {
	old, err := h.decodeRaw(req.OldObject.Raw, "oldObject")
	return err == nil && webhook.Selected(policy, old.Labels)
}

func name(meta *metav1.ObjectMeta) string {
	if meta.Name != "" {
		return meta.Name
	}
	return meta.GenerateName
}

func isDryRun(req admission.Request) bool {
	return req.DryRun != nil && *req.DryRun
}
