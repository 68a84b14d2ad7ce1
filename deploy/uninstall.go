package deploy

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/dynamic"
	"sigs.k8s.io/yaml"
)

// UninstallOptions configure Uninstall.
type UninstallOptions struct {
	// Finalizers are FlowForge's export finalizers (the policy data's
	// export.jobFinalizer and export.podFinalizer), released on every Job
	// and Pod that still carries them.
	Finalizers []string
	// Drain is how long the controller may go on exporting (and removing
	// the finalizers itself) before they are released. 0: release at once.
	Drain time.Duration
	// Poll is the interval of every wait. Default 1s.
	Poll time.Duration
	// Timeout bounds the wait for the deleted objects to be gone. Default 5m.
	Timeout time.Duration
	// Logf receives progress lines. Default: discard.
	Logf func(format string, args ...any)
}

// Order of the steps, by kind. What calls FlowForge (webhooks, aggregated
// APIs) goes first, so that nothing in the cluster waits on a server that
// is going away: a webhook with failurePolicy Fail and no backend would
// refuse every labelled Job, even the update that releases its finalizer,
// and an unavailable APIService blocks namespace deletion.
var firstKinds = []string{"MutatingWebhookConfiguration", "ValidatingWebhookConfiguration", "APIService"}

// Uninstall removes the objects of an install (a rendered overlay) without
// wedging the cluster or leaving anything Terminating:
//  1. the webhook configurations and APIServices;
//  2. after opts.Drain, FlowForge's export finalizers on every Job and Pod;
//  3. every other object (the namespaced ones, then the cluster-scoped
//     ones, Namespaces last), waiting until each is gone.
//
// Objects already gone, and kinds the cluster does not serve, are skipped.
func Uninstall(ctx context.Context, dyn dynamic.Interface, mapper meta.RESTMapper, objs []*unstructured.Unstructured, opts UninstallOptions) error {
	if opts.Poll <= 0 {
		opts.Poll = time.Second
	}
	if opts.Timeout <= 0 {
		opts.Timeout = 5 * time.Minute
	}
	if opts.Logf == nil {
		opts.Logf = func(string, ...any) {}
	}
	var first, namespaced, cluster, namespaces []*unstructured.Unstructured
	for _, o := range objs {
		switch {
		case slices.Contains(firstKinds, o.GetKind()):
			first = append(first, o)
		case o.GetKind() == "Namespace":
			namespaces = append(namespaces, o)
		case o.GetNamespace() != "":
			namespaced = append(namespaced, o)
		default:
			cluster = append(cluster, o)
		}
	}
	if err := deleteAll(ctx, dyn, mapper, first, opts); err != nil {
		return err
	}
	if err := releaseFinalizers(ctx, dyn, opts); err != nil {
		return err
	}
	for _, group := range [][]*unstructured.Unstructured{namespaced, cluster, namespaces} {
		if err := deleteAll(ctx, dyn, mapper, group, opts); err != nil {
			return err
		}
	}
	return nil
}

var (
	jobsResource = schema.GroupVersionResource{Group: "batch", Version: "v1", Resource: "jobs"}
	podsResource = schema.GroupVersionResource{Version: "v1", Resource: "pods"}
)

// releaseFinalizers waits up to opts.Drain for the controller to export
// what carries a finalizer, then removes the finalizers that remain.
func releaseFinalizers(ctx context.Context, dyn dynamic.Interface, opts UninstallOptions) error {
	if len(opts.Finalizers) == 0 {
		return nil
	}
	holding := func() ([]unstructured.Unstructured, error) {
		var out []unstructured.Unstructured
		for _, gvr := range []schema.GroupVersionResource{jobsResource, podsResource} {
			list, err := dyn.Resource(gvr).List(ctx, metav1.ListOptions{})
			if err != nil {
				return nil, fmt.Errorf("uninstall: list %s: %w", gvr.Resource, err)
			}
			for _, o := range list.Items {
				if slices.ContainsFunc(o.GetFinalizers(), func(f string) bool { return slices.Contains(opts.Finalizers, f) }) {
					out = append(out, o)
				}
			}
		}
		return out, nil
	}
	left, err := holding()
	if err != nil {
		return err
	}
	if len(left) > 0 && opts.Drain > 0 {
		opts.Logf("%d Jobs and Pods await their export; draining for up to %s", len(left), opts.Drain)
		_ = wait.PollUntilContextTimeout(ctx, opts.Poll, opts.Drain, true, func(context.Context) (bool, error) {
			left, err = holding()
			return err == nil && len(left) == 0, err
		})
		if err != nil {
			return err
		}
	}
	for _, o := range left {
		keep := slices.DeleteFunc(slices.Clone(o.GetFinalizers()), func(f string) bool { return slices.Contains(opts.Finalizers, f) })
		gvr := podsResource
		if o.GetKind() == "Job" {
			gvr = jobsResource
		}
		// A JSON patch with a test: the finalizers are replaced only if
		// nobody changed them meanwhile.
		patch, err := finalizerPatch(o.GetFinalizers(), keep)
		if err != nil {
			return err
		}
		_, err = dyn.Resource(gvr).Namespace(o.GetNamespace()).Patch(ctx, o.GetName(), types.JSONPatchType, patch, metav1.PatchOptions{})
		if err != nil && !apierrors.IsNotFound(err) {
			return fmt.Errorf("uninstall: release the finalizers of %s %s/%s: %w", o.GetKind(), o.GetNamespace(), o.GetName(), err)
		}
		opts.Logf("released the export finalizers of %s %s/%s (its export did not finish)", o.GetKind(), o.GetNamespace(), o.GetName())
	}
	return nil
}

func finalizerPatch(old, keep []string) ([]byte, error) {
	ops := []map[string]any{
		{"op": "test", "path": "/metadata/finalizers", "value": old},
		{"op": "replace", "path": "/metadata/finalizers", "value": keep},
	}
	out, err := json.Marshal(ops)
	if err != nil {
		return nil, fmt.Errorf("uninstall: %w", err)
	}
	return out, nil
}

// deleteAll deletes objs (foreground) and waits until they are gone.
func deleteAll(ctx context.Context, dyn dynamic.Interface, mapper meta.RESTMapper, objs []*unstructured.Unstructured, opts UninstallOptions) error {
	type target struct {
		ri   dynamic.ResourceInterface
		name string
		desc string
	}
	var targets []target
	for _, o := range objs {
		gvk := o.GroupVersionKind()
		m, err := mapper.RESTMapping(gvk.GroupKind(), gvk.Version)
		if meta.IsNoMatchError(err) {
			opts.Logf("skip %s %s: the cluster does not serve %s", gvk.Kind, o.GetName(), gvk.GroupVersion())
			continue
		}
		if err != nil {
			return fmt.Errorf("uninstall: %s: %w", gvk, err)
		}
		var ri dynamic.ResourceInterface = dyn.Resource(m.Resource)
		if m.Scope.Name() == meta.RESTScopeNameNamespace {
			ri = dyn.Resource(m.Resource).Namespace(o.GetNamespace())
		}
		desc := gvk.Kind + " " + o.GetName()
		policy := metav1.DeletePropagationForeground
		err = ri.Delete(ctx, o.GetName(), metav1.DeleteOptions{PropagationPolicy: &policy})
		if apierrors.IsNotFound(err) {
			continue
		}
		if err != nil {
			return fmt.Errorf("uninstall: delete %s: %w", desc, err)
		}
		opts.Logf("deleted %s", desc)
		targets = append(targets, target{ri, o.GetName(), desc})
	}
	var errs []error
	for _, t := range targets {
		err := wait.PollUntilContextTimeout(ctx, opts.Poll, opts.Timeout, true, func(ctx context.Context) (bool, error) {
			_, err := t.ri.Get(ctx, t.name, metav1.GetOptions{})
			if apierrors.IsNotFound(err) {
				return true, nil
			}
			return false, nil
		})
		if err != nil {
			errs = append(errs, fmt.Errorf("uninstall: %s is not gone: %w", t.desc, err))
		}
	}
	return errors.Join(errs...)
}

// ExportFinalizers returns the export finalizers the policy data names
// (flowforge.config.export.jobFinalizer and podFinalizer): pass
// policies/data.yaml, or the data of the policy that served the install.
func ExportFinalizers(policyData []byte) ([]string, error) {
	var doc struct {
		Flowforge struct {
			Config struct {
				Export struct {
					JobFinalizer string `json:"jobFinalizer"`
					PodFinalizer string `json:"podFinalizer"`
				} `json:"export"`
			} `json:"config"`
		} `json:"flowforge"`
	}
	if err := yaml.Unmarshal(policyData, &doc); err != nil {
		return nil, fmt.Errorf("uninstall: policy data: %w", err)
	}
	e := doc.Flowforge.Config.Export
	if e.JobFinalizer == "" || e.PodFinalizer == "" {
		return nil, errors.New("uninstall: the policy data names no export finalizers (flowforge.config.export)")
	}
	return []string{e.JobFinalizer, e.PodFinalizer}, nil
}

// DecodeUnstructured decodes every object of a multi-document YAML
// manifest (a rendered install).
func DecodeUnstructured(data []byte) ([]*unstructured.Unstructured, error) {
	r := utilyaml.NewYAMLReader(bufioReader(data))
	var out []*unstructured.Unstructured
	for {
		doc, err := r.Read()
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return nil, fmt.Errorf("deploy: read manifest: %w", err)
		}
		js, err := utilyaml.ToJSON(doc)
		if err != nil {
			return nil, fmt.Errorf("deploy: read manifest: %w", err)
		}
		if len(bytes.TrimSpace(js)) == 0 || string(js) == "null" {
			continue
		}
		u := &unstructured.Unstructured{}
		if err := u.UnmarshalJSON(js); err != nil {
			return nil, fmt.Errorf("deploy: decode manifest: %w", err)
		}
		out = append(out, u)
	}
}
