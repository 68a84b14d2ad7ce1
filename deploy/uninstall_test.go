package deploy

import (
	"context"
	"os"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	dynamicfake "k8s.io/client-go/dynamic/fake"
	k8stesting "k8s.io/client-go/testing"
)

func obj(apiVersion, kind, ns, name string, finalizers ...string) *unstructured.Unstructured {
	u := &unstructured.Unstructured{}
	u.SetAPIVersion(apiVersion)
	u.SetKind(kind)
	u.SetNamespace(ns)
	u.SetName(name)
	u.SetFinalizers(finalizers)
	return u
}

type uninstallEnv struct {
	dyn    *dynamicfake.FakeDynamicClient
	mapper meta.RESTMapper
	order  []string
}

func newUninstallEnv(t *testing.T, objs ...*unstructured.Unstructured) *uninstallEnv {
	t.Helper()
	gvrs := map[schema.GroupVersionResource]string{
		{Group: "admissionregistration.k8s.io", Version: "v1", Resource: "mutatingwebhookconfigurations"}:   "MutatingWebhookConfigurationList",
		{Group: "admissionregistration.k8s.io", Version: "v1", Resource: "validatingwebhookconfigurations"}: "ValidatingWebhookConfigurationList",
		{Group: "apps", Version: "v1", Resource: "deployments"}:                                             "DeploymentList",
		{Version: "v1", Resource: "namespaces"}:                                                             "NamespaceList",
		{Version: "v1", Resource: "pods"}:                                                                   "PodList",
		{Group: "batch", Version: "v1", Resource: "jobs"}:                                                   "JobList",
		{Group: "node.k8s.io", Version: "v1", Resource: "runtimeclasses"}:                                   "RuntimeClassList",
	}
	rt := make([]runtime.Object, 0, len(objs))
	for _, o := range objs {
		rt = append(rt, o)
	}
	env := &uninstallEnv{dyn: dynamicfake.NewSimpleDynamicClientWithCustomListKinds(runtime.NewScheme(), gvrs, rt...)}
	m := meta.NewDefaultRESTMapper(nil)
	for gvr, list := range gvrs {
		scope := meta.RESTScopeNamespace
		switch gvr.Resource {
		case "mutatingwebhookconfigurations", "validatingwebhookconfigurations", "namespaces", "runtimeclasses":
			scope = meta.RESTScopeRoot
		}
		m.AddSpecific(gvr.GroupVersion().WithKind(list[:len(list)-len("List")]), gvr, gvr.GroupVersion().WithResource(gvr.Resource[:len(gvr.Resource)-1]), scope)
	}
	env.mapper = m
	env.dyn.PrependReactor("*", "*", func(a k8stesting.Action) (bool, runtime.Object, error) {
		switch a.GetVerb() {
		case "delete", "patch":
			name := ""
			if n, ok := a.(interface{ GetName() string }); ok {
				name = n.GetName()
			}
			env.order = append(env.order, a.GetVerb()+" "+a.GetResource().Resource+" "+name)
		}
		return false, nil, nil
	})
	return env
}

func TestUninstallRemovesWebhooksFirstReleasesFinalizersAndDeletesTheRest(t *testing.T) {
	finalizers := []string{"flowforge.io/export", "flowforge.io/log-export"}
	install := []*unstructured.Unstructured{
		obj("v1", "Namespace", "", "flowforge-system"),
		obj("node.k8s.io/v1", "RuntimeClass", "", "gvisor"),
		obj("apps/v1", "Deployment", "flowforge-system", "flowforge-webhook"),
		obj("admissionregistration.k8s.io/v1", "MutatingWebhookConfiguration", "", "flowforge-mutating"),
		obj("admissionregistration.k8s.io/v1", "ValidatingWebhookConfiguration", "", "flowforge-validating"),
		obj("monitoring.coreos.com/v1", "ServiceMonitor", "flowforge-system", "flowforge"), // not served here
	}
	var existing []*unstructured.Unstructured
	for _, o := range install {
		if o.GetKind() != "ServiceMonitor" {
			existing = append(existing, o.DeepCopy())
		}
	}
	existing = append(existing,
		obj("batch/v1", "Job", "agents", "held", "flowforge.io/export", "other.io/keep"),
		obj("batch/v1", "Job", "agents", "free"),
		obj("v1", "Pod", "agents", "held-abc", "flowforge.io/log-export"),
	)
	env := newUninstallEnv(t, existing...)
	var logs []string
	err := Uninstall(context.Background(), env.dyn, env.mapper, install, UninstallOptions{
		Finalizers: finalizers, Poll: time.Millisecond, Timeout: time.Second,
		Logf: func(f string, a ...any) { logs = append(logs, f) },
	})
	require.NoError(t, err)
	require.Equal(t, []string{
		"delete mutatingwebhookconfigurations flowforge-mutating",
		"delete validatingwebhookconfigurations flowforge-validating",
		"patch jobs held",
		"patch pods held-abc",
		"delete deployments flowforge-webhook",
		"delete runtimeclasses gvisor",
		"delete namespaces flowforge-system",
	}, env.order)
	job, err := env.dyn.Resource(jobsResource).Namespace("agents").Get(context.Background(), "held", metav1.GetOptions{})
	require.NoError(t, err)
	require.Equal(t, []string{"other.io/keep"}, job.GetFinalizers(), "only FlowForge's finalizers are released")
	pod, err := env.dyn.Resource(podsResource).Namespace("agents").Get(context.Background(), "held-abc", metav1.GetOptions{})
	require.NoError(t, err)
	require.Empty(t, pod.GetFinalizers())
	require.True(t, slices.ContainsFunc(logs, func(l string) bool { return l == "skip %s %s: the cluster does not serve %s" }))
}

func TestUninstallWaitsForTheDrainBeforeReleasing(t *testing.T) {
	env := newUninstallEnv(t, obj("batch/v1", "Job", "agents", "held", "flowforge.io/export"))
	// The controller exports meanwhile: the finalizer goes on its own.
	go func() {
		time.Sleep(20 * time.Millisecond)
		u, err := env.dyn.Resource(jobsResource).Namespace("agents").Get(context.Background(), "held", metav1.GetOptions{})
		if err == nil {
			u.SetFinalizers(nil)
			_, _ = env.dyn.Resource(jobsResource).Namespace("agents").Update(context.Background(), u, metav1.UpdateOptions{})
		}
	}()
	require.NoError(t, Uninstall(context.Background(), env.dyn, env.mapper, nil, UninstallOptions{
		Finalizers: []string{"flowforge.io/export"}, Drain: 10 * time.Second, Poll: 5 * time.Millisecond,
	}))
	require.Empty(t, env.order, "nothing to release: the drain emptied it")
}

func TestExportFinalizersComeFromThePolicyData(t *testing.T) {
	data, err := os.ReadFile("../policies/data.yaml")
	require.NoError(t, err)
	got, err := ExportFinalizers(data)
	require.NoError(t, err)
	require.Equal(t, []string{"flowforge.io/export", "flowforge.io/log-export"}, got)
	_, err = ExportFinalizers([]byte("flowforge: {config: {}}"))
	require.ErrorContains(t, err, "no export finalizers")
	_, err = ExportFinalizers([]byte("flowforge: ["))
	require.Error(t, err)
}

func TestDecodeUnstructured(t *testing.T) {
	objs, err := DecodeUnstructured([]byte("# a comment\n---\napiVersion: v1\nkind: Namespace\nmetadata: {name: a}\n---\n---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: b, namespace: a}\n"))
	require.NoError(t, err)
	require.Len(t, objs, 2)
	require.Equal(t, "ConfigMap", objs[1].GetKind())
	_, err = DecodeUnstructured([]byte("kind: [\n"))
	require.Error(t, err)
}
