package deploy

import (
	"context"
	"encoding/json"
	"os"
	"reflect"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	admissionv1 "k8s.io/api/admission/v1"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	authenticationv1 "k8s.io/api/authentication/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apiserver/pkg/admission"
	plugincel "k8s.io/apiserver/pkg/admission/plugin/cel"
	"k8s.io/apiserver/pkg/admission/plugin/webhook"
	"k8s.io/apiserver/pkg/admission/plugin/webhook/matchconditions"
	"k8s.io/apiserver/pkg/authentication/user"
	"k8s.io/apiserver/pkg/cel/environment"
	"k8s.io/utils/clock"
	"sigs.k8s.io/yaml"

	"github.com/flowforge/flowforge/mutate"
	"github.com/flowforge/flowforge/policies"
	"github.com/flowforge/flowforge/policies/engine"
	"github.com/flowforge/flowforge/test/worstcase"
)

// workloadWebhooks are the validating webhooks of Jobs and Pods whose
// matchConditions skip the UPDATEs that change none of labels,
// annotations and spec.
var workloadWebhooks = []string{
	"jobs.validate.flowforge.io", "pods.validate.flowforge.io",
	"managed-jobs.validate.flowforge.io", "managed-pods.validate.flowforge.io",
}

// loadServedPolicy loads the embedded policy once for the package's tests
// (a load runs the policy's own tests: seconds).
var loadServedPolicy = sync.OnceValues(func() (*engine.Engine, error) {
	return engine.New(context.Background(), engine.Options{})
})

func servedPolicy(t *testing.T) *engine.Engine {
	t.Helper()
	eng, err := loadServedPolicy()
	require.NoError(t, err)
	return eng
}

func validatingMatcher(t *testing.T, name string) matchconditions.Matcher {
	t.Helper()
	_, v, err := WebhookConfigurations()
	require.NoError(t, err)
	for i := range v.Webhooks {
		if v.Webhooks[i].Name == name {
			require.NotEmpty(t, v.Webhooks[i].MatchConditions, name)
			compiler := plugincel.NewConditionCompiler(environment.MustBaseEnvSet(environment.DefaultCompatibilityVersion()))
			return webhook.NewValidatingWebhookAccessor("uid", "flowforge-validating", &v.Webhooks[i]).GetCompiledMatcher(compiler)
		}
	}
	require.FailNow(t, "no webhook "+name)
	return nil
}

// matchWorkload evaluates a webhook's matchConditions as the API server
// does for a Job or Pod request (old is nil on CREATE).
func matchWorkload(t *testing.T, m matchconditions.Matcher, op admission.Operation, subresource string, old, obj map[string]any) matchconditions.MatchResult {
	t.Helper()
	u := &unstructured.Unstructured{Object: obj}
	gvk := u.GroupVersionKind()
	resource := schema.GroupVersionResource{Group: gvk.Group, Version: gvk.Version, Resource: "jobs"}
	if gvk.Kind == "Pod" {
		resource.Resource = "pods"
	}
	var oldObj runtime.Object
	if old != nil {
		oldObj = &unstructured.Unstructured{Object: old}
	}
	attrs := admission.NewAttributesRecord(u, oldObj, gvk, "agents", u.GetName(), resource, subresource, op, nil, false,
		&user.DefaultInfo{Name: "mallory", Groups: []string{"system:authenticated"}})
	va := &admission.VersionedAttributes{Attributes: attrs, VersionedKind: gvk}
	va.VersionedObject.Set(u)
	if oldObj != nil {
		va.VersionedOldObject.Set(oldObj)
	}
	return m.Match(context.Background(), va, nil, nil)
}

// hardenedJob is the first legitimate Job, hardened by the mutating
// handler as the webhook does it.
func hardenedJob(t *testing.T, eng *engine.Engine) map[string]any {
	t.Helper()
	data, err := os.ReadFile("../validate/testdata/legitimate-jobs.yaml")
	require.NoError(t, err)
	var jobs []struct {
		Job json.RawMessage `json:"job"`
	}
	require.NoError(t, yaml.Unmarshal(data, &jobs))
	require.NotEmpty(t, jobs)
	ns := func(context.Context, string) (map[string]string, error) { return nil, nil }
	raw, _, err := mutate.Review(context.Background(), &mutate.Handler{Policy: eng, Namespaces: ns, Clock: clock.RealClock{}}, "agents", jobs[0].Job)
	require.NoError(t, err)
	var job map[string]any
	require.NoError(t, json.Unmarshal(raw, &job))
	return job
}

// podOf is the pod the Job controller makes of a Job.
func podOf(job map[string]any) map[string]any {
	tmpl := job["spec"].(map[string]any)["template"].(map[string]any)
	meta := runtime.DeepCopyJSONValue(tmpl["metadata"]).(map[string]any)
	meta["name"] = "claude-job-l01-abcde"
	meta["ownerReferences"] = []any{map[string]any{"apiVersion": "batch/v1", "kind": "Job", "name": "claude-job-l01", "uid": "u1", "controller": true}}
	meta["finalizers"] = []any{"batch.kubernetes.io/job-tracking"}
	return map[string]any{"apiVersion": "v1", "kind": "Pod", "metadata": meta, "spec": runtime.DeepCopyJSONValue(tmpl["spec"])}
}

func edit(obj map[string]any, f func(u *unstructured.Unstructured)) map[string]any {
	u := &unstructured.Unstructured{Object: runtime.DeepCopyJSON(obj)}
	f(u)
	return u.Object
}

// validateUpdate asks the served policy what it says of an UPDATE.
func validateUpdate(t *testing.T, eng *engine.Engine, old, obj map[string]any, username string) *engine.Validation {
	t.Helper()
	oldRaw, err := json.Marshal(old)
	require.NoError(t, err)
	raw, err := json.Marshal(obj)
	require.NoError(t, err)
	u := &unstructured.Unstructured{Object: obj}
	gvk := u.GroupVersionKind()
	resource := "jobs"
	if gvk.Kind == "Pod" {
		resource = "pods"
	}
	req := &admissionv1.AdmissionRequest{
		UID:       "u",
		Kind:      metaGVK(gvk),
		Resource:  metaGVR(gvk, resource),
		Name:      u.GetName(),
		Namespace: "agents",
		Operation: admissionv1.Update,
		UserInfo:  authenticationv1.UserInfo{Username: username, Groups: []string{"system:authenticated"}},
		Object:    runtime.RawExtension{Raw: raw},
		OldObject: runtime.RawExtension{Raw: oldRaw},
	}
	v, err := eng.Validate(context.Background(), engine.Input{Request: req, NamespaceLabels: map[string]string{"flowforge.io/managed": "true"}})
	require.NoError(t, err)
	return v
}

// TestWorkloadWebhooksSkipOnlyWhatThePolicyCannotDeny proves that the
// matchConditions of the Job and Pod validating webhooks never skip a
// request the policy would answer differently: every UPDATE they skip is
// one the served policy admits without a warning whoever sends it, and
// the UPDATEs the policy denies are all sent. Every CREATE is sent.
func TestWorkloadWebhooksSkipOnlyWhatThePolicyCannotDeny(t *testing.T) {
	eng := servedPolicy(t)
	job := hardenedJob(t, eng)
	pod := podOf(job)
	unlabelled := edit(job, func(u *unstructured.Unstructured) { u.SetLabels(nil) })

	type update struct {
		name string
		f    func(u *unstructured.Unstructured)
		send bool
	}
	finalizers := func(u *unstructured.Unstructured) {
		u.SetFinalizers(append(u.GetFinalizers(), "flowforge.io/log-export"))
	}
	updates := []update{
		{name: "adds a finalizer", f: finalizers},
		{name: "removes every finalizer", f: func(u *unstructured.Unstructured) { u.SetFinalizers(nil) }},
		{name: "changes owner references", f: func(u *unstructured.Unstructured) { u.SetOwnerReferences(nil) }},
		{name: "changes resourceVersion and generation", f: func(u *unstructured.Unstructured) {
			u.SetResourceVersion("42")
			u.SetGeneration(7)
		}},
		{name: "changes status", f: func(u *unstructured.Unstructured) {
			require.NoError(t, unstructured.SetNestedField(u.Object, int64(1), "status", "active"))
		}},
		{name: "changes nothing", f: func(*unstructured.Unstructured) {}},
		{name: "adds a label", f: func(u *unstructured.Unstructured) { addKey(u, true, "team", "a") }, send: true},
		{name: "removes the app label", f: func(u *unstructured.Unstructured) { delKey(u, true, "app") }, send: true},
		{name: "changes the job-id label", f: func(u *unstructured.Unstructured) { addKey(u, true, "flowforge.io/job-id", "other") }, send: true},
		{name: "adds an annotation", f: func(u *unstructured.Unstructured) { addKey(u, false, "flowforge.io/cancel-requested-at", "now") }, send: true},
		{name: "removes every annotation", f: func(u *unstructured.Unstructured) { u.SetAnnotations(nil) }, send: true},
		{name: "changes the spec", f: func(u *unstructured.Unstructured) {
			require.NoError(t, unstructured.SetNestedField(u.Object, int64(999999), "spec", "activeDeadlineSeconds"))
		}, send: true},
		{name: "removes the spec", f: func(u *unstructured.Unstructured) { delete(u.Object, "spec") }, send: true},
	}
	objects := map[string]map[string]any{"hardened Job": job, "its Pod": pod, "unlabelled Job": unlabelled}
	deniedSent := 0
	for _, name := range workloadWebhooks {
		m := validatingMatcher(t, name)
		for what, old := range objects {
			t.Run(name+"/"+what+"/create", func(t *testing.T) {
				got := matchWorkload(t, m, admission.Create, "", nil, old)
				require.NoError(t, got.Error)
				assert.True(t, got.Matches, "every CREATE is sent")
			})
			for _, u := range updates {
				t.Run(name+"/"+what+"/"+u.name, func(t *testing.T) {
					obj := edit(old, u.f)
					got := matchWorkload(t, m, admission.Update, "", old, obj)
					require.NoError(t, got.Error, "an expression that fails refuses the request")
					// An edit that leaves this object as it was (removing a
					// label it lacks) is never sent.
					assert.Equal(t, u.send && !reflect.DeepEqual(old, obj), got.Matches)
					if got.Matches {
						for _, user := range []string{"mallory", "system:serviceaccount:flowforge-system:flowforge-controller"} {
							if v := validateUpdate(t, eng, old, obj, user); len(v.Deny) > 0 {
								deniedSent++
								break
							}
						}
						return
					}
					for _, user := range []string{"mallory", "system:serviceaccount:flowforge-system:flowforge-controller"} {
						v := validateUpdate(t, eng, old, obj, user)
						assert.Empty(t, v.Deny, "a skipped UPDATE by %s would have been denied", user)
						assert.Empty(t, v.Warn, "a skipped UPDATE by %s would have been warned about", user)
					}
				})
			}
		}
	}
	assert.Positive(t, deniedSent, "some of the UPDATEs that are sent are denied: they must reach the webhook")
}

// TestWorkloadWebhooksSendSubresourceChanges: resizing a pod and adding an
// ephemeral container change the spec and are sent.
func TestWorkloadWebhooksSendSubresourceChanges(t *testing.T) {
	eng := servedPolicy(t)
	pod := podOf(hardenedJob(t, eng))
	m := validatingMatcher(t, "pods.validate.flowforge.io")
	resized := edit(pod, func(u *unstructured.Unstructured) {
		containers, _, _ := unstructured.NestedSlice(u.Object, "spec", "containers")
		require.NoError(t, unstructured.SetNestedField(containers[0].(map[string]any), "8", "resources", "limits", "cpu"))
		require.NoError(t, unstructured.SetNestedSlice(u.Object, containers, "spec", "containers"))
	})
	debug := edit(pod, func(u *unstructured.Unstructured) {
		require.NoError(t, unstructured.SetNestedSlice(u.Object, []any{map[string]any{"name": "debug", "image": "busybox"}}, "spec", "ephemeralContainers"))
	})
	for sub, obj := range map[string]map[string]any{"resize": resized, "ephemeralcontainers": debug} {
		got := matchWorkload(t, m, admission.Update, sub, pod, obj)
		require.NoError(t, got.Error, sub)
		assert.True(t, got.Matches, sub)
		got = matchWorkload(t, m, admission.Update, sub, pod, pod)
		require.NoError(t, got.Error, sub)
		assert.False(t, got.Matches, "a %s request that changes nothing has nothing to deny", sub)
	}
}

// TestWorkloadWebhookMatchConditionsStayWithinTheCostBudget: the largest
// objects a client can send (test/worstcase, up to the API server's 3 MiB)
// are evaluated, not refused for exceeding the API server's CEL cost
// budget, on CREATE and on an UPDATE that compares the whole spec.
func TestWorkloadWebhookMatchConditionsStayWithinTheCostBudget(t *testing.T) {
	eng := servedPolicy(t)
	objects := map[string][]byte{
		"at the ceilings":     worstcase.AtLimits(policies.Ceilings()),
		"at the limits":       worstcase.AtLimits(eng.Current().Limits()),
		"100,000 env entries": worstcase.EnvFlood(100000),
		"5,000 containers":    worstcase.ManyContainers(5000),
	}
	for _, name := range workloadWebhooks {
		m := validatingMatcher(t, name)
		for what, raw := range objects {
			t.Run(name+"/"+what, func(t *testing.T) {
				var obj map[string]any
				require.NoError(t, json.Unmarshal(raw, &obj))
				got := matchWorkload(t, m, admission.Create, "", nil, obj)
				require.NoError(t, got.Error)
				assert.True(t, got.Matches)
				got = matchWorkload(t, m, admission.Update, "", obj, edit(obj, func(u *unstructured.Unstructured) { u.SetFinalizers([]string{"x"}) }))
				require.NoError(t, got.Error)
				assert.False(t, got.Matches)
			})
		}
	}
}

// TestWorkloadWebhookMatchConditionsAreTheSame: the four webhooks share
// one condition, so a fix to one cannot miss the others.
func TestWorkloadWebhookMatchConditionsAreTheSame(t *testing.T) {
	_, v, err := WebhookConfigurations()
	require.NoError(t, err)
	var first []admissionregistrationv1.MatchCondition
	for _, w := range v.Webhooks {
		for _, name := range workloadWebhooks {
			if w.Name != name {
				continue
			}
			require.Len(t, w.MatchConditions, 1, name)
			if first == nil {
				first = w.MatchConditions
			}
			assert.Equal(t, first, w.MatchConditions, name)
		}
	}
	require.NotNil(t, first)
	compiler := plugincel.NewCompiler(environment.MustBaseEnvSet(environment.DefaultCompatibilityVersion()))
	result := compiler.CompileCELExpression(&matchconditions.MatchCondition{Name: first[0].Name, Expression: first[0].Expression},
		plugincel.OptionalVariableDeclarations{HasAuthorizer: true}, environment.NewExpressions)
	require.Nil(t, result.Error)
}

func addKey(u *unstructured.Unstructured, label bool, k, v string) {
	m := u.GetAnnotations()
	if label {
		m = u.GetLabels()
	}
	if m == nil {
		m = map[string]string{}
	}
	m[k] = v
	if label {
		u.SetLabels(m)
		return
	}
	u.SetAnnotations(m)
}

func delKey(u *unstructured.Unstructured, label bool, k string) {
	if label {
		m := u.GetLabels()
		delete(m, k)
		u.SetLabels(m)
		return
	}
	m := u.GetAnnotations()
	delete(m, k)
	u.SetAnnotations(m)
}

func metaGVK(gvk schema.GroupVersionKind) metav1.GroupVersionKind {
	return metav1.GroupVersionKind{Group: gvk.Group, Version: gvk.Version, Kind: gvk.Kind}
}

func metaGVR(gvk schema.GroupVersionKind, resource string) metav1.GroupVersionResource {
	return metav1.GroupVersionResource{Group: gvk.Group, Version: gvk.Version, Resource: resource}
}
