package validate

import (
	"context"
	"fmt"
	"net/http"
	"strings"

	"github.com/go-logr/logr"
	admissionv1 "k8s.io/api/admission/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/clock"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	"github.com/flowforge/flowforge/internal/metrics"
	"github.com/flowforge/flowforge/policies/engine"
	"github.com/flowforge/flowforge/webhook"
)

// ConnectPath serves CONNECT requests on pods' subresources (exec, attach,
// portforward, proxy).
const ConnectPath = "/validate-v1-pod-connect"

// ConnectName labels the connect webhook in metrics.
const ConnectName = "validate-pod-connect"

// PodMetadata returns the metadata of a pod (labels, owners). The connect
// handler calls it for every request, because the API server sends the
// connect options (PodExecOptions, ...), not the pod: an object selector
// cannot see the pod's labels either.
type PodMetadata func(ctx context.Context, namespace, name string) (*metav1.ObjectMeta, error)

// ClientPodMetadata reads a pod's metadata with a metadata-only GET. Use an
// uncached reader (the manager's API reader): the answer must reflect the
// pod as it is now, a pod created a moment ago included, and caching every
// pod in the cluster for a rare request would cost memory.
func ClientPodMetadata(r client.Reader) PodMetadata {
	return func(ctx context.Context, namespace, name string) (*metav1.ObjectMeta, error) {
		pod := &metav1.PartialObjectMetadata{}
		pod.SetGroupVersionKind(corev1.SchemeGroupVersion.WithKind("Pod"))
		if err := r.Get(ctx, client.ObjectKey{Namespace: namespace, Name: name}, pod); err != nil {
			return nil, fmt.Errorf("read pod %s/%s: %w", namespace, name, err)
		}
		return &pod.ObjectMeta, nil
	}
}

// ConnectHandler decides CONNECT requests on a pod's subresources with the
// validating policy (policies/validate/interactive-access): the policy sees
// the request with the target pod's metadata as request.object. It fails
// closed: a pod it cannot look up is not connected to.
type ConnectHandler struct {
	Policy     Policy
	Namespaces webhook.NamespaceLabels
	Pods       PodMetadata
	Clock      clock.PassiveClock
}

var _ admission.Handler = &ConnectHandler{}

// Handle answers one admission request.
func (h *ConnectHandler) Handle(ctx context.Context, req admission.Request) admission.Response {
	start := h.Clock.Now()
	resp := h.handle(ctx, req)
	webhook.Observe(ConnectName, start, h.Clock.Now(), resp)
	return resp
}

func (h *ConnectHandler) handle(ctx context.Context, req admission.Request) admission.Response {
	switch req.Operation {
	case admissionv1.Connect:
	case admissionv1.Create, admissionv1.Update, admissionv1.Delete:
		return admission.Allowed("FlowForge checks pod connections on CONNECT only")
	default:
		return webhook.Errorf(http.StatusBadRequest, "unsupported operation %q", req.Operation)
	}
	if req.Resource.Group != "" || req.Resource.Resource != "pods" || req.SubResource == "" {
		return webhook.Errorf(http.StatusBadRequest, "expected a CONNECT to a pod subresource, got %q", strings.TrimSuffix(req.Resource.Resource+"/"+req.SubResource, "/"))
	}
	if req.Name == "" || req.Namespace == "" {
		return webhook.Errorf(http.StatusBadRequest, "the CONNECT request names no pod")
	}
	log := logr.FromContextOrDiscard(ctx).WithValues("namespace", req.Namespace, "pod", req.Name, "subresource", req.SubResource)
	if h.Pods == nil {
		return h.failClosed(log, req, fmt.Errorf("no pod lookup configured"))
	}
	pod, err := h.Pods(ctx, req.Namespace, req.Name)
	if err != nil {
		return h.failClosed(log, req, err)
	}
	policy := h.Policy.Current()
	if !webhook.Selected(policy, pod.Labels) {
		return admission.Allowed("not a FlowForge pod")
	}
	nsLabels, err := h.Namespaces(ctx, req.Namespace)
	if err != nil {
		return h.failClosed(log, req, err)
	}
	verdict, err := h.Policy.Validate(ctx, engine.Input{Request: &req.AdmissionRequest, NamespaceLabels: nsLabels, Object: podObject(pod)})
	if err != nil {
		return h.failClosed(log, req, err)
	}
	if len(verdict.Deny) == 0 {
		return admission.Allowed("")
	}
	if !isDryRun(req) {
		metrics.Denials.WithLabelValues(ConnectName).Add(float64(len(verdict.Deny)))
	}
	msgs := make([]string, 0, len(verdict.Deny))
	for _, v := range verdict.Deny {
		msgs = append(msgs, v.String())
	}
	log.Info("Denied", "user", req.UserInfo.Username, "revision", verdict.Revision)
	return admission.Denied("FlowForge: " + strings.Join(msgs, "; "))
}

func (h *ConnectHandler) failClosed(log logr.Logger, req admission.Request, err error) admission.Response {
	log.Error(err, "Denying pod connection: could not decide")
	return admission.Errored(http.StatusInternalServerError, fmt.Errorf("FlowForge could not check this pods/%s request, so it is denied: %w", req.SubResource, err))
}

// podObject is what the policy sees as request.object: the pod's identity,
// labels, annotations and owners, never its spec or status.
func podObject(meta *metav1.ObjectMeta) map[string]any {
	labels := make(map[string]any, len(meta.Labels))
	for k, v := range meta.Labels {
		labels[k] = v
	}
	annotations := make(map[string]any, len(meta.Annotations))
	for k, v := range meta.Annotations {
		annotations[k] = v
	}
	owners := make([]any, 0, len(meta.OwnerReferences))
	for _, o := range meta.OwnerReferences {
		owners = append(owners, map[string]any{"apiVersion": o.APIVersion, "kind": o.Kind, "name": o.Name, "controller": o.Controller != nil && *o.Controller})
	}
	return map[string]any{
		"apiVersion": "v1",
		"kind":       "Pod",
		"metadata": map[string]any{
			"name":            meta.Name,
			"namespace":       meta.Namespace,
			"labels":          labels,
			"annotations":     annotations,
			"ownerReferences": owners,
		},
	}
}
