package validate

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/go-logr/logr"
	admissionv1 "k8s.io/api/admission/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"k8s.io/utils/clock"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"
	kjson "sigs.k8s.io/json"

	"github.com/flowforge/flowforge/internal/metrics"
	"github.com/flowforge/flowforge/policies/engine"
	"github.com/flowforge/flowforge/webhook"
)

// NamespacePath is where the namespace-label guard listens.
const NamespacePath = "/validate-v1-namespace"

// NamespaceHandler guards the namespace labels and annotations that decide
// what FlowForge enforces (flowforge.io/managed, flowforge.io/seccomp and
// the rest of the flowforge.io/ prefix): the policy
// (validate/namespace-labels) refuses a change by anyone that
// config.namespaceGuard does not name. The webhook's matchConditions send
// only requests that change such a key, so every other namespace
// operation never reaches it.
type NamespaceHandler struct {
	// Name labels the webhook in metrics: "validate-namespace".
	Name   string
	Policy Policy
	Clock  clock.PassiveClock
}

var _ admission.Handler = &NamespaceHandler{}

// NewNamespaceHandler guards the labels and annotations of v1 Namespaces.
func NewNamespaceHandler(p Policy, c clock.PassiveClock) *NamespaceHandler {
	return &NamespaceHandler{Name: "validate-namespace", Policy: p, Clock: c}
}

var namespaceKind = corev1.SchemeGroupVersion.WithKind("Namespace")

// Handle answers one admission request.
func (h *NamespaceHandler) Handle(ctx context.Context, req admission.Request) admission.Response {
	start := h.Clock.Now()
	resp := h.handle(ctx, req)
	webhook.Observe(h.Name, start, h.Clock.Now(), resp)
	return resp
}

func (h *NamespaceHandler) handle(ctx context.Context, req admission.Request) admission.Response {
	switch req.Operation {
	case admissionv1.Create, admissionv1.Update:
	case admissionv1.Delete, admissionv1.Connect:
		return admission.Allowed("FlowForge guards namespace labels on CREATE and UPDATE only")
	default:
		return webhook.Errorf(http.StatusBadRequest, "unsupported operation %q", req.Operation)
	}
	if req.Kind.Group != namespaceKind.Group || req.Kind.Version != namespaceKind.Version || req.Kind.Kind != namespaceKind.Kind {
		return webhook.Errorf(http.StatusBadRequest, "expected a %s, got %q", namespaceKind.String(), req.Kind.String())
	}
	ns, err := decodeNamespace(req.Object.Raw, "object")
	if err != nil {
		return admission.Errored(http.StatusBadRequest, err)
	}
	if req.Operation == admissionv1.Update {
		if _, err := decodeNamespace(req.OldObject.Raw, "oldObject"); err != nil {
			return admission.Errored(http.StatusBadRequest, err)
		}
	}
	log := logr.FromContextOrDiscard(ctx).WithValues("namespace", ns.Name, "user", req.UserInfo.Username, "dryRun", isDryRun(req))
	// The namespace's own labels are the namespace labels of this request.
	verdict, err := h.Policy.Validate(ctx, engine.Input{Request: &req.AdmissionRequest, NamespaceLabels: ns.Labels})
	if err != nil {
		log.Error(err, "Denying: policy evaluation failed")
		return admission.Errored(http.StatusInternalServerError, fmt.Errorf("FlowForge could not check this change to namespace %q's labels, so it is denied: %w", ns.Name, err))
	}
	if len(verdict.Deny) == 0 {
		return admission.Allowed("")
	}
	if !isDryRun(req) {
		metrics.Denials.WithLabelValues(h.Name).Add(float64(len(verdict.Deny)))
	}
	fields := make([]string, 0, len(verdict.Deny))
	for _, v := range verdict.Deny {
		fields = append(fields, v.Field)
	}
	log.Info("Denied", "fields", fields, "revision", verdict.Revision)
	return NamespaceDenial(ns.Name, verdict.Deny)
}

// NamespaceDenial builds a 403 Forbidden response naming every refused
// key, each also as a cause with its field path: who may change a label is
// a question of permission, not of a valid object.
func NamespaceDenial(name string, violations []engine.Violation) admission.Response {
	msgs := make([]string, 0, len(violations))
	causes := make([]metav1.StatusCause, 0, len(violations))
	for _, v := range violations {
		msgs = append(msgs, v.String())
		causes = append(causes, metav1.StatusCause{Type: metav1.CauseType(field.ErrorTypeForbidden), Field: v.Field, Message: v.Msg})
	}
	status := apierrors.NewForbidden(corev1.Resource("namespaces"), name, errors.New(strings.Join(msgs, "; "))).Status()
	status.Details.Causes = causes
	return admission.Response{AdmissionResponse: admissionv1.AdmissionResponse{Allowed: false, Result: &status}}
}

func decodeNamespace(raw []byte, what string) (*corev1.Namespace, error) {
	if trimmed := bytes.TrimSpace(raw); len(trimmed) == 0 || bytes.Equal(trimmed, []byte("null")) {
		return nil, fmt.Errorf("the request has no %s", what)
	}
	// Case-sensitive, as the API server and the policy read it: encoding/json
	// would take "Metadata" for "metadata" and see labels the policy does not.
	var ns corev1.Namespace
	if err := kjson.UnmarshalCaseSensitivePreserveInts(raw, &ns); err != nil {
		return nil, fmt.Errorf("the %s is not a decodable %s: %w", what, namespaceKind.String(), err)
	}
	return &ns, nil
}
