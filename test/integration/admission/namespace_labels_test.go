package admission

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/rand"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/flowforge/flowforge/deploy"
	"github.com/flowforge/flowforge/test/framework"
	"github.com/flowforge/flowforge/test/localcluster"
)

// The identities of these tests: a namespace owner with the right to
// update their namespace, and a platform admin in the group that
// namespaceGuard in policies/data.yaml names.
const (
	nsOwnerUser  = "alice"
	nsAdminUser  = "bob"
	nsAdminGroup = "flowforge:platform-admins"
	nsWebhook    = "namespaces.validate.flowforge.io"
)

// namespaceOwners grants the owner and the admin what a self-service
// namespace tool grants a namespace owner: get, update and patch of the
// namespace (and its status), and create of namespaces. Nothing else.
func namespaceOwners(t *testing.T, ns string) {
	t.Helper()
	ctx := context.Background()
	name := "flowforge-test-owner-" + ns
	role := &rbacv1.ClusterRole{ObjectMeta: metav1.ObjectMeta{Name: name}, Rules: []rbacv1.PolicyRule{
		{APIGroups: []string{""}, Resources: []string{"namespaces", "namespaces/status"}, ResourceNames: []string{ns}, Verbs: []string{"get", "update", "patch"}},
		{APIGroups: []string{""}, Resources: []string{"namespaces"}, Verbs: []string{"create"}},
	}}
	binding := &rbacv1.ClusterRoleBinding{ObjectMeta: metav1.ObjectMeta{Name: name},
		RoleRef: rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: name},
		Subjects: []rbacv1.Subject{
			{APIGroup: rbacv1.GroupName, Kind: rbacv1.UserKind, Name: nsOwnerUser},
			{APIGroup: rbacv1.GroupName, Kind: rbacv1.UserKind, Name: nsAdminUser},
		}}
	_, err := clientset.RbacV1().ClusterRoles().Create(ctx, role, metav1.CreateOptions{})
	require.NoError(t, err)
	_, err = clientset.RbacV1().ClusterRoleBindings().Create(ctx, binding, metav1.CreateOptions{})
	require.NoError(t, err)
	t.Cleanup(func() {
		_ = clientset.RbacV1().ClusterRoleBindings().Delete(context.Background(), name, metav1.DeleteOptions{})
		_ = clientset.RbacV1().ClusterRoles().Delete(context.Background(), name, metav1.DeleteOptions{})
	})
	// RBAC is cached by the API server's authorizer: wait until it applies.
	owner := impersonate(t, nsOwnerUser)
	require.NoError(t, wait.PollUntilContextTimeout(ctx, 50*time.Millisecond, framework.DefaultTimeout, true, func(ctx context.Context) (bool, error) {
		_, err := owner.CoreV1().Namespaces().Get(ctx, ns, metav1.GetOptions{})
		return err == nil, nil
	}))
}

// impersonate returns a clientset that acts as user in groups.
func impersonate(t *testing.T, user string, groups ...string) kubernetes.Interface {
	t.Helper()
	cfg := rest.CopyConfig(testCluster.RESTConfig)
	cfg.Impersonate = rest.ImpersonationConfig{UserName: user, Groups: groups}
	cs, err := kubernetes.NewForConfig(cfg)
	require.NoError(t, err)
	return cs
}

// kubectl runs bin/kubectl with the cluster's admin kubeconfig and args
// (--as and --as-group impersonate), and returns its combined output.
func kubectl(t *testing.T, args ...string) (string, error) {
	t.Helper()
	bin, err := localcluster.DefaultBinDir()
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), framework.DefaultTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, filepath.Join(bin, "kubectl"), append([]string{"--kubeconfig", testCluster.KubeconfigPath}, args...)...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err = cmd.Run()
	return out.String(), err
}

func namespaceLabels(t *testing.T, ns string) (labels, annotations map[string]string) {
	t.Helper()
	got, err := clientset.CoreV1().Namespaces().Get(context.Background(), ns, metav1.GetOptions{})
	require.NoError(t, err)
	return got.Labels, got.Annotations
}

// TestNamespaceOwnerCannotChangeFlowForgeLabels: a namespace owner who may
// update their namespace still cannot take it out of FlowForge's hands or
// relax its seccomp profile; a platform admin can.
func TestNamespaceOwnerCannotChangeFlowForgeLabels(t *testing.T) {
	ns := framework.Namespace(t, clientset, "owned", map[string]string{"flowforge.io/managed": "true", "team": "a"})
	namespaceOwners(t, ns)
	asOwner := []string{"--as", nsOwnerUser}
	asAdmin := []string{"--as", nsAdminUser, "--as-group", nsAdminGroup}

	refusals := []struct {
		name string
		args []string
		key  string
	}{
		{name: "remove the managed label", args: []string{"label", "namespace", ns, "flowforge.io/managed-"}, key: "labels[flowforge.io/managed]"},
		{name: "change the managed label", args: []string{"label", "namespace", ns, "flowforge.io/managed=false", "--overwrite"}, key: "labels[flowforge.io/managed]"},
		{name: "add the seccomp label", args: []string{"label", "namespace", ns, "flowforge.io/seccomp=runtime-default"}, key: "labels[flowforge.io/seccomp]"},
		{name: "add a flowforge.io annotation", args: []string{"annotate", "namespace", ns, "flowforge.io/note=mine"}, key: "annotations[flowforge.io/note]"},
	}
	for _, tc := range refusals {
		t.Run("the owner cannot "+tc.name, func(t *testing.T) {
			out, err := kubectl(t, append(tc.args, asOwner...)...)
			require.Error(t, err, out)
			for _, want := range []string{"Forbidden", nsWebhook, "metadata." + tc.key, "the group", nsAdminGroup, `user "alice" may not`} {
				assert.Contains(t, out, want)
			}
			labels, annotations := namespaceLabels(t, ns)
			assert.Equal(t, "true", labels["flowforge.io/managed"])
			assert.NotContains(t, labels, "flowforge.io/seccomp")
			assert.NotContains(t, annotations, "flowforge.io/note")
		})
	}

	t.Run("the owner cannot remove the managed label through the status subresource", func(t *testing.T) {
		owner := impersonate(t, nsOwnerUser)
		got, err := owner.CoreV1().Namespaces().Get(context.Background(), ns, metav1.GetOptions{})
		require.NoError(t, err)
		delete(got.Labels, "flowforge.io/managed")
		_, err = owner.CoreV1().Namespaces().UpdateStatus(context.Background(), got, metav1.UpdateOptions{})
		require.Error(t, err)
		assert.True(t, apierrors.IsForbidden(err), "%v", err)
		assert.Contains(t, err.Error(), nsWebhook)
		labels, _ := namespaceLabels(t, ns)
		assert.Equal(t, "true", labels["flowforge.io/managed"])
	})

	t.Run("the owner cannot create a namespace with the managed label", func(t *testing.T) {
		owner := impersonate(t, nsOwnerUser)
		_, err := owner.CoreV1().Namespaces().Create(context.Background(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{
			Name: "owned-new-" + rand.String(5), Labels: map[string]string{"flowforge.io/managed": "true"},
		}}, metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}})
		require.Error(t, err)
		assert.Contains(t, err.Error(), "metadata.labels[flowforge.io/managed]")
		assert.Contains(t, err.Error(), nsAdminGroup)
	})

	t.Run("the owner may change other labels and annotations", func(t *testing.T) {
		out, err := kubectl(t, append([]string{"label", "namespace", ns, "team=b", "cost-center=42", "--overwrite"}, asOwner...)...)
		require.NoError(t, err, out)
		out, err = kubectl(t, append([]string{"annotate", "namespace", ns, "note=hello"}, asOwner...)...)
		require.NoError(t, err, out)
		labels, annotations := namespaceLabels(t, ns)
		assert.Equal(t, "b", labels["team"])
		assert.Equal(t, "hello", annotations["note"])
	})

	t.Run("an admin in the named group can", func(t *testing.T) {
		out, err := kubectl(t, append([]string{"label", "namespace", ns, "flowforge.io/seccomp=runtime-default"}, asAdmin...)...)
		require.NoError(t, err, out)
		labels, _ := namespaceLabels(t, ns)
		assert.Equal(t, "runtime-default", labels["flowforge.io/seccomp"])

		out, err = kubectl(t, append([]string{"label", "namespace", ns, "flowforge.io/managed-", "flowforge.io/seccomp-"}, asAdmin...)...)
		require.NoError(t, err, out)
		labels, _ = namespaceLabels(t, ns)
		assert.NotContains(t, labels, "flowforge.io/managed")
		assert.NotContains(t, labels, "flowforge.io/seccomp")

		out, err = kubectl(t, append([]string{"label", "namespace", ns, "flowforge.io/managed=true"}, asAdmin...)...)
		require.NoError(t, err, out)
	})

	t.Run("the same admin without the group cannot", func(t *testing.T) {
		out, err := kubectl(t, "label", "namespace", ns, "flowforge.io/managed-", "--as", nsAdminUser)
		require.Error(t, err, out)
		assert.Contains(t, out, `user "bob" may not`)
	})
}

// TestUnrelatedNamespaceChangesNeverReachTheWebhook measures, in the
// webhook's own metrics, that matchConditions keep every namespace change
// that does not touch a flowforge.io/ key away from the webhook, and that a
// change that does touch one reaches it. Not parallel: no other test's
// namespace requests run meanwhile.
func TestUnrelatedNamespaceChangesNeverReachTheWebhook(t *testing.T) {
	ns := framework.Namespace(t, clientset, "quiet", map[string]string{"flowforge.io/managed": "true", "team": "a"})
	namespaceOwners(t, ns)
	ctx := context.Background()
	asOwner := []string{"--as", nsOwnerUser}

	// FlowForge's histogram counts a request before the webhook answers it;
	// controller-runtime's counter just after, so it is polled for below.
	handled := func() float64 {
		return sumSamples(t, "flowforge_admission_duration_seconds_count", `webhook="validate-namespace"`)
	}
	served := func() float64 {
		return sumSamples(t, "controller_runtime_webhook_requests_total", `webhook="/validate-v1-namespace"`)
	}
	handled0, served0 := handled(), served()

	for _, args := range [][]string{
		{"label", "namespace", ns, "team=b", "--overwrite"},
		{"label", "namespace", ns, "extra=1"},
		{"label", "namespace", ns, "extra-"},
		{"annotate", "namespace", ns, "note=hello"},
		{"annotate", "namespace", ns, "x.flowforge.io/look-alike=1"},
	} {
		out, err := kubectl(t, append(args, asOwner...)...)
		require.NoError(t, err, out)
	}
	_, err := clientset.CoreV1().Namespaces().Update(ctx, mustGetNamespace(t, ns), metav1.UpdateOptions{})
	require.NoError(t, err, "an update that changes nothing")
	assert.Equal(t, handled0, handled(), "no unrelated change reached the webhook")

	// A flowforge.io/ change reaches it (and is refused): exactly one request.
	out, err := kubectl(t, append([]string{"label", "namespace", ns, "flowforge.io/managed-"}, asOwner...)...)
	require.Error(t, err, out)
	assert.Equal(t, handled0+1, handled(), "the flowforge.io/ change reached the webhook")
	require.NoError(t, wait.PollUntilContextTimeout(ctx, 20*time.Millisecond, framework.DefaultTimeout, true, func(context.Context) (bool, error) {
		return served() >= served0+1, nil
	}))
	assert.Equal(t, served0+1, served(), "controller-runtime counted the one request and no other")
}

func mustGetNamespace(t *testing.T, name string) *corev1.Namespace {
	t.Helper()
	got, err := clientset.CoreV1().Namespaces().Get(context.Background(), name, metav1.GetOptions{})
	require.NoError(t, err)
	return got
}

// sumSamples scrapes the webhook's metrics and sums every sample of the
// metric whose labels contain label (0 if there is none yet).
func sumSamples(t *testing.T, metric, label string) float64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, hook.MetricsURL, nil)
	require.NoError(t, err)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close() //nolint:errcheck // read-only
	require.Equal(t, http.StatusOK, resp.StatusCode)
	var body bytes.Buffer
	_, err = body.ReadFrom(resp.Body)
	require.NoError(t, err)
	sum := 0.0
	for _, line := range strings.Split(body.String(), "\n") {
		if !strings.HasPrefix(line, metric+"{") || !strings.Contains(line, label) {
			continue
		}
		fields := strings.Fields(line)
		v, err := strconv.ParseFloat(fields[len(fields)-1], 64)
		require.NoError(t, err, fmt.Sprintf("sample %q", line))
		sum += v
	}
	return sum
}

// TestNamespaceWebhookDownBlocksOnlyFlowForgeLabelChanges registers a copy
// of the deployed namespace webhook (same rules, matchConditions and
// failurePolicy Fail) pointed at a port nobody listens on, limited by one
// more condition to this test's namespaces, and shows what
// docs/operations.md promises when the webhook is down: only changes to
// flowforge.io/ keys are refused; every other namespace operation proceeds,
// even for an identity namespaceGuard allows.
func TestNamespaceWebhookDownBlocksOnlyFlowForgeLabelChanges(t *testing.T) {
	ctx := context.Background()
	prefix := "down-" + rand.String(5)
	ns := framework.Namespace(t, clientset, prefix, map[string]string{"flowforge.io/managed": "true"})

	_, deployed, err := deploy.WebhookConfigurations()
	require.NoError(t, err)
	var down *admissionregistrationv1.ValidatingWebhook
	for i := range deployed.Webhooks {
		if deployed.Webhooks[i].Name == nsWebhook {
			down = deployed.Webhooks[i].DeepCopy()
		}
	}
	require.NotNil(t, down, "deploy/ registers %s", nsWebhook)
	ports, err := localcluster.FreePorts(1)
	require.NoError(t, err)
	url := fmt.Sprintf("https://127.0.0.1:%d%s", ports[0], *down.ClientConfig.Service.Path)
	down.Name = "namespaces-down.validate.flowforge.io"
	down.ClientConfig = admissionregistrationv1.WebhookClientConfig{URL: &url}
	down.MatchConditions = append(down.MatchConditions, admissionregistrationv1.MatchCondition{
		Name: "this-test-only", Expression: fmt.Sprintf("object != null && object.metadata.name.startsWith('%s')", prefix),
	})
	cfg := &admissionregistrationv1.ValidatingWebhookConfiguration{
		ObjectMeta: metav1.ObjectMeta{Name: "flowforge-test-" + prefix},
		Webhooks:   []admissionregistrationv1.ValidatingWebhook{*down},
	}
	_, err = clientset.AdmissionregistrationV1().ValidatingWebhookConfigurations().Create(ctx, cfg, metav1.CreateOptions{})
	require.NoError(t, err)
	t.Cleanup(func() {
		_ = clientset.AdmissionregistrationV1().ValidatingWebhookConfigurations().Delete(context.Background(), cfg.Name, metav1.DeleteOptions{})
	})

	// The API server picks the configuration up asynchronously; a dry-run
	// label change shows when it is in force.
	unlabel := func(opts metav1.UpdateOptions) error {
		got := mustGetNamespace(t, ns)
		delete(got.Labels, "flowforge.io/managed")
		_, err := clientset.CoreV1().Namespaces().Update(ctx, got, opts)
		return err
	}
	require.NoError(t, wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, framework.DefaultTimeout, true, func(context.Context) (bool, error) {
		err := unlabel(metav1.UpdateOptions{DryRun: []string{metav1.DryRunAll}})
		return err != nil && strings.Contains(err.Error(), "failed calling webhook"), nil
	}))

	t.Run("changes to flowforge.io/ keys are refused, even for an admin", func(t *testing.T) {
		err := unlabel(metav1.UpdateOptions{})
		require.Error(t, err)
		assert.Contains(t, err.Error(), `failed calling webhook "namespaces-down.validate.flowforge.io"`)
		_, err = clientset.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{
			Name: prefix + "-managed", Labels: map[string]string{"flowforge.io/managed": "true"},
		}}, metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}})
		require.Error(t, err)
		assert.Contains(t, err.Error(), "failed calling webhook")
		labels, _ := namespaceLabels(t, ns)
		assert.Equal(t, "true", labels["flowforge.io/managed"])
	})

	t.Run("every other namespace operation proceeds", func(t *testing.T) {
		for _, args := range [][]string{
			{"label", "namespace", ns, "team=b"},
			{"annotate", "namespace", ns, "note=hello"},
			{"label", "namespace", ns, "x.flowforge.io/look-alike=1"},
		} {
			out, err := kubectl(t, args...)
			require.NoError(t, err, out)
		}
		plain, err := clientset.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{
			Name: prefix + "-plain", Labels: map[string]string{"team": "c"},
		}}, metav1.CreateOptions{})
		require.NoError(t, err, "a namespace without flowforge.io/ keys is created")
		require.NoError(t, clientset.CoreV1().Namespaces().Delete(ctx, plain.Name, metav1.DeleteOptions{}), "and deleted")
		require.NoError(t, wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, framework.DefaultTimeout, true, func(ctx context.Context) (bool, error) {
			_, err := clientset.CoreV1().Namespaces().Get(ctx, plain.Name, metav1.GetOptions{})
			return apierrors.IsNotFound(err), nil
		}), "the namespace controller finalizes the deletion")
	})
}
