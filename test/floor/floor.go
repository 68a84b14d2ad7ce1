package floor

import (
	"context"
	"encoding/json"
	"net/http"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"
)

// Path is where the floor is served beside FlowForge's webhooks.
const Path = "/floor-mutate-batch-v1-job"

// Handler hardens labelled Jobs with fixed settings.
type Handler struct {
	decoder admission.Decoder
}

// NewHandler returns the floor handler.
func NewHandler() *Handler {
	scheme := runtime.NewScheme()
	_ = batchv1.AddToScheme(scheme) // registering a built-in group cannot fail
	return &Handler{decoder: admission.NewDecoder(scheme)}
}

var _ admission.Handler = &Handler{}

// Handle decodes the Job, hardens it and answers with the JSON patch.
func (h *Handler) Handle(_ context.Context, req admission.Request) admission.Response {
	var job batchv1.Job
	if err := h.decoder.Decode(req, &job); err != nil {
		return admission.Errored(http.StatusBadRequest, err)
	}
	if job.Labels["app"] != "flowforge" {
		return admission.Allowed("not a FlowForge Job")
	}
	Harden(&job)
	raw, err := json.Marshal(&job)
	if err != nil {
		return admission.Errored(http.StatusInternalServerError, err)
	}
	return admission.PatchResponseFromRaw(req.Object.Raw, raw)
}

// Harden applies the floor's fixed settings: about the ones FlowForge's
// policy sets on a typical Job.
func Harden(job *batchv1.Job) {
	spec := &job.Spec
	if spec.ActiveDeadlineSeconds == nil {
		spec.ActiveDeadlineSeconds = ptr.To[int64](3600)
	}
	if spec.TTLSecondsAfterFinished == nil {
		spec.TTLSecondsAfterFinished = ptr.To[int32](3600)
	}
	spec.BackoffLimit = ptr.To[int32](0)
	pod := &spec.Template
	if pod.Labels == nil {
		pod.Labels = map[string]string{}
	}
	for _, k := range []string{"app", "component", "job-id", "user-id"} {
		if v, ok := job.Labels[k]; ok {
			pod.Labels[k] = v
		}
	}
	ps := &pod.Spec
	ps.AutomountServiceAccountToken = ptr.To(false)
	ps.EnableServiceLinks = ptr.To(false)
	ps.RestartPolicy = corev1.RestartPolicyNever
	if ps.SecurityContext == nil {
		ps.SecurityContext = &corev1.PodSecurityContext{}
	}
	ps.SecurityContext.RunAsNonRoot = ptr.To(true)
	ps.SecurityContext.SeccompProfile = &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault}
	ps.Volumes = append(ps.Volumes, corev1.Volume{Name: "flowforge-tmp", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{SizeLimit: ptr.To(resource.MustParse("1Gi"))}}})
	for i := range ps.Containers {
		c := &ps.Containers[i]
		c.SecurityContext = &corev1.SecurityContext{
			AllowPrivilegeEscalation: ptr.To(false),
			ReadOnlyRootFilesystem:   ptr.To(true),
			Capabilities:             &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}},
		}
		if c.Resources.Limits == nil {
			c.Resources.Limits = corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("2"), corev1.ResourceMemory: resource.MustParse("4Gi")}
		}
		if c.Resources.Requests == nil {
			c.Resources.Requests = corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("1"), corev1.ResourceMemory: resource.MustParse("2Gi")}
		}
		c.VolumeMounts = append(c.VolumeMounts, corev1.VolumeMount{Name: "flowforge-tmp", MountPath: "/tmp"})
	}
}
