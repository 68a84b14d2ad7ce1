package validate

import (
	"context"
	"fmt"
	"net/http"

	"github.com/go-logr/logr"
	admissionv1 "k8s.io/api/admission/v1"
	batchv1 "k8s.io/api/batch/v1"
	"k8s.io/utils/clock"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	"github.com/flowforge/flowforge/internal/metrics"
	"github.com/flowforge/flowforge/policies/engine"
	"github.com/flowforge/flowforge/webhook"
)

// CronJobPath serves batch/v1 CronJobs.
const CronJobPath = "/validate-batch-v1-cronjob"

// CronJobName labels the CronJob webhook in metrics.
const CronJobName = "validate-cronjob"

// CronJobHandler refuses FlowForge CronJobs (policies/validate/cronjob):
// one whose jobTemplate or own metadata carries the selector label, and any
// CronJob in a managed namespace. A FlowForge job-id names one Job created by
// its owner, and a CronJob would create many Jobs under one job-id, as the
// cronjob controller; so the refusal comes when the CronJob is written
// rather than at each schedule. Other CronJobs are not FlowForge's business.
type CronJobHandler struct {
	Policy     Policy
	Namespaces webhook.NamespaceLabels
	Clock      clock.PassiveClock
}

var _ admission.Handler = &CronJobHandler{}

var cronJobKind = batchv1.SchemeGroupVersion.WithKind("CronJob")

// Handle answers one admission request.
func (h *CronJobHandler) Handle(ctx context.Context, req admission.Request) admission.Response {
	start := h.Clock.Now()
	resp := h.handle(ctx, req)
	webhook.Observe(CronJobName, start, h.Clock.Now(), resp)
	return resp
}

func (h *CronJobHandler) handle(ctx context.Context, req admission.Request) admission.Response {
	switch req.Operation {
	case admissionv1.Create, admissionv1.Update:
	case admissionv1.Delete, admissionv1.Connect:
		return admission.Allowed("FlowForge validates CREATE and UPDATE only")
	default:
		return webhook.Errorf(http.StatusBadRequest, "unsupported operation %q", req.Operation)
	}
	if req.Kind.Group != cronJobKind.Group || req.Kind.Version != cronJobKind.Version || req.Kind.Kind != cronJobKind.Kind {
		return webhook.Errorf(http.StatusBadRequest, "expected a %s, got %q", cronJobKind.String(), req.Kind.String())
	}
	var cj batchv1.CronJob
	if err := webhook.DecodeStrict(req.Object.Raw, cronJobKind, &cj); err != nil {
		return webhook.Errorf(http.StatusBadRequest, "the object is malformed: %v", err)
	}
	if req.Operation == admissionv1.Update {
		var old batchv1.CronJob
		if err := webhook.DecodeStrict(req.OldObject.Raw, cronJobKind, &old); err != nil {
			return webhook.Errorf(http.StatusBadRequest, "the oldObject is malformed: %v", err)
		}
	}
	policy := h.Policy.Current()
	log := logr.FromContextOrDiscard(ctx).WithValues("namespace", req.Namespace, "cronJob", cj.Name, "dryRun", isDryRun(req))
	nsLabels, err := h.Namespaces(ctx, req.Namespace)
	if err != nil {
		return h.failClosed(log, err)
	}
	if !webhook.Selected(policy, cj.Spec.JobTemplate.Labels) && !webhook.Selected(policy, cj.Labels) && !webhook.ManagedNamespace(policy, nsLabels) {
		return admission.Allowed("not a FlowForge CronJob")
	}

	verdict, err := h.Policy.Validate(ctx, engine.Input{Request: &req.AdmissionRequest, NamespaceLabels: nsLabels})
	if err != nil {
		return h.failClosed(log, err)
	}
	deny := verdict.Deny
	if len(deny) == 0 {
		return admission.Allowed("")
	}
	if !isDryRun(req) {
		metrics.Denials.WithLabelValues(CronJobName).Add(float64(len(deny)))
	}
	log.Info("Denied", "violations", len(deny), "revision", verdict.Revision)
	return Denial(cronJobKind, cj.Name, deny)
}

func (h *CronJobHandler) failClosed(log logr.Logger, err error) admission.Response {
	log.Error(err, "Denying: policy evaluation failed")
	return admission.Errored(http.StatusInternalServerError, fmt.Errorf("FlowForge could not validate this CronJob, so it is denied: %w", err))
}
