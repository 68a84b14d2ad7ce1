package admission

// Issue 12, classes 1-5 and 9, through the real API server: each class of
// escape is refused by FlowForge's validating webhook with its field named;
// every Job of validate/testdata/legitimate-jobs.yaml is admitted; and a
// Job with backoffLimitPerIndex but no backoffLimit (the API server fills
// in MaxInt32) is admitted and runs to completion.

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	admissionv1 "k8s.io/api/admission/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/yaml"

	"github.com/flowforge/flowforge/test/framework"
	"github.com/flowforge/flowforge/test/localcluster"
)

var classDryRun = metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}}

// refusedWith checks that FlowForge's validating webhook refused a request
// and that the denial names every field.
func refusedWith(t *testing.T, err error, fields ...string) {
	t.Helper()
	require.Error(t, err, "the API server admitted it")
	assert.Contains(t, err.Error(), "validate.flowforge.io", "FlowForge's webhook refused it")
	for _, f := range fields {
		assert.Contains(t, err.Error(), f+": Forbidden", "the denial names the field")
	}
}

// classJob is plainJob with a change applied.
func classJob(name string, change func(*batchv1.Job)) *batchv1.Job {
	j := plainJob(name, nil)
	change(j)
	return j
}

func withPod(change func(*corev1.PodSpec)) func(*batchv1.Job) {
	return func(j *batchv1.Job) { change(&j.Spec.Template.Spec) }
}

func limits(cpu, memory string) corev1.ResourceRequirements {
	l := corev1.ResourceList{corev1.ResourceCPU: resource.MustParse(cpu), corev1.ResourceMemory: resource.MustParse(memory)}
	return corev1.ResourceRequirements{Limits: l, Requests: l}
}

func TestIssue12ClassesAreRefusedWithTheirField(t *testing.T) {
	t.Parallel()
	ns := framework.Namespace(t, clientset, "classes", nil)
	worker := func(p *corev1.PodSpec) *corev1.Container { return &p.Containers[0] }
	always := ptr.To(corev1.ContainerRestartPolicyAlways)
	tests := []struct {
		class, name string
		change      func(*batchv1.Job)
		fields      []string
	}{
		// 1. Placement outside the sandbox pool.
		{"placement", "nodeName", withPod(func(p *corev1.PodSpec) { p.NodeName = "kwok-node-0" }), []string{"spec.template.spec.nodeName"}},
		{"placement", "another scheduler", withPod(func(p *corev1.PodSpec) { p.SchedulerName = "anywhere" }), []string{"spec.template.spec.schedulerName"}},
		{"placement", "a toleration of every taint", withPod(func(p *corev1.PodSpec) {
			p.Tolerations = []corev1.Toleration{{Operator: corev1.TolerationOpExists}}
		}), []string{"spec.template.spec.tolerations[0]"}},
		{"placement", "node affinity away from the pool", withPod(func(p *corev1.PodSpec) {
			p.Affinity = &corev1.Affinity{NodeAffinity: &corev1.NodeAffinity{RequiredDuringSchedulingIgnoredDuringExecution: &corev1.NodeSelector{
				NodeSelectorTerms: []corev1.NodeSelectorTerm{{MatchExpressions: []corev1.NodeSelectorRequirement{{Key: "flowforge.io/sandbox", Operator: corev1.NodeSelectorOpDoesNotExist}}}},
			}}}
		}), []string{"spec.template.spec.affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms[0].matchExpressions[0]"}},

		// 2. Lifecycle bounds.
		{"lifecycle", "a grace period of an hour", withPod(func(p *corev1.PodSpec) { p.TerminationGracePeriodSeconds = ptr.To[int64](3600) }),
			[]string{"spec.template.spec.terminationGracePeriodSeconds"}},
		{"lifecycle", "another controller", func(j *batchv1.Job) { j.Spec.ManagedBy = ptr.To("example.com/no-deadlines") }, []string{"spec.managedBy"}},
		{"lifecycle", "a manual selector", func(j *batchv1.Job) {
			j.Spec.ManualSelector = ptr.To(true)
			j.Spec.Selector = &metav1.LabelSelector{MatchLabels: map[string]string{"job-id": j.Name}}
			j.Spec.Template.Labels = map[string]string{"job-id": j.Name}
		}, []string{"spec.manualSelector"}},
		{"lifecycle", "parallelism and completions above the maxima", func(j *batchv1.Job) {
			j.Spec.Parallelism = ptr.To[int32](100)
			j.Spec.Completions = ptr.To[int32](1000)
		}, []string{"spec.parallelism", "spec.completions"}},
		{"lifecycle", "a podFailurePolicy ignoring failures", func(j *batchv1.Job) {
			j.Spec.PodFailurePolicy = &batchv1.PodFailurePolicy{Rules: []batchv1.PodFailurePolicyRule{{
				Action:      batchv1.PodFailurePolicyActionIgnore,
				OnExitCodes: &batchv1.PodFailurePolicyOnExitCodesRequirement{Operator: batchv1.PodFailurePolicyOnExitCodesOpIn, Values: []int32{1}},
			}}}
		}, []string{"spec.podFailurePolicy.rules[0].onExitCodes"}},

		// 3. The pod's resources as a whole.
		{"resources", "three containers at the per-container maximum", withPod(func(p *corev1.PodSpec) {
			p.Containers[0].Resources = limits("2", "4Gi")
			for _, n := range []string{"second", "third"} {
				p.Containers = append(p.Containers, corev1.Container{Name: n, Image: p.Containers[0].Image, Resources: limits("2", "4Gi")})
			}
		}), []string{"spec.template.spec.resources.limits.cpu", "spec.template.spec.resources.requests.memory"}},
		{"resources", "a GPU", withPod(func(p *corev1.PodSpec) {
			worker(p).Resources.Limits = corev1.ResourceList{"nvidia.com/gpu": resource.MustParse("1")}
		}), []string{"spec.template.spec.containers[0].resources.limits.nvidia.com/gpu"}},
		{"resources", "a DRA claim", withPod(func(p *corev1.PodSpec) {
			p.ResourceClaims = []corev1.PodResourceClaim{{Name: "gpu", ResourceClaimTemplateName: ptr.To("h100")}}
			worker(p).Resources.Claims = []corev1.ResourceClaim{{Name: "gpu"}}
		}), []string{"spec.template.spec.resourceClaims[0].resourceClaimTemplateName", "spec.template.spec.containers[0].resources.claims[0]"}},

		// 4. Host reach.
		{"host reach", "a probe against the metadata endpoint", withPod(func(p *corev1.PodSpec) {
			worker(p).LivenessProbe = &corev1.Probe{ProbeHandler: corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Host: "169.254.169.254", Path: "/", Port: intstr.FromInt32(80)}}}
		}), []string{"spec.template.spec.containers[0].livenessProbe.httpGet.host"}},
		{"host reach", "a sidecar hook dialling another host", withPod(func(p *corev1.PodSpec) {
			p.InitContainers = []corev1.Container{{Name: "proxy", Image: p.Containers[0].Image, RestartPolicy: always,
				Lifecycle: &corev1.Lifecycle{PreStop: &corev1.LifecycleHandler{HTTPGet: &corev1.HTTPGetAction{Host: "10.0.0.1", Port: intstr.FromInt32(10250)}}}}}
		}), []string{"spec.template.spec.initContainers[0].lifecycle.preStop.httpGet.host"}},
		{"host reach", "SELinux spc_t", withPod(func(p *corev1.PodSpec) {
			p.SecurityContext = &corev1.PodSecurityContext{SELinuxOptions: &corev1.SELinuxOptions{Type: "spc_t"}}
		}), []string{"spec.template.spec.securityContext.seLinuxOptions.type"}},

		// 5. Image references, parsed.
		{"images", "an organisation sharing the prefix", withPod(func(p *corev1.PodSpec) { worker(p).Image = "ghcr.io/flowforgex/claude-worker:1.4.0" }),
			[]string{"spec.template.spec.containers[0].image"}},
		{"images", "a path climbing out", withPod(func(p *corev1.PodSpec) { worker(p).Image = "ghcr.io/flowforge/../evil/w:1.4.0" }),
			[]string{"spec.template.spec.containers[0].image"}},
		{"images", "Docker Hub under the same name", withPod(func(p *corev1.PodSpec) { worker(p).Image = "flowforge/claude-worker:1.4.0" }),
			[]string{"spec.template.spec.containers[0].image"}},
	}
	for i, tc := range tests {
		t.Run(tc.class+"/"+tc.name, func(t *testing.T) {
			job := classJob(fmt.Sprintf("class-%d", i), tc.change)
			_, err := clientset.BatchV1().Jobs(ns).Create(context.Background(), job, classDryRun)
			refusedWith(t, err, tc.fields...)
		})
	}

	t.Run("lifecycle/parallelism raised on UPDATE", func(t *testing.T) {
		ctx := context.Background()
		job := classJob("scale-up", func(j *batchv1.Job) {
			j.Spec.Suspend = ptr.To(true)
			j.Spec.Parallelism = ptr.To[int32](2)
			j.Spec.Completions = ptr.To[int32](4)
		})
		_, err := clientset.BatchV1().Jobs(ns).Create(ctx, job, metav1.CreateOptions{})
		require.NoError(t, err)
		_, err = clientset.BatchV1().Jobs(ns).Patch(ctx, job.Name, types.MergePatchType, []byte(`{"spec":{"parallelism":400}}`), metav1.PatchOptions{DryRun: []string{metav1.DryRunAll}})
		refusedWith(t, err, "spec.parallelism")
		_, err = clientset.BatchV1().Jobs(ns).Patch(ctx, job.Name, types.MergePatchType, []byte(`{"spec":{"parallelism":4}}`), metav1.PatchOptions{DryRun: []string{metav1.DryRunAll}})
		require.NoError(t, err, "scaling within the maximum is fine")
	})
}

// TestMalformedReviewsAreRefused: class 9. The API server decodes and
// re-encodes every object, so a request whose object is not what its kind
// says can only be crafted by posting to the webhook itself; the webhook
// the API server calls refuses it as malformed, never hardens it.
func TestMalformedReviewsAreRefused(t *testing.T) {
	t.Parallel()
	ca, err := os.ReadFile(filepath.Join(hook.CertDir, "ca.crt"))
	require.NoError(t, err)
	pool := x509.NewCertPool()
	require.True(t, pool.AppendCertsFromPEM(ca))
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}}}
	pod := `{"apiVersion":"v1","kind":"Pod","metadata":{"name":"p","namespace":"agents","labels":{"app":"flowforge","job-id":"p","user-id":"u1"}},"spec":{"containers":[{"name":"c","image":"ghcr.io/flowforge/claude-worker:1.4.0","securityContext":{"privileged":true}}]}}`
	relabelled := strings.Replace(strings.Replace(pod, `"apiVersion":"v1"`, `"apiVersion":"batch/v1"`, 1), `"kind":"Pod"`, `"kind":"Job"`, 1)
	for _, path := range []string{"/mutate-batch-v1-job", "/validate-batch-v1-job"} {
		for name, object := range map[string]string{"a Pod sent as a Job": pod, "a Pod's body relabelled as a Job": relabelled} {
			t.Run(path+"/"+name, func(t *testing.T) {
				review := admissionv1.AdmissionReview{
					TypeMeta: metav1.TypeMeta{APIVersion: "admission.k8s.io/v1", Kind: "AdmissionReview"},
					Request: &admissionv1.AdmissionRequest{
						UID:       "malformed",
						Kind:      metav1.GroupVersionKind{Group: "batch", Version: "v1", Kind: "Job"},
						Resource:  metav1.GroupVersionResource{Group: "batch", Version: "v1", Resource: "jobs"},
						Namespace: "agents",
						Operation: admissionv1.Create,
						Object:    runtime.RawExtension{Raw: []byte(object)},
					},
				}
				body, err := json.Marshal(review)
				require.NoError(t, err)
				resp, err := client.Post(hook.URL+path, "application/json", bytes.NewReader(body))
				require.NoError(t, err)
				defer resp.Body.Close()
				data, err := io.ReadAll(resp.Body)
				require.NoError(t, err)
				require.Equal(t, http.StatusOK, resp.StatusCode, string(data))
				var answer admissionv1.AdmissionReview
				require.NoError(t, json.Unmarshal(data, &answer))
				require.NotNil(t, answer.Response)
				assert.False(t, answer.Response.Allowed)
				assert.Empty(t, answer.Response.Patch, "never hardened")
				require.NotNil(t, answer.Response.Result)
				assert.EqualValues(t, http.StatusBadRequest, answer.Response.Result.Code)
				assert.Contains(t, answer.Response.Result.Message, "not a decodable batch/v1")
			})
		}
	}
}

// TestBackoffLimitPerIndexJobIsAdmittedAndRuns: the false refusal. The API
// server fills in backoffLimit MaxInt32 for a Job with
// backoffLimitPerIndex and no backoffLimit; FlowForge keeps it, bounds the
// per-index limit instead, and the Job runs to completion.
func TestBackoffLimitPerIndexJobIsAdmittedAndRuns(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	ns := framework.Namespace(t, clientset, "per-index", nil)
	job := classJob("per-index", func(j *batchv1.Job) {
		j.Spec.CompletionMode = ptr.To(batchv1.IndexedCompletion)
		j.Spec.Completions = ptr.To[int32](2)
		j.Spec.Parallelism = ptr.To[int32](2)
		j.Spec.BackoffLimitPerIndex = ptr.To[int32](1)
		j.Spec.Template.Annotations = map[string]string{localcluster.AnnotationDuration: "300ms"}
	})
	got, err := clientset.BatchV1().Jobs(ns).Create(ctx, job, metav1.CreateOptions{})
	require.NoError(t, err)
	require.NotNil(t, got.Spec.BackoffLimit)
	assert.EqualValues(t, math.MaxInt32, *got.Spec.BackoffLimit, "the API server's default is kept")
	assert.Equal(t, "gvisor", ptr.Deref(got.Spec.Template.Spec.RuntimeClassName, ""), "hardened")
	assert.EqualValues(t, 30, ptr.Deref(got.Spec.Template.Spec.TerminationGracePeriodSeconds, 0))
	_, err = framework.WaitForJobCondition(ctx, clientset, ns, job.Name, batchv1.JobComplete)
	require.NoError(t, err)

	tooMany := classJob("per-index-high", func(j *batchv1.Job) {
		j.Spec.CompletionMode = ptr.To(batchv1.IndexedCompletion)
		j.Spec.Completions = ptr.To[int32](2)
		j.Spec.BackoffLimitPerIndex = ptr.To[int32](50)
	})
	_, err = clientset.BatchV1().Jobs(ns).Create(ctx, tooMany, classDryRun)
	refusedWith(t, err, "spec.backoffLimitPerIndex")
}

// TestLegitimateJobsAreAdmittedByTheAPIServer sends every Job of
// validate/testdata/legitimate-jobs.yaml through the real API server (its
// defaults included: terminationGracePeriodSeconds 30, the default
// scheduler, DefaultTolerationSeconds on pods, backoffLimit MaxInt32 next
// to backoffLimitPerIndex).
func TestLegitimateJobsAreAdmittedByTheAPIServer(t *testing.T) {
	t.Parallel()
	root, err := localcluster.ModuleRoot()
	require.NoError(t, err)
	data, err := os.ReadFile(filepath.Join(root, "validate/testdata/legitimate-jobs.yaml"))
	require.NoError(t, err)
	var jobs []struct {
		Name            string            `json:"name"`
		NamespaceLabels map[string]string `json:"namespaceLabels"`
		Job             batchv1.Job       `json:"job"`
	}
	require.NoError(t, yaml.UnmarshalStrict(data, &jobs))
	require.GreaterOrEqual(t, len(jobs), 30)
	nss := &namespaces{t: t, by: map[string]string{}}
	for _, c := range jobs {
		t.Run(c.Name, func(t *testing.T) {
			job := c.Job.DeepCopy()
			got, err := clientset.BatchV1().Jobs(nss.get(c.NamespaceLabels)).Create(context.Background(), job, classDryRun)
			require.NoError(t, err)
			assert.Equal(t, "gvisor", ptr.Deref(got.Spec.Template.Spec.RuntimeClassName, ""), "hardened")
		})
	}
}
