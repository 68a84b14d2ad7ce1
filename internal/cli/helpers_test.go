package cli

import (
	"bytes"
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-logr/logr"
	"github.com/stretchr/testify/require"
	authenticationv1 "k8s.io/api/authentication/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/fake"
	"k8s.io/client-go/rest"
	k8stesting "k8s.io/client-go/testing"

	"github.com/flowforge/flowforge/contract"
	"github.com/flowforge/flowforge/history"
	historyapi "github.com/flowforge/flowforge/history/apiserver"
	historystore "github.com/flowforge/flowforge/history/store"
	"github.com/flowforge/flowforge/jobs"
	"github.com/flowforge/flowforge/policies/engine"
	"github.com/flowforge/flowforge/templates"
)

// testNS is the namespace of the agent Jobs: the --namespace default.
const testNS = jobs.DefaultNamespace

// t0 is "now" for every command under test, so ages and durations are exact.
var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

var jobsGVR = batchv1.SchemeGroupVersion.WithResource("jobs")

// harness runs the flowforge command tree against a fake clientset, with a
// fixed clock and captured streams.
type harness struct {
	t        *testing.T
	cs       *fake.Clientset
	now      time.Time
	stdin    string
	terminal bool
	// clientErr and clientsetErr make the cluster unreachable.
	clientErr    error
	clientsetErr error
	// namespaces records the namespace each Jobs client was built for.
	namespaces []string
	// refresh is deps.refresh: 0 (the default here) draws the terminal's
	// status line only when the job changes.
	refresh time.Duration
	// hist serves the history API (withHistory); without it the cluster
	// does not serve history.flowforge.io (a 404 for every request, as
	// when the APIService is missing). historyURL, if set, replaces both.
	hist       *historyServer
	historyURL string
}

// withHistory makes the cluster serve the history of srv.
func (h *harness) withHistory(srv *historyServer) *harness {
	h.hist = srv
	return h
}

// newHarness returns a harness whose cluster holds objs.
func newHarness(t *testing.T, objs ...runtime.Object) *harness {
	t.Helper()
	cs := fake.NewClientset(objs...)
	// The API server authenticates the CLI as testUser (what a
	// SelfSubjectReview, kubectl auth whoami, answers).
	cs.PrependReactor("create", "selfsubjectreviews", func(k8stesting.Action) (bool, runtime.Object, error) {
		return true, &authenticationv1.SelfSubjectReview{Status: authenticationv1.SelfSubjectReviewStatus{
			UserInfo: authenticationv1.UserInfo{Username: testUser},
		}}, nil
	})
	return &harness{t: t, cs: cs, now: t0}
}

// testUser is who the fake API server authenticates the CLI as.
const testUser = "dana@example.com"

// testedPolicies: the policy commands run the embedded policy's tests once
// for the package, not at every command line.
var testedPolicies = engine.NewTestedPolicies()

// result is what one command line did.
type result struct {
	code     int
	out, err string
}

func (h *harness) deps() deps {
	fast := wait.Backoff{Duration: time.Millisecond, Factor: 1, Steps: 3, Cap: 2 * time.Millisecond}
	return deps{
		newClient: func(o *options) (*jobs.Client, error) {
			if h.clientErr != nil {
				return nil, h.clientErr
			}
			h.namespaces = append(h.namespaces, o.namespace)
			return jobs.New(h.cs, nil, jobs.Options{
				Namespace: o.namespace, RequestTimeout: o.timeout,
				Backoff: fast, ReconnectBackoff: fast,
				// Logs -f waits this long after the Job ended for its pods
				// to show up; they come at once from the fake clientset, so
				// a long drain costs nothing and rules out a race.
				LogDrain: 5 * time.Second,
			})
		},
		clientset: func(*options) (kubernetes.Interface, error) {
			if h.clientsetErr != nil {
				return nil, h.clientsetErr
			}
			return h.cs, nil
		},
		history: func(o *options) (historyReader, error) {
			if h.clientsetErr != nil {
				return nil, h.clientsetErr
			}
			url := h.historyURL
			switch {
			case url != "":
			case h.hist != nil:
				url = h.hist.URL
			default:
				unserved := httptest.NewServer(http.NotFoundHandler())
				h.t.Cleanup(unserved.Close)
				url = unserved.URL
			}
			return history.NewAPIClient(&rest.Config{Host: url, Timeout: o.timeout}, o.namespace)
		},
		now:     func() time.Time { return h.now },
		refresh: h.refresh,
		tested:  testedPolicies,
	}
}

// run executes one command line and returns its exit code and outputs.
func (h *harness) run(args ...string) result {
	h.t.Helper()
	// A bound against a hang, not a timing: `policy apply` and `policy
	// test` run the policy's 300-odd tests, a dozen of them at once in
	// parallel tests, which took over 30 s at load average 25 on 2 cores.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	var out, errb bytes.Buffer
	streams := Streams{In: strings.NewReader(h.stdin), Out: &out, Err: &errb, IsTerminal: h.terminal}
	code := run(ctx, newRootCommandWith(streams, h.deps()), args, streams)
	return result{code: code, out: out.String(), err: errb.String()}
}

// job reads a Job from the fake cluster.
func (h *harness) job(id string) *batchv1.Job {
	h.t.Helper()
	obj, err := h.cs.Tracker().Get(jobsGVR, testNS, contract.JobName(id))
	require.NoError(h.t, err)
	return obj.(*batchv1.Job)
}

// scriptWatch makes every watch of Jobs deliver the Job as it is in the
// cluster when the watch starts, changed by each step in turn, as
// Modified events. The watch then stays open.
func (h *harness) scriptWatch(id string, steps ...func(*batchv1.Job)) {
	h.cs.PrependWatchReactor("jobs", func(k8stesting.Action) (bool, watch.Interface, error) {
		obj, err := h.cs.Tracker().Get(jobsGVR, testNS, contract.JobName(id))
		if err != nil {
			return true, nil, err
		}
		base := obj.(*batchv1.Job)
		w := watch.NewFakeWithChanSize(len(steps), false)
		for i, step := range steps {
			j := base.DeepCopy()
			j.ResourceVersion = base.ResourceVersion + "-" + string(rune('a'+i))
			step(j)
			w.Modify(j)
		}
		return true, w, nil
	})
}

// hardenOnCreate simulates the admission webhook: the stored Job gets a
// runtime class and the policy revision annotation.
func (h *harness) hardenOnCreate(revision string) {
	h.cs.PrependReactor("create", "jobs", func(a k8stesting.Action) (bool, runtime.Object, error) {
		job := a.(k8stesting.CreateAction).GetObject().(*batchv1.Job).DeepCopy()
		job.Spec.Template.Spec.RuntimeClassName = new("gvisor")
		job.Annotations[contract.AnnotationPolicyRevision] = revision
		job.UID = types.UID("uid-" + job.Name)
		if err := h.cs.Tracker().Create(jobsGVR, job, job.Namespace); err != nil {
			return true, nil, err
		}
		return true, job, nil
	})
}

func testRequest(id string) templates.Request {
	return templates.Request{
		ID:            id,
		UserID:        "alice",
		Repository:    "acme/widgets",
		RepositoryURL: "https://github.com/acme/widgets.git",
		Branch:        "fix-" + id,
		Task:          "Fix the flaky test.",
	}
}

// submitArgs are the flags of testRequest(id).
func submitArgs(id string, extra ...string) []string {
	r := testRequest(id)
	return append([]string{"submit", "--id", r.ID, "--user", r.UserID, "--repository", r.Repository,
		"--repository-url", r.RepositoryURL, "--branch", r.Branch, "--task", r.Task}, extra...)
}

// clusterJob is the Job the renderer makes of req, as stored in the
// cluster, created ten minutes before t0.
func clusterJob(t *testing.T, req templates.Request, change ...func(*batchv1.Job)) *batchv1.Job {
	t.Helper()
	r, err := templates.NewRenderer(templates.RendererOptions{})
	require.NoError(t, err)
	out, err := r.Render(req)
	require.NoError(t, err)
	job := out.Job.DeepCopy()
	job.Namespace = testNS
	job.UID = types.UID("uid-" + req.ID)
	job.ResourceVersion = "1"
	job.CreationTimestamp = metav1.NewTime(t0.Add(-10 * time.Minute))
	for _, c := range change {
		c(job)
	}
	return job
}

// Job states.

func started(j *batchv1.Job) {
	j.Status.StartTime = &metav1.Time{Time: t0.Add(-9 * time.Minute)}
}

func running(j *batchv1.Job) {
	started(j)
	j.Status.Active, j.Status.Ready = 1, new(int32(1))
}

func finished(typ batchv1.JobConditionType, reason, message string) func(*batchv1.Job) {
	return func(j *batchv1.Job) {
		started(j)
		j.Status.Active, j.Status.Ready = 0, new(int32(0))
		end := metav1.NewTime(t0.Add(-2 * time.Minute))
		j.Status.Conditions = append(j.Status.Conditions, batchv1.JobCondition{
			Type: typ, Status: corev1.ConditionTrue, Reason: reason, Message: message, LastTransitionTime: end,
		})
		if typ == batchv1.JobComplete {
			j.Status.Succeeded, j.Status.CompletionTime = 1, &end
		} else {
			j.Status.Failed = 2
		}
	}
}

var (
	succeeded = finished(batchv1.JobComplete, "CompletionsReached", "")
	failed    = finished(batchv1.JobFailed, batchv1.JobReasonBackoffLimitExceeded, "Job has reached the specified backoff limit")
	timedOut  = finished(batchv1.JobFailed, batchv1.JobReasonDeadlineExceeded, "Job was active longer than specified deadline")
)

func cancelled(j *batchv1.Job) {
	j.Annotations[contract.AnnotationCancelRequestedBy] = "bob"
	j.Annotations[contract.AnnotationCancelReason] = "wrong branch"
	j.Annotations[contract.AnnotationCancelRequestedAt] = t0.Add(-3 * time.Minute).Format(time.RFC3339)
	j.Annotations[contract.AnnotationTerminationReason] = contract.TerminationCancelled
	finished(batchv1.JobFailed, "PodFailurePolicy", "cancelled")(j)
}

// pod is a started pod of a Job, as the Job controller labels it.
func pod(job *batchv1.Job, name string, created time.Time) *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{
			Name: name, Namespace: job.Namespace, CreationTimestamp: metav1.NewTime(created),
			Labels: map[string]string{batchv1.ControllerUidLabel: string(job.UID)},
		},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "worker"}}},
		Status: corev1.PodStatus{
			Phase: corev1.PodRunning,
			ContainerStatuses: []corev1.ContainerStatus{{
				Name: "worker", State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{}},
			}},
		},
	}
}

// historyServer serves the real history API server's handler (the API
// server's proxy path, without authentication) on an in-memory store. It
// records the Authorization header of each request.
type historyServer struct {
	URL   string
	store *historystore.SQLite
	srv   *httptest.Server

	mu   sync.Mutex
	auth []string
	path []string
}

// requests returns the Authorization headers and paths seen so far.
func (s *historyServer) requests() (auth, path []string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.auth), slices.Clone(s.path)
}

// close stops serving, leaving the URL unreachable.
func (s *historyServer) close() { s.srv.Close() }

func newHistoryServer(t *testing.T) *historyServer {
	t.Helper()
	ctx := context.Background()
	store, err := historystore.OpenSQLite(ctx, ":memory:")
	require.NoError(t, err)
	t.Cleanup(func() { _ = store.Close() })
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	t.Cleanup(func() { _ = l.Close() })
	api, err := historyapi.New(ctx, historyapi.Options{Store: store, Listener: l, Log: logr.Discard()})
	require.NoError(t, err)
	hs := &historyServer{store: store}
	hs.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hs.mu.Lock()
		hs.auth = append(hs.auth, r.Header.Get("Authorization"))
		hs.path = append(hs.path, r.URL.Path)
		hs.mu.Unlock()
		api.Handler().ServeHTTP(w, r)
	}))
	t.Cleanup(hs.srv.Close)
	hs.URL = hs.srv.URL
	return hs
}

// addJob records a job, with its attempts.
func (s *historyServer) addJob(t *testing.T, j history.Job, attempts ...history.Attempt) {
	t.Helper()
	ctx := context.Background()
	require.NoError(t, s.store.UpsertJob(ctx, j))
	for _, a := range attempts {
		a.JobUID = j.UID
		_, err := s.store.UpsertAttempt(ctx, a)
		require.NoError(t, err)
	}
}

// addLogs archives the logs of one container of one attempt.
func (s *historyServer) addLogs(t *testing.T, jobUID string, attempt int, pod, container, text string) {
	t.Helper()
	gz, size, truncated, err := history.Compress(strings.NewReader(text), 1<<20)
	require.NoError(t, err)
	require.NoError(t, s.store.PutLogArchive(context.Background(), history.LogArchive{
		PodUID: pod + "-uid", JobUID: jobUID, Attempt: attempt, Pod: pod, Container: container,
		Gzip: gz, Size: size, Truncated: truncated,
	}))
}

func at(d time.Duration) *time.Time {
	v := t0.Add(d)
	return &v
}

// lines splits output into trimmed, non-empty lines.
func lines(s string) []string {
	var out []string
	for l := range strings.SplitSeq(s, "\n") {
		if l = strings.TrimSpace(l); l != "" {
			out = append(out, l)
		}
	}
	return out
}

// fields splits each line of a table into its columns.
func fields(s string) [][]string {
	var out [][]string
	for _, l := range lines(s) {
		out = append(out, strings.Fields(l))
	}
	return out
}
