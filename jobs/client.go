package jobs

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/flowforge/flowforge/contract"
	"github.com/flowforge/flowforge/templates"
)

// Errors that callers can test with errors.Is.
var (
	// ErrConflict: another request already uses this job id.
	ErrConflict = errors.New("another request already uses this job id")
	// ErrNotFound: there is no Job with this id.
	ErrNotFound = errors.New("job not found")
	// ErrAmbiguous: several Jobs carry this id (only Jobs admitted before
	// the policy bound a job-id to one Job can).
	ErrAmbiguous = errors.New("several jobs have this job id")
	// ErrDeleted: the Job was deleted (or is being deleted) before it
	// reached a terminal phase.
	ErrDeleted = errors.New("job was deleted before it finished")
	// ErrFinished: the Job already reached a terminal phase, so it cannot
	// be cancelled.
	ErrFinished = errors.New("job already finished")
)

// Client creates, follows, cancels and deletes FlowForge Jobs in one
// namespace. Every API call goes through the retry policy of Options. It is
// safe for concurrent use.
type Client struct {
	cs       kubernetes.Interface
	renderer *templates.Renderer
	opts     Options
	// openLogs opens a pod's log stream; tests replace it, since client-go's
	// fake clientset serves a fixed text.
	openLogs func(ctx context.Context, namespace, pod string, opts *corev1.PodLogOptions) (io.ReadCloser, error)
}

// New returns a Client on a clientset. A nil renderer means one with the
// default options (the embedded templates).
func New(cs kubernetes.Interface, renderer *templates.Renderer, opts Options) (*Client, error) {
	if cs == nil {
		return nil, errors.New("jobs: a clientset is required")
	}
	if renderer == nil {
		var err error
		if renderer, err = templates.NewRenderer(templates.RendererOptions{}); err != nil {
			return nil, fmt.Errorf("jobs: default renderer: %w", err)
		}
	}
	c := &Client{cs: cs, renderer: renderer, opts: opts.withDefaults()}
	c.openLogs = func(ctx context.Context, namespace, pod string, o *corev1.PodLogOptions) (io.ReadCloser, error) {
		return c.cs.CoreV1().Pods(namespace).GetLogs(pod, o).Stream(ctx)
	}
	return c, nil
}

// NewForConfig returns a Client for the API server of cfg (see LoadConfig),
// with Options.QPS and Burst set on a copy of cfg. The client's transport
// keeps connections alive and reuses them across calls.
func NewForConfig(cfg *rest.Config, renderer *templates.Renderer, opts Options) (*Client, error) {
	if cfg == nil {
		return nil, errors.New("jobs: a rest.Config is required")
	}
	opts = opts.withDefaults()
	cfg = rest.CopyConfig(cfg)
	cfg.QPS, cfg.Burst = opts.QPS, opts.Burst
	if cfg.UserAgent == "" {
		cfg.UserAgent = "flowforge-jobs-client"
	}
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("jobs: client for %s: %w", cfg.Host, err)
	}
	if opts.Server == "" {
		opts.Server = cfg.Host
	}
	return New(cs, renderer, opts)
}

// Namespace returns the namespace of the client's Jobs.
func (c *Client) Namespace() string { return c.opts.Namespace }

// Renderer returns the renderer Submit uses.
func (c *Client) Renderer() *templates.Renderer { return c.renderer }

// Submit validates and renders a request and creates its Job, and its task
// ConfigMap when the task is large (created first, so the pod never waits
// for it, then owned by the Job so it is deleted with it).
//
// Submit is idempotent: when a Job with this id exists and was rendered
// from the same normalized request (same request-hash annotation), it is
// returned with created=false. A Job with this id from another request is
// an error wrapping ErrConflict that says what differs. A request that
// does not validate is a *templates.ValidationError.
func (c *Client) Submit(ctx context.Context, req templates.Request) (*batchv1.Job, bool, error) {
	out, err := c.renderer.Render(req)
	if err != nil {
		return nil, false, err
	}
	job := out.Job.DeepCopy()
	job.Namespace = c.opts.Namespace
	what := fmt.Sprintf("create job %s in namespace %s", job.Name, job.Namespace)

	var ownConfigMap bool // this call created the ConfigMap
	if out.TaskConfigMap != nil {
		if ownConfigMap, err = c.ensureTaskConfigMap(ctx, out); err != nil {
			return nil, false, err
		}
	}
	var created *batchv1.Job
	err = c.call(ctx, what, func(ctx context.Context) error {
		var err error
		created, err = c.cs.BatchV1().Jobs(job.Namespace).Create(ctx, job, metav1.CreateOptions{})
		return err
	})
	if apierrors.IsAlreadyExists(err) {
		// The name is taken: by this request's earlier Submit, or by a Job
		// that conflict reports.
		var existing *batchv1.Job
		gerr := c.call(ctx, fmt.Sprintf("get job %s in namespace %s", job.Name, job.Namespace), func(ctx context.Context) error {
			var err error
			existing, err = c.cs.BatchV1().Jobs(job.Namespace).Get(ctx, job.Name, metav1.GetOptions{})
			return err
		})
		if gerr != nil {
			return nil, false, fmt.Errorf("%s: it already exists, and reading it failed: %w", what, gerr)
		}
		if cerr := conflict(existing, out); cerr != nil {
			return nil, false, cerr
		}
		if out.TaskConfigMap != nil {
			// An earlier Submit may have stopped before adopting it.
			if aerr := c.adoptTaskConfigMap(ctx, existing); aerr != nil {
				return existing, false, aerr
			}
		}
		return existing, false, nil
	}
	if err != nil {
		if ownConfigMap {
			c.deleteTaskConfigMap(ctx, out.TaskConfigMap.Name, "")
		}
		return nil, false, err
	}
	if out.TaskConfigMap != nil {
		if err := c.adoptTaskConfigMap(ctx, created); err != nil {
			return created, true, err
		}
	}
	return created, true, nil
}

// ensureTaskConfigMap creates the task ConfigMap, or accepts an existing one
// of the same request. A stale one of another request, left by a Submit
// that stopped before creating its Job, is replaced; if the Job exists, the
// Job's conflict check reports the conflict.
func (c *Client) ensureTaskConfigMap(ctx context.Context, out *templates.Rendered) (created bool, err error) {
	cm := out.TaskConfigMap.DeepCopy()
	cm.Namespace = c.opts.Namespace
	cms := c.cs.CoreV1().ConfigMaps(cm.Namespace)
	what := fmt.Sprintf("create task configmap %s in namespace %s", cm.Name, cm.Namespace)
	create := func() error {
		return c.call(ctx, what, func(ctx context.Context) error {
			_, err := cms.Create(ctx, cm, metav1.CreateOptions{})
			return err
		})
	}
	err = create()
	if err == nil {
		return true, nil
	}
	if !apierrors.IsAlreadyExists(err) {
		return false, err
	}
	var existing *corev1.ConfigMap
	if err := c.call(ctx, "get task configmap "+cm.Name, func(ctx context.Context) error {
		var err error
		existing, err = cms.Get(ctx, cm.Name, metav1.GetOptions{})
		return err
	}); err != nil {
		return false, err
	}
	if existing.Annotations[contract.AnnotationRequestHash] == out.Hash {
		return false, nil
	}
	if _, err := c.Get(ctx, out.Request.ID); err == nil || !errors.Is(err, ErrNotFound) {
		return false, err // nil: the Job exists, and its check reports the conflict
	}
	c.deleteTaskConfigMap(ctx, cm.Name, existing.UID)
	if err := create(); err != nil {
		return false, fmt.Errorf("replacing a stale task configmap: %w", err)
	}
	return true, nil
}

// adoptTaskConfigMap makes the Job the owner of its task ConfigMap, so that
// the garbage collector deletes it with the Job.
func (c *Client) adoptTaskConfigMap(ctx context.Context, job *batchv1.Job) error {
	name := contract.TaskConfigMapName(job.Labels[contract.LabelJobID])
	patch, err := json.Marshal(map[string]any{"metadata": map[string]any{"ownerReferences": []metav1.OwnerReference{{
		APIVersion: batchv1.SchemeGroupVersion.String(),
		Kind:       "Job",
		Name:       job.Name,
		UID:        job.UID,
	}}}})
	if err != nil {
		return fmt.Errorf("owner reference patch: %w", err)
	}
	return c.call(ctx, fmt.Sprintf("make job %s the owner of configmap %s", job.Name, name), func(ctx context.Context) error {
		_, err := c.cs.CoreV1().ConfigMaps(c.opts.Namespace).Patch(ctx, name, types.MergePatchType, patch, metav1.PatchOptions{})
		return err
	})
}

// deleteTaskConfigMap removes a ConfigMap this client created or found
// stale; failures are left to the garbage collector or the next Submit.
func (c *Client) deleteTaskConfigMap(ctx context.Context, name string, uid types.UID) {
	opts := metav1.DeleteOptions{}
	if uid != "" {
		opts.Preconditions = &metav1.Preconditions{UID: &uid}
	}
	_ = c.call(ctx, "delete configmap "+name, func(ctx context.Context) error {
		err := c.cs.CoreV1().ConfigMaps(c.opts.Namespace).Delete(ctx, name, opts)
		if apierrors.IsNotFound(err) {
			return nil
		}
		return err
	})
}

// conflict explains why an existing Job is not the one this request would
// create, or returns nil when it is.
func conflict(existing *batchv1.Job, out *templates.Rendered) error {
	want := out.Job
	if existing.Labels[contract.LabelJobID] == want.Labels[contract.LabelJobID] &&
		existing.Annotations[contract.AnnotationRequestHash] == out.Hash {
		return nil
	}
	var diffs []string
	switch {
	case existing.Labels[contract.LabelJobID] != want.Labels[contract.LabelJobID]:
		diffs = append(diffs, fmt.Sprintf("it has %s label %q", contract.LabelJobID, existing.Labels[contract.LabelJobID]))
	case existing.Annotations[contract.AnnotationRequestHash] == "":
		diffs = append(diffs, "it was not created from a FlowForge request (no request hash)")
	default:
		if a, b := existing.Labels[contract.LabelUserID], want.Labels[contract.LabelUserID]; a != b {
			diffs = append(diffs, fmt.Sprintf("user %q, not %q", a, b))
		}
		for _, key := range []string{contract.AnnotationRepository, contract.AnnotationBranch, contract.AnnotationTemplate, contract.AnnotationProfile, contract.AnnotationTimeout} {
			if a, b := existing.Annotations[key], want.Annotations[key]; a != b {
				diffs = append(diffs, fmt.Sprintf("%s %q, not %q", strings.TrimPrefix(key, "flowforge.io/"), a, b))
			}
		}
		if len(diffs) == 0 {
			diffs = append(diffs, "the task, env, node selector or pod annotations differ")
		}
	}
	return fmt.Errorf("job %s in namespace %s (created %s): %w: %s",
		existing.Name, existing.Namespace, existing.CreationTimestamp.UTC().Format(time.RFC3339), ErrConflict, strings.Join(diffs, "; "))
}

// Get returns the Job of a job id: the one Job in the namespace labelled
// app=flowforge with that job-id, whatever its name (any client may create
// FlowForge Jobs, named as it likes). None is an error that wraps
// ErrNotFound; several (created before job-ids were bound to one Job) is an
// error that wraps ErrAmbiguous and names them.
func (c *Client) Get(ctx context.Context, id string) (*batchv1.Job, error) {
	selector, err := JobIDSelector(id)
	if err != nil {
		return nil, err
	}
	var list *batchv1.JobList
	err = c.call(ctx, fmt.Sprintf("find job %q in namespace %s", id, c.opts.Namespace), func(ctx context.Context) error {
		var err error
		list, err = c.cs.BatchV1().Jobs(c.opts.Namespace).List(ctx, metav1.ListOptions{LabelSelector: selector})
		return err
	})
	if err != nil {
		return nil, err
	}
	return oneJob(id, c.opts.Namespace, list.Items)
}

// JobIDSelector selects the FlowForge Jobs (and pods) of a job id. A job id
// that is not a label value is an error: no Job can carry it.
func JobIDSelector(id string) (string, error) {
	if id == "" {
		return "", errors.New("a job id is required")
	}
	if errs := validation.IsValidLabelValue(id); len(errs) > 0 {
		return "", fmt.Errorf("%q is not a job id: %s", id, strings.Join(errs, "; "))
	}
	return labels.SelectorFromSet(labels.Set{contract.LabelApp: contract.AppName, contract.LabelJobID: id}).String(), nil
}

// oneJob returns the only Job of items, or the error for none or several.
func oneJob(id, namespace string, items []batchv1.Job) (*batchv1.Job, error) {
	switch len(items) {
	case 0:
		return nil, &NotFoundError{ID: id, Namespace: namespace, Cause: apierrors.NewNotFound(batchv1.Resource("jobs"), id)}
	case 1:
		return &items[0], nil
	}
	names := make([]string, 0, len(items))
	for _, j := range items {
		names = append(names, j.Name)
	}
	slices.Sort(names)
	return nil, fmt.Errorf("%w: job id %q names %d Jobs in namespace %s (%s); act on one with kubectl, or delete the extra ones",
		ErrAmbiguous, id, len(items), namespace, strings.Join(names, ", "))
}

// Cancel asks for a Job to be cancelled by writing the cancel annotations
// (who, why, when); the FlowForge controller acts on them. It is
// idempotent: a Job that already has a cancel request keeps the first one
// and is returned unchanged. A Job that already finished is returned with
// an error wrapping ErrFinished.
func (c *Client) Cancel(ctx context.Context, id, by, reason string) (*batchv1.Job, error) {
	if strings.TrimSpace(by) == "" {
		return nil, errors.New("cancel: who is cancelling (by) is required")
	}
	const maxConflicts = 5
	for conflicts := 0; ; conflicts++ {
		job, err := c.Get(ctx, id)
		if err != nil {
			return nil, err
		}
		if _, requested := job.Annotations[contract.AnnotationCancelRequestedAt]; requested {
			return job, nil
		}
		if st := contract.StatusOf(job); st.Phase.Terminal() {
			return job, fmt.Errorf("cancel job %s: %w (%s)", id, ErrFinished, st.Phase)
		}
		// The resourceVersion makes the patch fail with a conflict if the
		// Job changed since it was read, so a concurrent cancel request is
		// never overwritten: the loop reads it again and keeps it.
		patch, err := json.Marshal(map[string]any{"metadata": map[string]any{
			"resourceVersion": job.ResourceVersion,
			"annotations": map[string]string{
				contract.AnnotationCancelRequestedBy: by,
				contract.AnnotationCancelReason:      reason,
				contract.AnnotationCancelRequestedAt: c.opts.Clock.Now().UTC().Format(time.RFC3339),
			},
		}})
		if err != nil {
			return nil, fmt.Errorf("cancel patch: %w", err)
		}
		var patched *batchv1.Job
		err = c.call(ctx, fmt.Sprintf("cancel job %s", job.Name), func(ctx context.Context) error {
			var perr error
			patched, perr = c.cs.BatchV1().Jobs(c.opts.Namespace).Patch(ctx, job.Name, types.MergePatchType, patch, metav1.PatchOptions{})
			return perr
		})
		if apierrors.IsConflict(err) && conflicts < maxConflicts {
			continue
		}
		if err != nil {
			return nil, err
		}
		return patched, nil
	}
}

// Delete deletes a Job with the given propagation (default Background: the
// Job goes at once and the garbage collector deletes its pods). The export
// finalizer keeps it until the controller has exported its record. A Job
// that does not exist is an error wrapping ErrNotFound, unless an earlier
// attempt of this call deleted it.
func (c *Client) Delete(ctx context.Context, id string, propagation metav1.DeletionPropagation) error {
	if propagation == "" {
		propagation = metav1.DeletePropagationBackground
	}
	job, err := c.Get(ctx, id)
	if err != nil {
		return err
	}
	attempts := 0
	// The UID precondition deletes this Job, never a later one of the name.
	opts := metav1.DeleteOptions{PropagationPolicy: &propagation, Preconditions: metav1.NewUIDPreconditions(string(job.UID))}
	err = c.call(ctx, fmt.Sprintf("delete job %s in namespace %s", job.Name, c.opts.Namespace), func(ctx context.Context) error {
		attempts++
		err := c.cs.BatchV1().Jobs(c.opts.Namespace).Delete(ctx, job.Name, opts)
		if apierrors.IsNotFound(err) && attempts > 1 {
			return nil // an earlier attempt got through before failing
		}
		return err
	})
	if apierrors.IsNotFound(err) {
		return &NotFoundError{ID: id, Namespace: c.opts.Namespace, Cause: err}
	}
	return err
}
