package install

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/discovery/cached/memory"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/restmapper"
	"k8s.io/utils/ptr"

	"github.com/flowforge/flowforge/deploy"
	"github.com/flowforge/flowforge/deploy/render"
	"github.com/flowforge/flowforge/test/localcluster"
)

// The kinds whose CRDs cannot be had here: cert-manager publishes its CRDs
// only as Helm templates. Their objects are skipped by kind, and logged.
var withoutCRD = map[string]bool{"Issuer": true, "Certificate": true}

func root(t *testing.T) string {
	t.Helper()
	r, err := localcluster.ModuleRoot()
	require.NoError(t, err)
	return r
}

func decode(t *testing.T, data []byte) []*unstructured.Unstructured {
	t.Helper()
	var out []*unstructured.Unstructured
	r := utilyaml.NewYAMLReader(bufioReader(data))
	for {
		doc, err := r.Read()
		if errors.Is(err, io.EOF) {
			return out
		}
		require.NoError(t, err)
		js, err := utilyaml.ToJSON(doc)
		require.NoError(t, err)
		if len(bytes.TrimSpace(js)) == 0 || string(js) == "null" {
			continue
		}
		u := &unstructured.Unstructured{}
		require.NoError(t, u.UnmarshalJSON(js))
		out = append(out, u)
	}
}

var crdsOnce sync.Once

// installCRDs creates the vendored upstream CRDs and waits until they are
// served.
func installCRDs(t *testing.T) {
	t.Helper()
	crdsOnce.Do(func() {
		ctx := context.Background()
		dyn, err := dynamic.NewForConfig(testCluster.RESTConfig)
		require.NoError(t, err)
		files, err := filepath.Glob(filepath.Join(root(t), "deploy", "crds", "*.yaml"))
		require.NoError(t, err)
		require.Len(t, files, 3)
		gvr := apiextensionsv1.SchemeGroupVersion.WithResource("customresourcedefinitions")
		var names []string
		for _, f := range files {
			data, err := os.ReadFile(f)
			require.NoError(t, err)
			for _, u := range decode(t, data) {
				_, err := dyn.Resource(gvr).Apply(ctx, u.GetName(), u, metav1.ApplyOptions{FieldManager: "flowforge-install-test", Force: true})
				require.NoError(t, err, f)
				names = append(names, u.GetName())
			}
		}
		for _, n := range names {
			require.Eventually(t, func() bool {
				u, err := dyn.Resource(gvr).Get(ctx, n, metav1.GetOptions{})
				if err != nil {
					return false
				}
				conds, _, _ := unstructured.NestedSlice(u.Object, "status", "conditions")
				for _, c := range conds {
					m := c.(map[string]any)
					if m["type"] == "Established" && m["status"] == "True" {
						return true
					}
				}
				return false
			}, time.Minute, 200*time.Millisecond, "CRD %s established", n)
		}
	})
}

type applier struct {
	dyn    dynamic.Interface
	mapper *restmapper.DeferredDiscoveryRESTMapper
}

func newApplier(t *testing.T) *applier {
	t.Helper()
	dc, err := discovery.NewDiscoveryClientForConfig(testCluster.RESTConfig)
	require.NoError(t, err)
	dyn, err := dynamic.NewForConfig(testCluster.RESTConfig)
	require.NoError(t, err)
	return &applier{dyn: dyn, mapper: restmapper.NewDeferredDiscoveryRESTMapper(memory.NewMemCacheClient(dc))}
}

func (a *applier) resource(u *unstructured.Unstructured) (dynamic.ResourceInterface, error) {
	gvk := u.GroupVersionKind()
	m, err := a.mapper.RESTMapping(gvk.GroupKind(), gvk.Version)
	if err != nil {
		return nil, err
	}
	if m.Scope.Name() == meta.RESTScopeNameNamespace {
		return a.dyn.Resource(m.Resource).Namespace(u.GetNamespace()), nil
	}
	return a.dyn.Resource(m.Resource), nil
}

// apply server-side applies u (dry run if dryRun).
func (a *applier) apply(ctx context.Context, u *unstructured.Unstructured, dryRun bool) error {
	ri, err := a.resource(u)
	if err != nil {
		return err
	}
	opts := metav1.ApplyOptions{FieldManager: "flowforge-install", Force: true}
	if dryRun {
		opts.DryRun = []string{metav1.DryRunAll}
	}
	_, err = ri.Apply(ctx, u.GetName(), u, opts)
	return err
}

// applyOverlay applies every object of the rendered overlay: namespaces
// first. Webhook configurations are applied with dryRunWebhooks as a
// server-side dry run (nothing serves them in this test, and with
// failurePolicy Fail they would refuse labelled objects).
func applyOverlay(t *testing.T, a *applier, objs []*unstructured.Unstructured, dryRunWebhooks bool) int {
	t.Helper()
	ctx := t.Context()
	slices.SortStableFunc(objs, func(x, y *unstructured.Unstructured) int {
		rank := func(u *unstructured.Unstructured) int {
			if u.GetKind() == "Namespace" {
				return 0
			}
			return 1
		}
		return rank(x) - rank(y)
	})
	applied := 0
	for _, u := range objs {
		if withoutCRD[u.GetKind()] {
			t.Logf("%s %s: no CRD here (cert-manager ships its CRDs as Helm templates)", u.GetKind(), u.GetName())
			continue
		}
		webhook := strings.HasSuffix(u.GetKind(), "WebhookConfiguration")
		err := a.apply(ctx, u, webhook && dryRunWebhooks)
		require.NoError(t, err, "%s %s/%s", u.GetKind(), u.GetNamespace(), u.GetName())
		applied++
	}
	return applied
}

func TestEveryOverlayAppliesServerSide(t *testing.T) {
	installCRDs(t)
	a := newApplier(t)
	r := root(t)
	overlays, err := render.Overlays(filepath.Join(r, "deploy"), filepath.Join(r, "overlays"))
	require.NoError(t, err)
	require.GreaterOrEqual(t, len(overlays), 5)
	for _, ov := range overlays {
		t.Run(ov.Name, func(t *testing.T) {
			out, err := render.Render(ov.Dir, nil)
			require.NoError(t, err)
			objs := decode(t, out)
			kinds := map[string]int{}
			for _, u := range objs {
				kinds[u.GetKind()]++
			}
			require.Equal(t, 1, kinds["ServiceMonitor"], "the metrics of both programs are scraped")
			require.Equal(t, 1, kinds["PrometheusRule"])
			applied := applyOverlay(t, a, objs, true)
			require.Greater(t, applied, 20)
			if ov.Name == "runsc" {
				sp := &unstructured.Unstructured{}
				sp.SetGroupVersionKind(schema.GroupVersionKind{Group: "security-profiles-operator.x-k8s.io", Version: "v1", Kind: "SeccompProfile"})
				ri, err := a.resource(sp)
				require.NoError(t, err)
				got, err := ri.Get(t.Context(), "claude-worker", metav1.GetOptions{})
				require.NoError(t, err)
				names, _, _ := unstructured.NestedSlice(got.Object, "spec", "syscalls")
				require.NotEmpty(t, names, "the SeccompProfile kept its syscalls through the CRD's schema")
			}
		})
	}
}

// The CRDs really validate: what their schemas forbid is refused, so the
// acceptance above means something.
func TestTheUpstreamSchemasRefuseWhatTheyForbid(t *testing.T) {
	installCRDs(t)
	a := newApplier(t)
	ctx := t.Context()
	require.NoError(t, a.apply(ctx, &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "v1", "kind": "Namespace", "metadata": map[string]any{"name": "flowforge-system"},
	}}, false))
	for name, tc := range map[string]struct {
		obj   map[string]any
		field string
	}{
		"a rule without expr": {field: "expr", obj: map[string]any{
			"apiVersion": "monitoring.coreos.com/v1", "kind": "PrometheusRule",
			"metadata": map[string]any{"name": "bad", "namespace": "flowforge-system"},
			"spec":     map[string]any{"groups": []any{map[string]any{"name": "g", "rules": []any{map[string]any{"alert": "A"}}}}},
		}},
		"an endpoint port that is not a string": {field: "port", obj: map[string]any{
			"apiVersion": "monitoring.coreos.com/v1", "kind": "ServiceMonitor",
			"metadata": map[string]any{"name": "bad", "namespace": "flowforge-system"},
			"spec":     map[string]any{"selector": map[string]any{}, "endpoints": []any{map[string]any{"port": 8080}}},
		}},
		"an unknown seccomp action": {field: "defaultAction", obj: map[string]any{
			"apiVersion": "security-profiles-operator.x-k8s.io/v1", "kind": "SeccompProfile",
			"metadata": map[string]any{"name": "bad"},
			"spec":     map[string]any{"defaultAction": "SCMP_ACT_MAYBE"},
		}},
	} {
		t.Run(name, func(t *testing.T) {
			err := a.apply(ctx, &unstructured.Unstructured{Object: tc.obj}, true)
			require.Error(t, err)
			require.Contains(t, err.Error(), tc.field, "the refusal names the field")
		})
	}
}

// TestUninstallLeavesNothingBehind installs deploy/ for real, with agent
// Jobs held by FlowForge's export finalizers and no controller to export
// them, deletes the Jobs (they stay Terminating), and uninstalls.
func TestUninstallLeavesNothingBehind(t *testing.T) {
	installCRDs(t)
	ctx := t.Context()
	a := newApplier(t)
	cs, err := testCluster.Clientset()
	require.NoError(t, err)
	finalizers := []string{"flowforge.io/export", "flowforge.io/log-export"}

	// Agent Jobs as the webhook leaves them: the Job and its pods carry
	// the export finalizers.
	ns := "agents-uninstall"
	require.NoError(t, localcluster.CreateNamespace(ctx, cs, ns, nil))
	require.NoError(t, localcluster.WaitForServiceAccount(ctx, cs, ns))
	var jobs []string
	for i := range 2 {
		job := &batchv1.Job{
			ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("agent-%d", i), Namespace: ns,
				Labels: map[string]string{"app": "flowforge"}, Finalizers: finalizers[:1]},
			Spec: batchv1.JobSpec{
				BackoffLimit: ptr.To[int32](0),
				Template: corev1.PodTemplateSpec{
					ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": "flowforge"}, Finalizers: finalizers[1:]},
					Spec: corev1.PodSpec{
						RestartPolicy: corev1.RestartPolicyNever,
						Containers:    []corev1.Container{{Name: "agent", Image: "ghcr.io/flowforge/claude-worker:1.0.0"}},
					},
				},
			},
		}
		_, err := cs.BatchV1().Jobs(ns).Create(ctx, job, metav1.CreateOptions{})
		require.NoError(t, err)
		jobs = append(jobs, job.Name)
	}
	require.Eventually(t, func() bool {
		pods, err := cs.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{})
		return err == nil && len(pods.Items) == 2 && slices.Contains(pods.Items[0].Finalizers, finalizers[1])
	}, time.Minute, 250*time.Millisecond, "the Jobs' pods exist, with the finalizer")

	// The install, for real: its webhooks have no backend, as when the
	// webhook's pods are gone first.
	out, err := render.Render(filepath.Join(root(t), "deploy"), nil)
	require.NoError(t, err)
	objs := decode(t, out)
	applyOverlay(t, a, objs, false)
	// The cluster is wedged for labelled objects until the webhooks go:
	// even releasing a finalizer is refused.
	_, err = cs.BatchV1().Jobs(ns).Patch(ctx, jobs[0], types.MergePatchType, []byte(`{"metadata":{"labels":{"touched":"yes"}}}`), metav1.PatchOptions{})
	require.Error(t, err, "a labelled Job cannot change while the webhooks have no backend")
	require.Contains(t, err.Error(), "failed calling webhook")

	// A user deletes the Jobs: held by their finalizer, they stay.
	for _, j := range jobs {
		require.NoError(t, cs.BatchV1().Jobs(ns).Delete(ctx, j, metav1.DeleteOptions{PropagationPolicy: ptr.To(metav1.DeletePropagationBackground)}))
	}
	j, err := cs.BatchV1().Jobs(ns).Get(ctx, jobs[0], metav1.GetOptions{})
	require.NoError(t, err)
	require.NotNil(t, j.DeletionTimestamp, "Terminating")

	require.NoError(t, deploy.Uninstall(ctx, a.dyn, a.mapper, objs, deploy.UninstallOptions{
		Finalizers: finalizers, Poll: 200 * time.Millisecond, Timeout: 2 * time.Minute, Logf: t.Logf,
	}))

	// Nothing of the install is left, and nothing Terminating.
	for _, u := range objs {
		if withoutCRD[u.GetKind()] {
			continue
		}
		ri, err := a.resource(u)
		require.NoError(t, err)
		_, err = ri.Get(ctx, u.GetName(), metav1.GetOptions{})
		require.True(t, apierrors.IsNotFound(err), "%s %s/%s is gone (%v)", u.GetKind(), u.GetNamespace(), u.GetName(), err)
	}
	require.Eventually(t, func() bool {
		js, err1 := cs.BatchV1().Jobs(ns).List(ctx, metav1.ListOptions{})
		pods, err2 := cs.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{})
		if err1 != nil || err2 != nil {
			return false
		}
		// The pods of a deleted Job go with it (the garbage collector);
		// none may be kept by a FlowForge finalizer.
		for _, p := range pods.Items {
			if slices.ContainsFunc(p.Finalizers, func(f string) bool { return slices.Contains(finalizers, f) }) {
				return false
			}
		}
		return len(js.Items) == 0
	}, 2*time.Minute, 250*time.Millisecond, "the deleted Jobs are gone and no pod keeps an export finalizer")
	// The namespace of the agents is usable again: a labelled Job is admitted.
	_, err = cs.BatchV1().Jobs(ns).Create(ctx, &batchv1.Job{
		ObjectMeta: metav1.ObjectMeta{Name: "after", Namespace: ns, Labels: map[string]string{"app": "flowforge"}},
		Spec: batchv1.JobSpec{Template: corev1.PodTemplateSpec{Spec: corev1.PodSpec{
			RestartPolicy: corev1.RestartPolicyNever,
			Containers:    []corev1.Container{{Name: "agent", Image: "busybox:1"}},
		}}},
	}, metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}})
	require.NoError(t, err, "no webhook of the uninstalled FlowForge is called")
}

func bufioReader(data []byte) *bufio.Reader { return bufio.NewReader(bytes.NewReader(data)) }
