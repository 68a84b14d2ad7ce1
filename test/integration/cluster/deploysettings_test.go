package cluster

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	admissionv1 "k8s.io/api/admission/v1"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	corev1ac "k8s.io/client-go/applyconfigurations/core/v1"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/discovery/cached/memory"
	"k8s.io/client-go/dynamic"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/restmapper"
	"k8s.io/client-go/util/retry"
	"k8s.io/utils/ptr"

	"github.com/flowforge/flowforge/certs"
	"github.com/flowforge/flowforge/deploy"
	"github.com/flowforge/flowforge/test/framework"
	"github.com/flowforge/flowforge/test/localcluster"
)

// deployObjects reads every object of the named deploy/ files.
func deployObjects(t *testing.T, names ...string) []*unstructured.Unstructured {
	t.Helper()
	root, err := localcluster.ModuleRoot()
	require.NoError(t, err)
	var out []*unstructured.Unstructured
	for _, name := range names {
		data, err := os.ReadFile(filepath.Join(root, "deploy", name))
		require.NoError(t, err)
		r := utilyaml.NewYAMLReader(bufioReader(data))
		for {
			doc, err := r.Read()
			if errors.Is(err, io.EOF) {
				break
			}
			require.NoError(t, err)
			js, err := utilyaml.ToJSON(doc)
			require.NoError(t, err)
			if strings.TrimSpace(string(js)) == "null" {
				continue
			}
			u := &unstructured.Unstructured{}
			require.NoError(t, u.UnmarshalJSON(js), name)
			out = append(out, u)
		}
	}
	return out
}

// TestDeployManifestsServerSideApply applies every object of deploy/ with
// a server-side apply dry run, as `kubectl apply --server-side` would: the
// API server's schema, defaulting and validation accept each (kinds whose
// CRDs this cluster lacks are named and left out).
func TestDeployManifestsServerSideApply(t *testing.T) {
	root, err := localcluster.ModuleRoot()
	require.NoError(t, err)
	files, err := filepath.Glob(filepath.Join(root, "deploy", "*.yaml"))
	require.NoError(t, err)
	var names []string
	for _, f := range files {
		if filepath.Base(f) != "kustomization.yaml" {
			names = append(names, filepath.Base(f))
		}
	}
	dc, err := discovery.NewDiscoveryClientForConfig(testCluster.RESTConfig)
	require.NoError(t, err)
	mapper := restmapper.NewDeferredDiscoveryRESTMapper(memory.NewMemCacheClient(dc))
	dyn, err := dynamic.NewForConfig(testCluster.RESTConfig)
	require.NoError(t, err)
	ctx := context.Background()
	// The namespace exists for real: the namespaced objects need it.
	_, err = clientset.CoreV1().Namespaces().Apply(ctx, corev1ac.Namespace(deploy.Namespace), metav1.ApplyOptions{FieldManager: "deploy-test"})
	require.NoError(t, err)
	withoutCRD := map[string]bool{"Issuer": true, "Certificate": true, "PrometheusRule": true, "ServiceMonitor": true}
	applied := map[string]bool{}
	for _, u := range deployObjects(t, names...) {
		if withoutCRD[u.GetKind()] {
			t.Logf("%s %s: its CRD is not installed here", u.GetKind(), u.GetName())
			continue
		}
		gvk := u.GroupVersionKind()
		m, err := mapper.RESTMapping(gvk.GroupKind(), gvk.Version)
		require.NoError(t, err, gvk.String())
		var ri dynamic.ResourceInterface = dyn.Resource(m.Resource)
		if m.Scope.Name() == meta.RESTScopeNameNamespace {
			ri = dyn.Resource(m.Resource).Namespace(u.GetNamespace())
		}
		_, err = ri.Apply(ctx, u.GetName(), u, metav1.ApplyOptions{FieldManager: "deploy-test", Force: true, DryRun: []string{metav1.DryRunAll}})
		assert.NoError(t, err, "%s %s", u.GetKind(), u.GetName())
		applied[u.GetKind()] = true
	}
	for _, kind := range []string{"Deployment", "PodDisruptionBudget", "ResourceQuota", "MutatingWebhookConfiguration", "ValidatingWebhookConfiguration"} {
		assert.True(t, applied[kind], kind)
	}
}

func clientConfig(url string, caBundle []byte) admissionregistrationv1.WebhookClientConfig {
	return admissionregistrationv1.WebhookClientConfig{URL: &url, CABundle: caBundle}
}

// TestWebhookDeploymentRunsOnAGKELikeAPIServer runs the webhook's
// Deployment, PodDisruptionBudget and ResourceQuota from deploy/ (in a
// namespace of their own) on an API server that limits the critical
// priority classes as GKE does (localcluster's admission configuration),
// with the real scheduler and controllers:
//   - without the ResourceQuota, no replica may be created;
//   - with it, the three replicas are created and scheduled, even though
//     every node but one is tainted (nodeTaintsPolicy Honor);
//   - the PodDisruptionBudget allows one eviction at a time.
func TestWebhookDeploymentRunsOnAGKELikeAPIServer(t *testing.T) {
	ctx := context.Background()
	ns := framework.Namespace(t, clientset, "webhook-deploy", nil)
	var dep *appsv1.Deployment
	var pdb *policyv1.PodDisruptionBudget
	var quota *corev1.ResourceQuota
	for _, u := range deployObjects(t, "webhook.yaml", "quota.yaml") {
		raw, err := u.MarshalJSON()
		require.NoError(t, err)
		obj, _, err := clientgoscheme.Codecs.UniversalDeserializer().Decode(raw, nil, nil)
		require.NoError(t, err)
		switch o := obj.(type) {
		case *appsv1.Deployment:
			dep = o
		case *policyv1.PodDisruptionBudget:
			pdb = o
		case *corev1.ResourceQuota:
			quota = o
		}
	}
	require.NotNil(t, dep)
	require.NotNil(t, pdb)
	require.NotNil(t, quota)
	dep.Namespace, pdb.Namespace, quota.Namespace = ns, ns, ns
	// kwok plays the pods: keep them running.
	dep.Spec.Template.Annotations = map[string]string{"sim.flowforge.io/run": "forever"}
	_, err := clientset.CoreV1().ServiceAccounts(ns).Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: dep.Spec.Template.Spec.ServiceAccountName}}, metav1.CreateOptions{})
	require.NoError(t, err)

	// Without the quota: refused.
	_, err = clientset.AppsV1().Deployments(ns).Create(ctx, dep, metav1.CreateOptions{})
	require.NoError(t, err)
	var failure string
	err = wait.PollUntilContextTimeout(ctx, 200*time.Millisecond, framework.DefaultTimeout, true, func(ctx context.Context) (bool, error) {
		rss, err := clientset.AppsV1().ReplicaSets(ns).List(ctx, metav1.ListOptions{})
		if err != nil || len(rss.Items) == 0 {
			return false, nil
		}
		for _, c := range rss.Items[0].Status.Conditions {
			if c.Type == appsv1.ReplicaSetReplicaFailure && c.Status == corev1.ConditionTrue {
				failure = c.Message
				return true, nil
			}
		}
		return false, nil
	})
	require.NoError(t, err, "the ReplicaSet reports that it cannot create the replicas")
	assert.Contains(t, failure, "insufficient quota to match these scopes")
	pods, err := clientset.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{})
	require.NoError(t, err)
	assert.Empty(t, pods.Items)

	// With it: three replicas, scheduled and ready.
	_, err = clientset.CoreV1().ResourceQuotas(ns).Create(ctx, quota, metav1.CreateOptions{})
	require.NoError(t, err)
	_, err = clientset.PolicyV1().PodDisruptionBudgets(ns).Create(ctx, pdb, metav1.CreateOptions{})
	require.NoError(t, err)
	var running []corev1.Pod
	err = wait.PollUntilContextTimeout(ctx, 250*time.Millisecond, 2*framework.DefaultTimeout, true, func(ctx context.Context) (bool, error) {
		list, err := clientset.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{})
		if err != nil {
			return false, nil
		}
		running = running[:0]
		for _, p := range list.Items {
			if p.Spec.NodeName != "" && p.Status.Phase == corev1.PodRunning && p.DeletionTimestamp == nil {
				running = append(running, p)
			}
		}
		return len(running) == 3, nil
	})
	require.NoError(t, err, "three replicas run once the quota allows them (%d running)", len(running))
	for _, p := range running {
		assert.Equal(t, localcluster.GeneralNodeName, p.Spec.NodeName, "the only node without a taint the pods do not tolerate")
		assert.Equal(t, "system-cluster-critical", p.Spec.PriorityClassName)
		// The graceful stop survives the API server's defaulting and
		// validation down to the pods (docs/operations.md, Stopping a
		// webhook replica): the preStop sleep action and the grace period.
		require.NotNil(t, p.Spec.TerminationGracePeriodSeconds)
		assert.Equal(t, *dep.Spec.Template.Spec.TerminationGracePeriodSeconds, *p.Spec.TerminationGracePeriodSeconds)
		require.NotNil(t, p.Spec.Containers[0].Lifecycle)
		require.NotNil(t, p.Spec.Containers[0].Lifecycle.PreStop)
		require.NotNil(t, p.Spec.Containers[0].Lifecycle.PreStop.Sleep, "the API server keeps the sleep action")
		assert.Equal(t, dep.Spec.Template.Spec.Containers[0].Lifecycle.PreStop.Sleep.Seconds, p.Spec.Containers[0].Lifecycle.PreStop.Sleep.Seconds)
	}
	var used int64
	err = wait.PollUntilContextTimeout(ctx, 250*time.Millisecond, framework.DefaultTimeout, true, func(ctx context.Context) (bool, error) {
		q, err := clientset.CoreV1().ResourceQuotas(ns).Get(ctx, quota.Name, metav1.GetOptions{})
		if err != nil {
			return false, nil
		}
		n := q.Status.Used[corev1.ResourcePods]
		used = n.Value()
		return used == 3, nil
	})
	require.NoError(t, err, "the quota counts the replicas (used %d)", used)

	// One eviction at a time.
	err = wait.PollUntilContextTimeout(ctx, 250*time.Millisecond, framework.DefaultTimeout, true, func(ctx context.Context) (bool, error) {
		got, err := clientset.PolicyV1().PodDisruptionBudgets(ns).Get(ctx, pdb.Name, metav1.GetOptions{})
		return err == nil && got.Status.CurrentHealthy == 3 && got.Status.DisruptionsAllowed == 1, nil
	})
	require.NoError(t, err, "the budget sees three healthy replicas and allows one disruption")
	evict := func(name string) error {
		return clientset.CoreV1().Pods(ns).EvictV1(ctx, &policyv1.Eviction{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns}})
	}
	require.NoError(t, evict(running[0].Name))
	err = evict(running[1].Name)
	require.Error(t, err, "a second replica may not be evicted while the first is replaced")
	assert.True(t, apierrors.IsTooManyRequests(err), "%v", err)

	// Why nodeTaintsPolicy Honor: the same Deployment counting the tainted
	// nodes as empty domains places one replica and leaves two pending.
	naive := dep.DeepCopy()
	naive.Name = "spread-without-honor"
	naive.Spec.Selector.MatchLabels = map[string]string{"app.kubernetes.io/name": naive.Name}
	naive.Spec.Template.Labels = map[string]string{"app.kubernetes.io/name": naive.Name}
	for i := range naive.Spec.Template.Spec.TopologySpreadConstraints {
		c := &naive.Spec.Template.Spec.TopologySpreadConstraints[i]
		c.NodeTaintsPolicy = nil
		c.LabelSelector = &metav1.LabelSelector{MatchLabels: naive.Spec.Template.Labels}
	}
	_, err = clientset.AppsV1().Deployments(ns).Create(ctx, naive, metav1.CreateOptions{})
	require.NoError(t, err)
	var scheduled, unschedulable int
	err = wait.PollUntilContextTimeout(ctx, 250*time.Millisecond, framework.DefaultTimeout, true, func(ctx context.Context) (bool, error) {
		list, err := clientset.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: "app.kubernetes.io/name=" + naive.Name})
		if err != nil {
			return false, nil
		}
		scheduled, unschedulable = 0, 0
		for _, p := range list.Items {
			if p.Spec.NodeName != "" {
				scheduled++
			}
			for _, c := range p.Status.Conditions {
				if c.Type == corev1.PodScheduled && c.Status == corev1.ConditionFalse && c.Reason == corev1.PodReasonUnschedulable {
					unschedulable++
				}
			}
		}
		return scheduled == 1 && unschedulable == 2, nil
	})
	require.NoError(t, err, "without Honor: %d scheduled, %d unschedulable", scheduled, unschedulable)
}

// matchRecorder is an admission webhook that admits everything and
// records which webhook was called for what: the paths of its URLs are
// the webhooks' names.
type matchRecorder struct {
	mu    sync.Mutex
	calls []string
}

func (r *matchRecorder) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	var review admissionv1.AdmissionReview
	if err := json.NewDecoder(req.Body).Decode(&review); err != nil || review.Request == nil {
		http.Error(w, "not an AdmissionReview", http.StatusBadRequest)
		return
	}
	name := review.Request.Name
	if name == "" && review.Request.Object.Raw != nil {
		var m metav1.PartialObjectMetadata
		if json.Unmarshal(review.Request.Object.Raw, &m) == nil {
			name = m.Name
		}
	}
	r.mu.Lock()
	r.calls = append(r.calls, fmt.Sprintf("%s %s %s", strings.TrimPrefix(req.URL.Path, "/"), review.Request.Operation, name))
	r.mu.Unlock()
	review.Response = &admissionv1.AdmissionResponse{UID: review.Request.UID, Allowed: true}
	review.Request = nil
	_ = json.NewEncoder(w).Encode(&review)
}

// since returns the calls recorded after the first n.
func (r *matchRecorder) since(n int) []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.calls[n:]...)
}

func (r *matchRecorder) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.calls)
}

// TestMatchConditionsSkipExactlyWhatTheyClaim registers deploy/'s webhook
// configurations (renamed, pointed at a recorder that admits everything)
// and checks, on the real API server, which requests reach which webhook:
// every CREATE of a labelled Job or Pod, and of an unlabelled one in a
// managed namespace, is sent; an UPDATE that changes only finalizers is
// not; one that changes a label, an annotation or the spec is. The same
// for namespaces (a flowforge.io/ key) and CronJobs (the label).
func TestMatchConditionsSkipExactlyWhatTheyClaim(t *testing.T) {
	ctx := context.Background()
	rec := &matchRecorder{}
	dir := t.TempDir()
	tlsFiles, err := certs.WriteSelfSigned(dir, []string{"127.0.0.1"}, time.Now(), time.Hour)
	require.NoError(t, err)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	srv := &http.Server{Handler: rec, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.ServeTLS(l, tlsFiles.CertPath, tlsFiles.KeyPath) }()
	t.Cleanup(func() { _ = srv.Close() })
	base := "https://" + l.Addr().String() + "/"

	m, v, err := deploy.WebhookConfigurations()
	require.NoError(t, err)
	m.Name, v.Name = "matchconditions-test-mutating", "matchconditions-test-validating"
	for i := range m.Webhooks {
		m.Webhooks[i].ClientConfig = clientConfig(base+m.Webhooks[i].Name, tlsFiles.CAPEM)
	}
	for i := range v.Webhooks {
		v.Webhooks[i].ClientConfig = clientConfig(base+v.Webhooks[i].Name, tlsFiles.CAPEM)
	}
	_, err = clientset.AdmissionregistrationV1().MutatingWebhookConfigurations().Create(ctx, m, metav1.CreateOptions{})
	require.NoError(t, err)
	t.Cleanup(func() {
		_ = clientset.AdmissionregistrationV1().MutatingWebhookConfigurations().Delete(context.Background(), m.Name, metav1.DeleteOptions{})
	})
	_, err = clientset.AdmissionregistrationV1().ValidatingWebhookConfigurations().Create(ctx, v, metav1.CreateOptions{})
	require.NoError(t, err)
	t.Cleanup(func() {
		_ = clientset.AdmissionregistrationV1().ValidatingWebhookConfigurations().Delete(context.Background(), v.Name, metav1.DeleteOptions{})
	})

	plain := framework.Namespace(t, clientset, "mc-plain", nil)
	managed := framework.Namespace(t, clientset, "mc-managed", map[string]string{"flowforge.io/managed": "true"})
	// The API server registers new webhook configurations asynchronously:
	// wait until a labelled Job reaches the recorder.
	fence := 0
	err = wait.PollUntilContextTimeout(ctx, 200*time.Millisecond, framework.DefaultTimeout, true, func(ctx context.Context) (bool, error) {
		fence++
		n := rec.count()
		_, err := clientset.BatchV1().Jobs(plain).Create(ctx, suspendedJob(fmt.Sprintf("fence-%d", fence), true), metav1.CreateOptions{})
		return err == nil && len(rec.since(n)) > 0, nil
	})
	require.NoError(t, err, "the webhooks are called")

	type step struct {
		name, obj string
		do        func(t *testing.T)
		want      []string
	}
	jobs := clientset.BatchV1().Jobs
	pods := clientset.CoreV1().Pods
	updateJob := func(ns, name string, f func(*batchv1.Job)) func(t *testing.T) {
		return func(t *testing.T) {
			// The Job controller writes the Job's status meanwhile.
			require.NoError(t, retry.RetryOnConflict(retry.DefaultRetry, func() error {
				j, err := jobs(ns).Get(ctx, name, metav1.GetOptions{})
				if err != nil {
					return err
				}
				f(j)
				_, err = jobs(ns).Update(ctx, j, metav1.UpdateOptions{})
				return err
			}))
		}
	}
	updatePod := func(ns, name string, f func(*corev1.Pod)) func(t *testing.T) {
		return func(t *testing.T) {
			p, err := pods(ns).Get(ctx, name, metav1.GetOptions{})
			require.NoError(t, err)
			f(p)
			_, err = pods(ns).Update(ctx, p, metav1.UpdateOptions{})
			require.NoError(t, err)
		}
	}
	patchNS := func(name, patch string) func(t *testing.T) {
		return func(t *testing.T) {
			_, err := clientset.CoreV1().Namespaces().Patch(ctx, name, types.MergePatchType, []byte(patch), metav1.PatchOptions{})
			require.NoError(t, err)
		}
	}
	addFinalizer := func(o metav1.Object) { o.SetFinalizers(append(o.GetFinalizers(), "example.com/hold")) }
	dropFinalizers := func(o metav1.Object) { o.SetFinalizers(nil) }
	steps := []step{
		{name: "CREATE of a labelled Job", obj: "labelled", do: func(t *testing.T) {
			_, err := jobs(plain).Create(ctx, suspendedJob("labelled", true), metav1.CreateOptions{})
			require.NoError(t, err)
		}, want: []string{"jobs.mutate.flowforge.io CREATE labelled", "jobs.validate.flowforge.io CREATE labelled"}},
		{name: "UPDATE adding a finalizer", obj: "labelled", do: updateJob(plain, "labelled", func(j *batchv1.Job) { addFinalizer(j) })},
		{name: "UPDATE removing it", obj: "labelled", do: updateJob(plain, "labelled", func(j *batchv1.Job) { dropFinalizers(j) })},
		{name: "UPDATE of an annotation", obj: "labelled", do: updateJob(plain, "labelled", func(j *batchv1.Job) { j.Annotations = map[string]string{"note": "x"} }),
			want: []string{"jobs.validate.flowforge.io UPDATE labelled"}},
		{name: "UPDATE of the spec", obj: "labelled", do: updateJob(plain, "labelled", func(j *batchv1.Job) { j.Spec.ActiveDeadlineSeconds = ptr.To[int64](60) }),
			want: []string{"jobs.validate.flowforge.io UPDATE labelled"}},
		{name: "UPDATE of a label", obj: "labelled", do: updateJob(plain, "labelled", func(j *batchv1.Job) { j.Labels["team"] = "a" }),
			want: []string{"jobs.validate.flowforge.io UPDATE labelled"}},
		{name: "CREATE of an unlabelled Job elsewhere", obj: "unlabelled", do: func(t *testing.T) {
			_, err := jobs(plain).Create(ctx, suspendedJob("unlabelled", false), metav1.CreateOptions{})
			require.NoError(t, err)
		}},
		{name: "CREATE of an unlabelled Pod in a managed namespace", obj: "bare", do: func(t *testing.T) {
			_, err := pods(managed).Create(ctx, plainPod("bare"), metav1.CreateOptions{})
			require.NoError(t, err)
		}, want: []string{"managed-pods.validate.flowforge.io CREATE bare"}},
		{name: "UPDATE of its finalizers", obj: "bare", do: updatePod(managed, "bare", func(p *corev1.Pod) { addFinalizer(p) })},
		{name: "UPDATE of its labels", obj: "bare", do: updatePod(managed, "bare", func(p *corev1.Pod) { p.Labels = map[string]string{"team": "a"} }),
			want: []string{"managed-pods.validate.flowforge.io UPDATE bare"}},
		{name: "UPDATE removing its finalizers", obj: "bare", do: updatePod(managed, "bare", func(p *corev1.Pod) { dropFinalizers(p) })},
		{name: "CREATE of an unlabelled Job in a managed namespace", obj: "bare-job", do: func(t *testing.T) {
			_, err := jobs(managed).Create(ctx, suspendedJob("bare-job", false), metav1.CreateOptions{})
			require.NoError(t, err)
		}, want: []string{"managed-jobs.validate.flowforge.io CREATE bare-job"}},
		{name: "namespace label outside flowforge.io/", obj: plain, do: patchNS(plain, `{"metadata":{"labels":{"team":"a"}}}`)},
		{name: "namespace label flowforge.io/", obj: plain, do: patchNS(plain, `{"metadata":{"labels":{"flowforge.io/seccomp":"x"}}}`),
			want: []string{"namespaces.validate.flowforge.io UPDATE " + plain}},
	}
	for _, s := range steps {
		n := rec.count()
		s.do(t)
		got := rec.since(n)
		// Only this step's object: the cluster's controllers may write
		// others meanwhile.
		var mine []string
		for _, c := range got {
			if strings.HasSuffix(c, " "+s.obj) {
				mine = append(mine, c)
			}
		}
		assert.ElementsMatch(t, s.want, dedupe(mine), s.name)
	}
}

func dedupe(calls []string) []string {
	seen := map[string]bool{}
	var out []string
	for _, c := range calls {
		// A mutating webhook may be called again (reinvocationPolicy).
		if !seen[c] {
			seen[c] = true
			out = append(out, c)
		}
	}
	return out
}

func suspendedJob(name string, labelled bool) *batchv1.Job {
	j := &batchv1.Job{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: batchv1.JobSpec{
			Suspend: ptr.To(true),
			Template: corev1.PodTemplateSpec{Spec: corev1.PodSpec{
				RestartPolicy: corev1.RestartPolicyNever,
				Containers:    []corev1.Container{{Name: "c", Image: "busybox"}},
			}},
		},
	}
	if labelled {
		j.Labels = map[string]string{"app": "flowforge"}
	}
	return j
}

func plainPod(name string) *corev1.Pod {
	// Gated: nothing schedules or runs it, so only the test writes it.
	return &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name}, Spec: corev1.PodSpec{
		SchedulingGates: []corev1.PodSchedulingGate{{Name: "example.com/hold"}},
		Containers:      []corev1.Container{{Name: "c", Image: "busybox"}},
	}}
}
