package admission

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/yaml"

	"github.com/flowforge/flowforge/test/framework"
	"github.com/flowforge/flowforge/test/localcluster"
)

// adversarialCase is a row of policies/validate/testdata/adversarial.yaml.
type adversarialCase struct {
	Name            string            `json:"name"`
	Kind            string            `json:"kind"`
	NamespaceLabels map[string]string `json:"namespaceLabels"`
	Object          json.RawMessage   `json:"object"`
	Update          json.RawMessage   `json:"update"`
	SubResource     string            `json:"subResource"`
	Fields          []string          `json:"fields"`
	// RefusedByAPIServer: the API server's own validation refuses the
	// object before any webhook sees it.
	RefusedByAPIServer bool `json:"refusedByAPIServer"`
	// User and Groups send the request (impersonated; default the admin,
	// a trusted submitter). Claims name Jobs that already hold the
	// object's job-id: they are created first.
	User   string   `json:"user"`
	Groups []string `json:"groups"`
	Claims []struct {
		Name string `json:"name"`
	} `json:"claims"`
}

func loadAdversarial(t *testing.T) (escapes, legitimate []adversarialCase) {
	t.Helper()
	root, err := localcluster.ModuleRoot()
	require.NoError(t, err)
	data, err := os.ReadFile(filepath.Join(root, "policies/validate/testdata/adversarial.yaml"))
	require.NoError(t, err)
	var table struct {
		Escapes    []adversarialCase `json:"escapes"`
		Legitimate []adversarialCase `json:"legitimate"`
	}
	require.NoError(t, yaml.Unmarshal(data, &table))
	return table.Escapes, table.Legitimate
}

// namespaces hands out one namespace per distinct label set, owned by the
// parent test so that it outlives the subtests.
type namespaces struct {
	t  *testing.T
	mu sync.Mutex
	by map[string]string
}

func (n *namespaces) get(labels map[string]string) string {
	keys := make([]string, 0, len(labels))
	for k, v := range labels {
		keys = append(keys, k+"="+v)
	}
	sort.Strings(keys)
	key := strings.Join(keys, ",")
	n.mu.Lock()
	defer n.mu.Unlock()
	if ns, ok := n.by[key]; ok {
		return ns
	}
	ns := framework.Namespace(n.t, clientset, "adv", labels)
	n.by[key] = ns
	return ns
}

// forCase is the namespace of a case. A case with an update really
// creates its object, which then holds its job-id in the namespace (the
// identity policy refuses a second Job with it), so it gets a namespace of
// its own.
func (n *namespaces) forCase(t *testing.T, c adversarialCase) string {
	if len(c.Update) > 0 || c.User != "" || len(c.Claims) > 0 {
		return framework.Namespace(t, clientset, "adv", c.NamespaceLabels)
	}
	return n.get(c.NamespaceLabels)
}

// submit sends a case through the real API server: a dry-run create, or for
// an update a real create followed by a dry-run merge patch.
func submit(ctx context.Context, ns string, i int, c adversarialCase) error {
	var obj map[string]any
	if err := json.Unmarshal(c.Object, &obj); err != nil {
		return err
	}
	meta, _ := obj["metadata"].(map[string]any)
	meta["namespace"] = ns
	name := fmt.Sprintf("case-%d", i)
	meta["name"] = name
	raw, err := json.Marshal(obj)
	if err != nil {
		return err
	}
	dryRun := metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}}
	if len(c.Update) > 0 {
		dryRun = metav1.CreateOptions{}
	}
	if err := createClaimHolders(ctx, ns, meta, c); err != nil {
		return err
	}
	// The requester: the case's user sends the create, or for an update the
	// patch (the admin creates the object it patches).
	creator, patcher := kubernetes.Interface(clientset), kubernetes.Interface(clientset)
	if c.User != "" {
		impersonated, err := requesterClient(ctx, ns, c.User, c.Groups)
		if err != nil {
			return err
		}
		if len(c.Update) > 0 {
			patcher = impersonated
		} else {
			creator = impersonated
		}
	}
	switch c.Kind {
	case "Job":
		var job batchv1.Job
		if err := json.Unmarshal(raw, &job); err != nil {
			return err
		}
		if _, err := creator.BatchV1().Jobs(ns).Create(ctx, &job, dryRun); err != nil || len(c.Update) == 0 {
			return err
		}
		_, err = patcher.BatchV1().Jobs(ns).Patch(ctx, name, types.MergePatchType, c.Update, metav1.PatchOptions{DryRun: []string{metav1.DryRunAll}})
		return err
	case "Pod":
		var pod corev1.Pod
		if err := json.Unmarshal(raw, &pod); err != nil {
			return err
		}
		if _, err := creator.CoreV1().Pods(ns).Create(ctx, &pod, dryRun); err != nil || len(c.Update) == 0 {
			return err
		}
		_, err = patcher.CoreV1().Pods(ns).Patch(ctx, name, types.MergePatchType, c.Update, metav1.PatchOptions{DryRun: []string{metav1.DryRunAll}}, c.SubResource)
		return err
	}
	return fmt.Errorf("unknown kind %q", c.Kind)
}

// TestEveryEscapeIsRefusedByTheAPIServer sends each escape of the
// adversarial table through the real API server with the webhooks
// registered, and checks that the denial names the field.
func TestEveryEscapeIsRefusedByTheAPIServer(t *testing.T) {
	t.Parallel()
	escapes, _ := loadAdversarial(t)
	nss := &namespaces{t: t, by: map[string]string{}}
	for i, c := range escapes {
		t.Run(c.Name, func(t *testing.T) {
			err := submit(context.Background(), nss.forCase(t, c), i, c)
			require.Error(t, err, "the API server admitted the escape")
			if c.RefusedByAPIServer || (len(c.Update) > 0 && apierrors.IsInvalid(err) && !strings.Contains(err.Error(), "admission webhook")) {
				// The API server's own validation refused it first (for an
				// update: most of a Job's template is immutable).
				assert.True(t, apierrors.IsInvalid(err), "refused by the API server's validation: %v", err)
				return
			}
			assert.Contains(t, err.Error(), "validate.flowforge.io", "FlowForge's webhook is what refused it")
			for _, f := range c.Fields {
				assert.Contains(t, err.Error(), f, "the message names the field")
			}
		})
	}
}

func TestLegitimateVariationsAreAdmitted(t *testing.T) {
	t.Parallel()
	_, legitimate := loadAdversarial(t)
	nss := &namespaces{t: t, by: map[string]string{}}
	for i, c := range legitimate {
		t.Run(c.Name, func(t *testing.T) {
			assert.NoError(t, submit(context.Background(), nss.forCase(t, c), 1000+i, c))
		})
	}
}

// unsafePod is a labelled Pod that asks for root and privileges.
func unsafePod(name string, labels map[string]string) *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{
			Name: "c", Image: "ghcr.io/flowforge/claude-worker:1.4.0",
			SecurityContext: &corev1.SecurityContext{Privileged: ptr.To(true), RunAsUser: ptr.To[int64](0)},
		}}},
	}
}

func TestDirectlyCreatedUnsafePodIsRefused(t *testing.T) {
	t.Parallel()
	ns := framework.Namespace(t, clientset, "direct", nil)
	// A labelled Pod is hardened where it says nothing (runtime class, token:
	// see pods_test.go); what it sets unsafely on purpose is refused.
	pod := unsafePod("sneaky", map[string]string{"app": "flowforge", "job-id": "x", "user-id": "u"})
	pod.Spec.RuntimeClassName = ptr.To("runc")
	pod.Spec.HostPID = true
	_, err := clientset.CoreV1().Pods(ns).Create(context.Background(), pod, metav1.CreateOptions{})
	require.Error(t, err)
	for _, f := range []string{"spec.containers[0].securityContext.privileged", "spec.containers[0].securityContext.runAsUser", "spec.runtimeClassName", "spec.hostPID"} {
		assert.Contains(t, err.Error(), f)
	}
}

func TestManagedNamespaceRefusesUnlabelledJobsAndPods(t *testing.T) {
	t.Parallel()
	ns := framework.Namespace(t, clientset, "managed", map[string]string{"flowforge.io/managed": "true"})
	job := plainJob("no-label", nil)
	job.Labels = map[string]string{"team": "x"}
	job.Spec.Template.Spec.RestartPolicy = corev1.RestartPolicyNever
	_, err := clientset.BatchV1().Jobs(ns).Create(context.Background(), job, metav1.CreateOptions{})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "managed-jobs.validate.flowforge.io")
	assert.Contains(t, err.Error(), "metadata.labels[app]")

	_, err = clientset.CoreV1().Pods(ns).Create(context.Background(), unsafePod("bare", nil), metav1.CreateOptions{})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "managed-pods.validate.flowforge.io")
	assert.Contains(t, err.Error(), "metadata.labels[app]")
}

func TestLabelledJobRunsInAManagedNamespace(t *testing.T) {
	t.Parallel()
	labels := framework.RestrictedLabels()
	labels["flowforge.io/managed"] = "true"
	ns := framework.Namespace(t, clientset, "managed-run", labels)
	_, err := clientset.BatchV1().Jobs(ns).Create(context.Background(), plainJob("ok", map[string]string{localcluster.AnnotationDuration: "300ms"}), metav1.CreateOptions{})
	require.NoError(t, err)
	_, err = framework.WaitForJobCondition(context.Background(), clientset, ns, "ok", batchv1.JobComplete)
	require.NoError(t, err, "pods the Job controller creates from a hardened Job pass the pod webhooks")
}

func TestUnlabelledObjectsOutsideManagedNamespacesAreUntouched(t *testing.T) {
	t.Parallel()
	ns := framework.Namespace(t, clientset, "elsewhere", nil)
	pod, err := clientset.CoreV1().Pods(ns).Create(context.Background(), unsafePod("anything", map[string]string{"app": "other"}), metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}})
	require.NoError(t, err)
	assert.True(t, *pod.Spec.Containers[0].SecurityContext.Privileged, "not FlowForge's business")
	assert.Nil(t, pod.Spec.RuntimeClassName)
}

func TestKubeSystemIsNeverMatched(t *testing.T) {
	t.Parallel()
	labels := map[string]string{"app": "flowforge", "job-id": "x", "user-id": "u"}
	pod, err := clientset.CoreV1().Pods("kube-system").Create(context.Background(), unsafePod("system", labels), metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}})
	require.NoError(t, err, "a labelled pod in kube-system is not validated")
	assert.True(t, *pod.Spec.Containers[0].SecurityContext.Privileged)

	job := plainJob("system-job", nil)
	job.Spec.Template.Spec.RestartPolicy = corev1.RestartPolicyNever
	got, err := clientset.BatchV1().Jobs("kube-system").Create(context.Background(), job, metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}})
	require.NoError(t, err)
	assert.Nil(t, got.Spec.Template.Spec.RuntimeClassName, "a labelled Job in kube-system is not mutated")
}

// createClaimHolders creates, as the admin, the Jobs a case says already
// hold its job-id: a minimal hardened-by-the-webhook Job with the case's
// labels under each holder's name.
func createClaimHolders(ctx context.Context, ns string, meta map[string]any, c adversarialCase) error {
	if len(c.Claims) == 0 {
		return nil
	}
	labels := map[string]string{}
	if l, ok := meta["labels"].(map[string]any); ok {
		for k, v := range l {
			labels[k], _ = v.(string)
		}
	}
	for _, holder := range c.Claims {
		job := plainJob(holder.Name, nil)
		job.Labels = labels
		job.Spec.Template.Spec.RestartPolicy = corev1.RestartPolicyNever
		if _, err := clientset.BatchV1().Jobs(ns).Create(ctx, job, metav1.CreateOptions{}); err != nil {
			return fmt.Errorf("create the holder Job %s: %w", holder.Name, err)
		}
	}
	// The webhook sees the holders through its cache: wait until a second
	// claim is refused for them (a dry run of another holder-labelled Job).
	return wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, framework.DefaultTimeout, true, func(ctx context.Context) (bool, error) {
		probe := plainJob("claim-probe", nil)
		probe.Labels = labels
		probe.Spec.Template.Spec.RestartPolicy = corev1.RestartPolicyNever
		_, err := clientset.BatchV1().Jobs(ns).Create(ctx, probe, metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}})
		return err != nil && strings.Contains(err.Error(), "belongs to another Job"), nil
	})
}

// requesterClient grants user the right to create and patch Jobs and Pods
// in ns (as a team's Role would: RBAC lets them in, FlowForge decides) and
// returns a client that impersonates them.
func requesterClient(ctx context.Context, ns, user string, groups []string) (kubernetes.Interface, error) {
	role := &rbacv1.Role{
		ObjectMeta: metav1.ObjectMeta{Name: "adversary"},
		Rules: []rbacv1.PolicyRule{
			{APIGroups: []string{"batch"}, Resources: []string{"jobs"}, Verbs: []string{"get", "list", "create", "patch"}},
			{APIGroups: []string{""}, Resources: []string{"pods"}, Verbs: []string{"get", "list", "create", "patch"}},
		},
	}
	if _, err := clientset.RbacV1().Roles(ns).Create(ctx, role, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		return nil, err
	}
	binding := &rbacv1.RoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: "adversary"},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: "adversary"},
		Subjects:   []rbacv1.Subject{{APIGroup: rbacv1.GroupName, Kind: "User", Name: user}},
	}
	if _, err := clientset.RbacV1().RoleBindings(ns).Create(ctx, binding, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		return nil, err
	}
	cs, err := kubernetes.NewForConfig(asConfig(user, groups...))
	if err != nil {
		return nil, err
	}
	// The API server's authorizer sees the binding within moments.
	err = wait.PollUntilContextTimeout(ctx, 50*time.Millisecond, framework.DefaultTimeout, true, func(ctx context.Context) (bool, error) {
		_, err := cs.BatchV1().Jobs(ns).List(ctx, metav1.ListOptions{Limit: 1})
		if err != nil {
			return false, nil
		}
		_, err = cs.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{Limit: 1})
		return err == nil, nil
	})
	return cs, err
}
