package deploy

import (
	"context"
	"fmt"
	"os"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apiserver/pkg/admission"
	plugincel "k8s.io/apiserver/pkg/admission/plugin/cel"
	"k8s.io/apiserver/pkg/admission/plugin/webhook"
	"k8s.io/apiserver/pkg/admission/plugin/webhook/matchconditions"
	"k8s.io/apiserver/pkg/authentication/user"
	"k8s.io/apiserver/pkg/cel/environment"
	"sigs.k8s.io/yaml"
)

const namespaceWebhook = "namespaces.validate.flowforge.io"

// namespaceWebhookConfig returns the namespace-label webhook as deployed.
func namespaceWebhookConfig(t *testing.T) admissionregistrationv1.ValidatingWebhook {
	t.Helper()
	_, v, err := WebhookConfigurations()
	require.NoError(t, err)
	for _, w := range v.Webhooks {
		if w.Name == namespaceWebhook {
			return w
		}
	}
	require.FailNow(t, "no webhook "+namespaceWebhook)
	return admissionregistrationv1.ValidatingWebhook{}
}

// namespaceMatcher compiles the webhook's matchConditions with the API
// server's own code (k8s.io/apiserver, the version the pinned
// kube-apiserver is built from), as its webhook dispatcher does.
func namespaceMatcher(t *testing.T) matchconditions.Matcher {
	t.Helper()
	w := namespaceWebhookConfig(t)
	compiler := plugincel.NewConditionCompiler(environment.MustBaseEnvSet(environment.DefaultCompatibilityVersion()))
	return webhook.NewValidatingWebhookAccessor("uid", "flowforge-validating", &w).GetCompiledMatcher(compiler)
}

// match evaluates the matchConditions for a namespace request as the API
// server would: old is nil on CREATE, new is nil on DELETE.
func match(t *testing.T, m matchconditions.Matcher, op admission.Operation, subresource string, old, new *corev1.Namespace) matchconditions.MatchResult {
	t.Helper()
	var obj, oldObj runtime.Object
	if new != nil {
		obj = new
	}
	if old != nil {
		oldObj = old
	}
	gvk := corev1.SchemeGroupVersion.WithKind("Namespace")
	attrs := admission.NewAttributesRecord(obj, oldObj, gvk, "", "team-a", corev1.SchemeGroupVersion.WithResource("namespaces"), subresource, op, nil, false,
		&user.DefaultInfo{Name: "alice", Groups: []string{"system:authenticated"}})
	va := &admission.VersionedAttributes{Attributes: attrs, VersionedKind: gvk}
	if obj != nil {
		va.VersionedObject.Set(obj)
	}
	if oldObj != nil {
		va.VersionedOldObject.Set(oldObj)
	}
	return m.Match(context.Background(), va, nil, nil)
}

func ns(labels, annotations map[string]string) *corev1.Namespace {
	return &corev1.Namespace{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Namespace"},
		ObjectMeta: metav1.ObjectMeta{Name: "team-a", Labels: labels, Annotations: annotations},
	}
}

func labels(kv ...string) map[string]string {
	m := map[string]string{"kubernetes.io/metadata.name": "team-a"}
	for i := 0; i+1 < len(kv); i += 2 {
		m[kv[i]] = kv[i+1]
	}
	return m
}

// TestNamespaceWebhookMatchConditions proves that only a request that adds,
// changes or removes a flowforge.io/ label or annotation reaches the
// webhook, and that the expressions never fail (a failure would refuse the
// request: failurePolicy is Fail).
func TestNamespaceWebhookMatchConditions(t *testing.T) {
	m := namespaceMatcher(t)
	managed := ns(labels("flowforge.io/managed", "true", "team", "a"), map[string]string{"note": "x"})
	tests := []struct {
		name        string
		op          admission.Operation
		subresource string
		old, new    *corev1.Namespace
		want        bool
	}{
		{name: "create without flowforge keys", op: admission.Create, new: ns(labels("team", "a"), nil)},
		{name: "create without labels or annotations", op: admission.Create, new: ns(nil, nil)},
		{name: "create with empty maps", op: admission.Create, new: ns(map[string]string{}, map[string]string{})},
		{name: "create with the managed label", op: admission.Create, new: ns(labels("flowforge.io/managed", "true"), nil), want: true},
		{name: "create with an empty flowforge label", op: admission.Create, new: ns(labels("flowforge.io/seccomp", ""), nil), want: true},
		{name: "create with a flowforge annotation", op: admission.Create, new: ns(nil, map[string]string{"flowforge.io/note": "x"}), want: true},
		{name: "update changing nothing", op: admission.Update, old: managed, new: managed.DeepCopy()},
		{name: "update of other labels and annotations", op: admission.Update, old: managed,
			new: ns(labels("flowforge.io/managed", "true", "team", "b", "cost", "1"), map[string]string{"note": "y", "other": "z"})},
		{name: "update removing all other labels", op: admission.Update, old: managed, new: ns(map[string]string{"flowforge.io/managed": "true"}, nil)},
		{name: "look-alike prefixes are not ours", op: admission.Update, old: managed,
			new: ns(labels("flowforge.io/managed", "true", "team", "a", "x.flowforge.io/a", "1", "flowforge.iox/b", "1", "flowforge.io", "1"), map[string]string{"note": "x"})},
		{name: "update removing the managed label", op: admission.Update, old: managed, new: ns(labels("team", "a"), map[string]string{"note": "x"}), want: true},
		{name: "update removing every label", op: admission.Update, old: managed, new: ns(nil, map[string]string{"note": "x"}), want: true},
		{name: "update changing the managed value", op: admission.Update, old: managed, new: ns(labels("flowforge.io/managed", "false", "team", "a"), nil), want: true},
		{name: "update blanking the managed value", op: admission.Update, old: managed, new: ns(labels("flowforge.io/managed", "", "team", "a"), nil), want: true},
		{name: "update adding the seccomp label", op: admission.Update, old: managed,
			new: ns(labels("flowforge.io/managed", "true", "team", "a", "flowforge.io/seccomp", "runtime-default"), nil), want: true},
		{name: "update adding a label to a namespace without labels", op: admission.Update, old: ns(nil, nil), new: ns(labels("flowforge.io/managed", "true"), nil), want: true},
		{name: "update adding a flowforge annotation", op: admission.Update, old: managed,
			new: ns(labels("flowforge.io/managed", "true", "team", "a"), map[string]string{"note": "x", "flowforge.io/owner": "me"}), want: true},
		{name: "update changing a flowforge annotation", op: admission.Update, old: ns(nil, map[string]string{"flowforge.io/owner": "me"}),
			new: ns(nil, map[string]string{"flowforge.io/owner": "you"}), want: true},
		{name: "update removing every annotation", op: admission.Update, old: ns(nil, map[string]string{"flowforge.io/owner": "me"}), new: ns(nil, nil), want: true},
		{name: "status update removing the managed label", op: admission.Update, subresource: "status", old: managed, new: ns(labels("team", "a"), nil), want: true},
		{name: "finalize update keeping the labels", op: admission.Update, subresource: "finalize", old: managed, new: managed.DeepCopy()},
		{name: "delete", op: admission.Delete, old: managed},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := match(t, m, tc.op, tc.subresource, tc.old, tc.new)
			require.NoError(t, got.Error, "an expression that fails refuses the request")
			assert.Equal(t, tc.want, got.Matches)
		})
	}
}

// TestNamespaceWebhookMatchConditionsCompileForANewConfiguration compiles
// the expressions as the API server validates a new webhook configuration.
func TestNamespaceWebhookMatchConditionsCompileForANewConfiguration(t *testing.T) {
	w := namespaceWebhookConfig(t)
	require.NotEmpty(t, w.MatchConditions)
	compiler := plugincel.NewCompiler(environment.MustBaseEnvSet(environment.DefaultCompatibilityVersion()))
	for _, c := range w.MatchConditions {
		result := compiler.CompileCELExpression(&matchconditions.MatchCondition{Name: c.Name, Expression: c.Expression},
			plugincel.OptionalVariableDeclarations{HasAuthorizer: true}, environment.NewExpressions)
		require.Nil(t, result.Error, c.Name)
		require.NotNil(t, result.Program, c.Name)
	}
}

// TestNamespaceWebhookCoversEveryKeyThePolicyReads: a namespace label the
// policy data makes meaningful must reach the webhook when it changes, or
// the guard would never see it.
func TestNamespaceWebhookCoversEveryKeyThePolicyReads(t *testing.T) {
	data, err := os.ReadFile("../policies/data.yaml")
	require.NoError(t, err)
	var doc struct {
		Flowforge struct {
			Config struct {
				ManagedNamespaceLabel struct {
					Key string `json:"key"`
				} `json:"managedNamespaceLabel"`
				Seccomp struct {
					NamespaceOverrides []struct {
						NamespaceSelector map[string]string `json:"namespaceSelector"`
					} `json:"namespaceOverrides"`
				} `json:"seccomp"`
			} `json:"config"`
		} `json:"flowforge"`
	}
	require.NoError(t, yaml.Unmarshal(data, &doc))
	keys := []string{doc.Flowforge.Config.ManagedNamespaceLabel.Key}
	for _, o := range doc.Flowforge.Config.Seccomp.NamespaceOverrides {
		for k := range o.NamespaceSelector {
			keys = append(keys, k)
		}
	}
	require.GreaterOrEqual(t, len(keys), 2)
	m := namespaceMatcher(t)
	for _, key := range keys {
		require.NotEmpty(t, key)
		old := ns(labels("team", "a"), nil)
		got := match(t, m, admission.Update, "", old, ns(labels("team", "a", key, "x"), nil))
		require.NoError(t, got.Error)
		assert.True(t, got.Matches, "adding %s reaches the webhook", key)
		got = match(t, m, admission.Update, "", ns(labels("team", "a", key, "x"), nil), old)
		require.NoError(t, got.Error)
		assert.True(t, got.Matches, "removing %s reaches the webhook", key)
	}
}

// TestNamespaceWebhookMatchConditionsStayWithinTheCostBudget: a namespace
// with many labels and annotations is still evaluated, not refused for
// exceeding the API server's CEL cost budget for matchConditions.
func TestNamespaceWebhookMatchConditionsStayWithinTheCostBudget(t *testing.T) {
	m := namespaceMatcher(t)
	const n = 5000
	many := map[string]string{}
	for i := range n {
		many[fmt.Sprintf("example.com/label-%d", i)] = "v"
	}
	old := ns(many, many)
	changed := old.DeepCopy()
	changed.Labels["example.com/label-0"] = "w"
	got := match(t, m, admission.Update, "", old, changed)
	require.NoError(t, got.Error)
	assert.False(t, got.Matches)
	changed.Labels["flowforge.io/managed"] = "true"
	got = match(t, m, admission.Update, "", old, changed)
	require.NoError(t, got.Error)
	assert.True(t, got.Matches)
}

// TestNamespaceWebhookRegistration pins the choices that keep the namespace
// webhook from locking a cluster out (docs/operations.md).
func TestNamespaceWebhookRegistration(t *testing.T) {
	w := namespaceWebhookConfig(t)
	require.Len(t, w.Rules, 1)
	r := w.Rules[0]
	assert.Equal(t, []admissionregistrationv1.OperationType{admissionregistrationv1.Create, admissionregistrationv1.Update}, r.Operations, "never DELETE")
	assert.Equal(t, []string{""}, r.APIGroups)
	assert.ElementsMatch(t, []string{"namespaces", "namespaces/status", "namespaces/finalize"}, r.Resources)
	assert.Equal(t, admissionregistrationv1.ClusterScope, *r.Scope)
	assert.Equal(t, "/validate-v1-namespace", *w.ClientConfig.Service.Path)
	assert.Equal(t, admissionregistrationv1.Fail, *w.FailurePolicy)
	assert.Equal(t, admissionregistrationv1.SideEffectClassNone, *w.SideEffects)
	assert.LessOrEqual(t, *w.TimeoutSeconds, int32(10))
	assert.Nil(t, w.ObjectSelector, "matchConditions, not an objectSelector, decide what reaches it")
	require.Len(t, w.MatchConditions, 1)
	assertExcludesSystemNamespaces(t, w.Name, w.NamespaceSelector, *w.FailurePolicy)
}
