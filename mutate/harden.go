package mutate

import (
	"context"
	"fmt"
	"net/http"

	"github.com/go-logr/logr"
	admissionv1 "k8s.io/api/admission/v1"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	"github.com/flowforge/flowforge/internal/metrics"
	"github.com/flowforge/flowforge/policies/engine"
	"github.com/flowforge/flowforge/webhook"
)

// kindHardening is what differs between hardening a Job and a Pod: the
// same Rego (data.flowforge.mutate) decides both.
type kindHardening struct {
	// kind names the object in messages and logs ("Job", "Pod").
	kind string
	// decode checks the request's kind and decodes its object strictly,
	// keeping numbers exact.
	decode func(admissionv1.AdmissionRequest) (map[string]any, error)
	// parse, if set, replaces decode: it checks the kind and parses the
	// object, and when the parse was exact (deferred) leaves the strict
	// decode to strict, which harden skips when the cached decision
	// vouches for it (engine.Mutation.DecodeVouched).
	parse  func(admissionv1.AdmissionRequest) (obj map[string]any, deferred bool, err error)
	strict func(admissionv1.AdmissionRequest) error
	// apply applies the policy's settings and checks the result is still
	// a valid object of the kind.
	apply func(map[string]any, []engine.Op) ([]byte, []engine.Op, error)
	// applyVerified, if set, applies settings whose result Mutation.Verified
	// vouches for, without checking it again.
	applyVerified func(map[string]any, *engine.Mutation) ([]engine.Op, error)
	// rewritten lists the paths the handler itself rewrote after the
	// policy's ops, for the JSON patch (see patchFromOps).
	rewritten func(hardened map[string]any, applied []engine.Op) [][]any
}

var (
	jobHardening = kindHardening{kind: "Job", decode: decodeObject, parse: parseObject, strict: strictJob, apply: applyChecked, applyVerified: applyPrepared, rewritten: func(map[string]any, []engine.Op) [][]any { return nil }}
	podHardening = kindHardening{kind: "Pod", decode: decodePod, parse: parsePod, strict: strictPodRequest, apply: ApplyPod, rewritten: podRewritten}
)

// applyPrepared applies a decision's ops, prepared once per decision.
func applyPrepared(obj map[string]any, m *engine.Mutation) ([]engine.Op, error) {
	prepared, err := m.Prepared()
	if err != nil {
		return nil, fmt.Errorf("apply policy: %w", err)
	}
	applied, err := prepared.Apply(obj)
	if err != nil {
		return nil, fmt.Errorf("apply policy: %w", err)
	}
	return applied, nil
}

// harden answers one admission request for k: CREATE of a labelled object
// is hardened (a JSON patch), anything else passes unchanged, and a
// labelled object that cannot be hardened is denied.
func harden(ctx context.Context, req admission.Request, policy Policy, namespaces webhook.NamespaceLabels, k kindHardening) admission.Response {
	switch req.Operation {
	case admissionv1.Create:
	case admissionv1.Update, admissionv1.Delete, admissionv1.Connect:
		return admission.Allowed(fmt.Sprintf("FlowForge hardens %ss on CREATE only", k.kind))
	default:
		return webhook.Errorf(http.StatusBadRequest, "unsupported operation %q", req.Operation)
	}
	var obj map[string]any
	var deferred bool
	var err error
	if k.parse != nil {
		obj, deferred, err = k.parse(req.AdmissionRequest)
	} else {
		obj, err = k.decode(req.AdmissionRequest)
	}
	if err != nil {
		return admission.Errored(http.StatusBadRequest, err)
	}
	// malformed runs the strict decode that parse deferred, before any
	// answer but a patch whose decision vouches for it: a malformed object
	// is refused as malformed whatever else happens.
	malformed := func() error {
		if !deferred {
			return nil
		}
		return k.strict(req.AdmissionRequest)
	}
	meta := objectMeta(obj)
	if !webhook.Selected(policy.Current(), meta.labels) {
		if err := malformed(); err != nil {
			return admission.Errored(http.StatusBadRequest, err)
		}
		// The webhook configuration selects labelled objects, so this is rare.
		return admission.Allowed("not a FlowForge " + k.kind)
	}
	log := logr.FromContextOrDiscard(ctx).WithValues("namespace", req.Namespace, "kind", k.kind, "name", meta.name, "jobID", meta.labels["job-id"], "dryRun", isDryRun(req))
	failClosed := func(err error) admission.Response {
		if bad := malformed(); bad != nil {
			return admission.Errored(http.StatusBadRequest, bad)
		}
		log.Error(err, "Denying: hardening failed")
		return admission.Errored(http.StatusInternalServerError, fmt.Errorf("FlowForge could not harden this %s, so it is denied: %w", k.kind, err))
	}

	nsLabels, err := namespaces(ctx, req.Namespace)
	if err != nil {
		return failClosed(err)
	}
	mutation, err := policy.Mutate(ctx, engine.Input{Request: &req.AdmissionRequest, NamespaceLabels: nsLabels, Object: obj, ObjectExact: deferred})
	if err != nil {
		return failClosed(err)
	}
	if deferred && !mutation.DecodeVouched() {
		if err := malformed(); err != nil {
			return admission.Errored(http.StatusBadRequest, err)
		}
		mutation.MarkDecoded()
	}
	deferred = false // decoded, or vouched for
	before := anchorsOf(obj, mutation.Ops)
	var applied []engine.Op
	if k.applyVerified != nil && mutation.Verified() {
		applied, err = k.applyVerified(obj, mutation)
	} else if _, applied, err = k.apply(obj, mutation.Ops); err == nil {
		mutation.MarkVerified()
	}
	if err != nil {
		return failClosed(err)
	}
	resp := patchResponse(patchFromOps(obj, before, applied, k.rewritten(obj, applied)))
	if len(mutation.Warnings) > 0 {
		resp = resp.WithWarnings(mutation.Warnings...)
	}
	if !isDryRun(req) {
		for _, op := range applied {
			metrics.Mutations.WithLabelValues(op.Setting).Inc()
		}
	}
	log.V(1).Info("Hardened", "revision", mutation.Revision, "settings", len(applied))
	return resp
}
