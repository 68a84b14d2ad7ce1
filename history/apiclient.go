package history

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	"k8s.io/client-go/rest"

	historyv1alpha1 "github.com/flowforge/flowforge/history/apis/v1alpha1"
)

// ErrUnavailable is returned when the cluster does not serve the history
// API: no APIService for it, or the controller behind it is down.
var ErrUnavailable = errors.New("the history API (history.flowforge.io/v1alpha1) is unavailable")

// DefaultListLimit is how many records Jobs returns when no limit is given.
const DefaultListLimit = 500

// listPage is the page size Jobs reads with.
const listPage = 500

// APIClient reads the history through the Kubernetes API server
// (history.flowforge.io/v1alpha1, served by the controller behind an
// APIService), with the caller's own credentials: RBAC decides which
// namespaces' history they read. It needs no address of the controller.
type APIClient struct {
	rest      rest.Interface
	namespace string
}

// NewAPIClient returns a client for the executions of namespace ("" for
// every namespace the caller may list) on the cluster of cfg.
func NewAPIClient(cfg *rest.Config, namespace string) (*APIClient, error) {
	scheme := runtime.NewScheme()
	if err := historyv1alpha1.AddToScheme(scheme); err != nil {
		return nil, fmt.Errorf("history: %w", err)
	}
	metav1.AddToGroupVersion(scheme, schema.GroupVersion{Version: "v1"})
	c := rest.CopyConfig(cfg)
	gv := historyv1alpha1.SchemeGroupVersion
	c.GroupVersion = &gv
	c.APIPath = "/apis"
	c.NegotiatedSerializer = serializer.NewCodecFactory(scheme).WithoutConversion()
	if c.UserAgent == "" {
		c.UserAgent = rest.DefaultKubernetesUserAgent()
	}
	rc, err := rest.RESTClientFor(c)
	if err != nil {
		return nil, fmt.Errorf("history: %w", err)
	}
	return &APIClient{rest: rc, namespace: namespace}, nil
}

// Jobs lists records newest first: of user and with status when not "",
// created at or after since (the zero time: any), at most limit
// (DefaultListLimit when 0). It reads pages of the API until it has them.
func (c *APIClient) Jobs(ctx context.Context, user, status string, since time.Time, limit int) ([]Job, error) {
	if limit < 0 {
		return nil, fmt.Errorf("history: limit %d: want a positive number", limit)
	}
	if limit == 0 {
		limit = DefaultListLimit
	}
	var sel []fields.Selector
	if user != "" {
		sel = append(sel, fields.OneTermEqualSelector(historyv1alpha1.FieldUser, user))
	}
	if status != "" {
		sel = append(sel, fields.OneTermEqualSelector(historyv1alpha1.FieldPhase, status))
	}
	out := []Job{}
	cont := ""
	for len(out) < limit {
		var list historyv1alpha1.ExecutionList
		req := c.rest.Get().NamespaceIfScoped(c.namespace, c.namespace != "").Resource(historyv1alpha1.Resource).
			Param("limit", strconv.Itoa(min(listPage, limit-len(out))))
		if len(sel) > 0 {
			req = req.Param("fieldSelector", fields.AndSelectors(sel...).String())
		}
		if cont != "" {
			req = req.Param("continue", cont)
		}
		if err := req.Do(ctx).Into(&list); err != nil {
			if unavailable(err) {
				return nil, unavailableError(err)
			}
			return nil, fmt.Errorf("history: list executions: %w", err)
		}
		for i := range list.Items {
			if list.Items[i].CreationTimestamp.Time.Before(since) {
				return out, nil // newest first: the rest are older
			}
			out = append(out, JobFromExecution(&list.Items[i]))
		}
		if cont = list.Continue; cont == "" {
			break
		}
	}
	return out, nil
}

// Job returns the record of a job id.
func (c *APIClient) Job(ctx context.Context, id string) (*Job, error) {
	var e historyv1alpha1.Execution
	err := c.rest.Get().Namespace(c.namespace).Resource(historyv1alpha1.Resource).Name(id).Do(ctx).Into(&e)
	if err != nil {
		return nil, c.wrap(id, err)
	}
	j := JobFromExecution(&e)
	return &j, nil
}

// Logs copies a job's archived logs to w: one attempt (0: all) and one
// container ("": all).
func (c *APIClient) Logs(ctx context.Context, id string, attempt int, container string, w io.Writer) error {
	req := c.rest.Get().Namespace(c.namespace).Resource(historyv1alpha1.Resource).Name(id).SubResource(historyv1alpha1.LogSubresource)
	if attempt > 0 {
		req = req.Param("attempt", strconv.Itoa(attempt))
	}
	if container != "" {
		req = req.Param("container", container)
	}
	body, err := req.Stream(ctx)
	if err != nil {
		return c.wrap(id, err)
	}
	defer body.Close() //nolint:errcheck // read-only
	if _, err := io.Copy(w, body); err != nil {
		return fmt.Errorf("history: read logs of %s: %w", id, err)
	}
	return nil
}

// wrap says what failed: a job missing from the history matches
// ErrNotFound; a refusal keeps the API server's words (who may not read
// what), which are the next step's clue.
func (c *APIClient) wrap(id string, err error) error {
	if unavailable(err) {
		return unavailableError(err)
	}
	if apierrors.IsNotFound(err) {
		return fmt.Errorf("job %q %w in the history", id, ErrNotFound)
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("history: job %s: %w", id, err)
	}
	return fmt.Errorf("history: %w", err)
}

// unavailable tells a cluster that does not serve the group (a 404 that
// is not a Status of the history API) or whose history API is down (503)
// from a missing record.
func unavailable(err error) bool {
	if apierrors.IsServiceUnavailable(err) {
		return true
	}
	if !apierrors.IsNotFound(err) {
		return false
	}
	var status apierrors.APIStatus
	if !errors.As(err, &status) {
		return false
	}
	details := status.Status().Details
	if details == nil {
		return true
	}
	for _, cause := range details.Causes {
		if cause.Type == metav1.CauseTypeUnexpectedServerResponse {
			return true
		}
	}
	return details.Group != historyv1alpha1.GroupName
}

func unavailableError(err error) error {
	return fmt.Errorf("%w: is FlowForge's controller installed and `kubectl get apiservice %s.%s` Available? (%w)",
		ErrUnavailable, historyv1alpha1.SchemeGroupVersion.Version, historyv1alpha1.GroupName, err)
}

// ParseSince accepts a duration back from now ("24h") or an RFC3339 time;
// "" is the zero time (no bound).
func ParseSince(s string, now time.Time) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	if d, err := time.ParseDuration(s); err == nil {
		if d < 0 {
			return time.Time{}, fmt.Errorf("since %q: negative duration", s)
		}
		return now.Add(-d), nil
	}
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("since %q: want a duration like 24h or an RFC3339 time", s)
	}
	return t, nil
}
