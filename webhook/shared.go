package webhook

import (
	"context"
	"fmt"
	"net/http"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	"github.com/flowforge/flowforge/internal/metrics"
	"github.com/flowforge/flowforge/policies/engine"
)

// NamespaceLabels returns the labels of a namespace. Handlers call it with
// a cache-backed reader, so evaluation never waits on the network.
type NamespaceLabels func(ctx context.Context, name string) (map[string]string, error)

// ClientNamespaceLabels reads namespaces through a cached client. A
// namespace the cache does not have yet (created a moment ago, before the
// informer saw it: a CI job that makes a namespace and a Job at once) is
// read from live, when live is not nil, rather than refused: the miss is
// rare and costs one GET.
func ClientNamespaceLabels(cached, live client.Reader) NamespaceLabels {
	return func(ctx context.Context, name string) (map[string]string, error) {
		if name == "" {
			return map[string]string{}, nil
		}
		var ns corev1.Namespace
		err := cached.Get(ctx, client.ObjectKey{Name: name}, &ns)
		if apierrors.IsNotFound(err) && live != nil {
			err = live.Get(ctx, client.ObjectKey{Name: name}, &ns)
		}
		if err != nil {
			return nil, fmt.Errorf("read namespace %q: %w", name, err)
		}
		return ns.Labels, nil
	}
}

// Selected reports whether labels carry the policy's selector label.
func Selected(p *engine.Policy, labels map[string]string) bool {
	key, _ := p.Config("selector", "label").(string)
	value, _ := p.Config("selector", "value").(string)
	return key != "" && labels[key] == value
}

// ManagedNamespace reports whether namespace labels mark a FlowForge namespace.
func ManagedNamespace(p *engine.Policy, labels map[string]string) bool {
	key, _ := p.Config("managedNamespaceLabel", "key").(string)
	value, _ := p.Config("managedNamespaceLabel", "value").(string)
	return key != "" && labels[key] == value
}

// Outcome classifies a response for the admission metrics.
func Outcome(resp admission.Response) string {
	switch {
	case resp.Result != nil && resp.Result.Code >= http.StatusBadRequest && resp.Result.Code != http.StatusForbidden && resp.Result.Code != http.StatusUnprocessableEntity:
		return metrics.OutcomeError
	case !resp.Allowed:
		return metrics.OutcomeDenied
	case len(resp.Patches) > 0 || len(resp.Patch) > 0:
		return metrics.OutcomePatched
	default:
		return metrics.OutcomeAllowed
	}
}

// Observe records an answered request in the admission latency histogram.
func Observe(webhookName string, start time.Time, now time.Time, resp admission.Response) {
	metrics.AdmissionDuration.WithLabelValues(webhookName, Outcome(resp)).Observe(now.Sub(start).Seconds())
}

// Errorf builds an error response with the given HTTP status code.
func Errorf(code int32, format string, args ...any) admission.Response {
	return admission.Errored(code, fmt.Errorf(format, args...))
}
