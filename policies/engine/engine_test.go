package engine

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-logr/logr"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	admissionv1 "k8s.io/api/admission/v1"
	authenticationv1 "k8s.io/api/authentication/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/wait"
	clocktesting "k8s.io/utils/clock/testing"
	"k8s.io/utils/ptr"
)

// A tiny policy set for engine tests: it echoes parts of its input so the
// tests can see what the engine passed in.
const (
	fixtureMutate = `package flowforge.mutate

patch contains {"setting": "seen", "op": "set", "path": ["metadata", "labels", "seen"], "value": data.flowforge.config.value} if input.request.object

patch contains {"setting": "ns", "op": "set", "path": ["metadata", "labels", "ns"], "value": input.namespace.labels.team} if input.namespace.labels.team

warn contains sprintf("user %s, dryRun %v, revision %s", [input.request.userInfo.username, input.request.dryRun, input.policy.revision]) if input.request.object
`
	fixtureValidate = `package flowforge.validate

deny contains {"msg": "bad is forbidden", "field": "metadata.labels[bad]"} if input.request.object.metadata.labels.bad

deny contains {"msg": "old was bad", "field": "metadata"} if input.request.oldObject.metadata.labels.bad

warn contains {"msg": "heads up", "field": "spec"} if input.request.object.spec.warn
`
	fixtureTest = `package flowforge.mutate_test

import data.flowforge.mutate

test_seen if {
	some op in mutate.patch with input as {"request": {"object": {}}}
	op.setting == "seen"
}
`
	// fixtureData is the smallest data that passes Config.Validate.
	fixtureData = "flowforge:\n  config:\n    release: r1\n    value: v1\n" +
		"    managedNamespaceLabel: {key: flowforge.io/managed, value: \"true\"}\n" +
		"    propagatedLabels: [app]\n" +
		"    annotations: {profile: flowforge.io/profile, timeout: flowforge.io/timeout, policyRevision: flowforge.io/policy-revision, repository: flowforge.io/repository, ttlSecondsAfterFinished: flowforge.io/ttl}\n" +
		"    images: {allowedRepositories: [{registry: ghcr.io, path: flowforge}], pinning: tag}\n" +
		"    resources: {defaultProfile: medium, profiles: {medium: {}}}\n" +
		"    job: {activeDeadlineSeconds: {default: 3600, max: 14400}, ttlSecondsAfterFinished: {default: 3600, max: 86400}}\n" +
		"    selector: {label: app, value: flowforge}\n"
)

// testedPolicies: the package's engines run a policy set's tests once per
// content, not at every engine they build (see TestedPolicies).
var testedPolicies = NewTestedPolicies()

func writePolicy(t *testing.T, dir string, files map[string]string) {
	t.Helper()
	for name, content := range files {
		path := filepath.Join(dir, name)
		require.NoError(t, os.MkdirAll(filepath.Dir(path), 0o755))
		require.NoError(t, os.WriteFile(path, []byte(content), 0o644))
	}
}

func fixtureDir(t *testing.T) string {
	dir := t.TempDir()
	writePolicy(t, dir, map[string]string{
		"mutate/m.rego":      fixtureMutate,
		"mutate/m_test.rego": fixtureTest,
		"validate/v.rego":    fixtureValidate,
		"data.yaml":          fixtureData,
		"samples/job.yaml":   "not: [data, ignored]\n",
		"README.md":          "ignored\n",
	})
	return dir
}

type countingRecorder struct {
	reloads, errors, evals atomic.Int64
	revision               atomic.Value
}

func (r *countingRecorder) PolicyReload(ok bool) {
	if ok {
		r.reloads.Add(1)
	} else {
		r.errors.Add(1)
	}
}
func (r *countingRecorder) PolicyEval(string, time.Duration) { r.evals.Add(1) }
func (r *countingRecorder) PolicyRevision(rev string)        { r.revision.Store(rev) }

func jobRequest(op admissionv1.Operation, object, old string) *admissionv1.AdmissionRequest {
	req := &admissionv1.AdmissionRequest{
		UID:       "u1",
		Kind:      metav1.GroupVersionKind{Group: "batch", Version: "v1", Kind: "Job"},
		Namespace: "agents",
		Operation: op,
		UserInfo:  authenticationv1.UserInfo{Username: "alice", Groups: []string{"devs"}},
		DryRun:    ptr.To(true),
		Object:    runtime.RawExtension{Raw: []byte(object)},
	}
	if old != "" {
		req.OldObject = runtime.RawExtension{Raw: []byte(old)}
	}
	return req
}

func TestEmbeddedPolicyLoads(t *testing.T) {
	e, err := New(context.Background(), Options{Tested: testedPolicies})
	require.NoError(t, err)
	st := e.Status()
	assert.Equal(t, "embedded", st.Source)
	assert.Regexp(t, `^[0-9-]+-[0-9a-f]{12}$`, st.Revision)
	assert.Greater(t, st.Tests, 20, "the embedded policies carry their tests")
	assert.Equal(t, st.Revision, e.Current().Revision)
	assert.Equal(t, "flowforge", e.Current().Config("selector", "value"))
	assert.Nil(t, e.Current().Config("no", "such", "key"))
}

func TestEvaluationSeesTheInput(t *testing.T) {
	rec := &countingRecorder{}
	e, err := New(context.Background(), Options{Tested: testedPolicies, Dir: fixtureDir(t), Recorder: rec})
	require.NoError(t, err)
	in := Input{Request: jobRequest(admissionv1.Create, `{"metadata":{"labels":{"bad":"yes"}},"spec":{"warn":true}}`, ""), NamespaceLabels: map[string]string{"team": "red"}}

	m, err := e.Mutate(context.Background(), in)
	require.NoError(t, err)
	assert.ElementsMatch(t, []Op{
		{Setting: "seen", Op: "set", Path: []any{"metadata", "labels", "seen"}, Value: "v1"},
		{Setting: "ns", Op: "set", Path: []any{"metadata", "labels", "ns"}, Value: "red"},
	}, m.Ops)
	assert.Equal(t, []string{"user alice, dryRun true, revision " + e.Current().Revision}, m.Warnings)

	v, err := e.Validate(context.Background(), in)
	require.NoError(t, err)
	assert.Equal(t, []Violation{{Msg: "bad is forbidden", Field: "metadata.labels[bad]"}}, v.Deny)
	assert.Equal(t, []Violation{{Msg: "heads up", Field: "spec"}}, v.Warn)
	assert.Equal(t, "metadata.labels[bad]: bad is forbidden", v.Deny[0].String())

	upd := Input{Request: jobRequest(admissionv1.Update, `{"metadata":{}}`, `{"metadata":{"labels":{"bad":"1"}}}`)}
	v, err = e.Validate(context.Background(), upd)
	require.NoError(t, err)
	assert.Equal(t, []Violation{{Msg: "old was bad", Field: "metadata"}}, v.Deny, "oldObject reaches the policy")
	assert.EqualValues(t, 3, rec.evals.Load())
	assert.Equal(t, e.Current().Revision, rec.revision.Load())
}

func TestBadInputIsAnError(t *testing.T) {
	e, err := New(context.Background(), Options{Tested: testedPolicies, Dir: fixtureDir(t)})
	require.NoError(t, err)
	_, err = e.Mutate(context.Background(), Input{})
	assert.ErrorContains(t, err, "no admission request")
	_, err = e.Validate(context.Background(), Input{Request: jobRequest(admissionv1.Create, `{"metadata":`, "")})
	assert.ErrorContains(t, err, "object")
}

func TestRefusedPolicies(t *testing.T) {
	tests := []struct {
		name  string
		files map[string]string
		want  string
	}{
		{name: "syntax error", files: map[string]string{"mutate/m.rego": "package flowforge.mutate\npatch contains if {"}, want: "load policies"},
		{name: "strict compile error", files: map[string]string{"mutate/m.rego": "package flowforge.mutate\nimport data.unused\npatch := set()\nwarn := set()\n"}, want: "compile"},
		{name: "failing test", files: map[string]string{"mutate/m_test.rego": "package flowforge.mutate_test\ntest_fails if { 1 == 2 }\n"}, want: "policy tests failed: data.flowforge.mutate_test.test_fails"},
		{name: "no tests", files: map[string]string{"mutate/m_test.rego": "package flowforge.other\n"}, want: "no tests"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := fixtureDir(t)
			writePolicy(t, dir, tc.files)
			rec := &countingRecorder{}
			_, err := New(context.Background(), Options{Tested: testedPolicies, Dir: dir, Recorder: rec})
			require.Error(t, err)
			assert.Contains(t, err.Error(), tc.want)
			assert.EqualValues(t, 1, rec.errors.Load())
		})
	}
	t.Run("empty directory", func(t *testing.T) {
		_, err := Load(context.Background(), os.DirFS(t.TempDir()))
		assert.ErrorContains(t, err, "no .rego modules")
	})
	t.Run("failure details", func(t *testing.T) {
		err := &TestsFailedError{Total: 3, Failures: []TestFailure{{Name: "p.test_a", Location: "a.rego:3", Err: errors.New("boom")}}}
		assert.Equal(t, "1 of 3 policy tests failed: p.test_a (a.rego:3): boom", err.Error())
	})
}

func TestReloadKeepsServingTheLastGoodPolicy(t *testing.T) {
	dir := fixtureDir(t)
	rec := &countingRecorder{}
	clk := clocktesting.NewFakeClock(time.Date(2026, 11, 27, 10, 0, 0, 0, time.UTC))
	e, err := New(context.Background(), Options{Tested: testedPolicies, Dir: dir, Recorder: rec, Clock: clk, Log: logr.Discard()})
	require.NoError(t, err)
	good := e.Current().Revision

	require.NoError(t, e.Reload(context.Background()), "reloading unchanged files is a no-op")
	assert.Equal(t, 0, e.Status().Reloads)

	writePolicy(t, dir, map[string]string{"mutate/m.rego": "package flowforge.mutate\npatch contains"})
	clk.Step(time.Minute)
	require.Error(t, e.Reload(context.Background()))
	st := e.Status()
	assert.Equal(t, good, st.Revision, "the previous policy keeps serving")
	assert.Contains(t, st.LastError, "rego_parse_error")
	assert.Equal(t, clk.Now(), st.LastErrorAt)
	assert.EqualValues(t, 1, rec.errors.Load())

	writePolicy(t, dir, map[string]string{"mutate/m.rego": strings.Replace(fixtureMutate, "data.flowforge.config.value", `"changed"`, 1)})
	require.NoError(t, e.Reload(context.Background()))
	st = e.Status()
	assert.NotEqual(t, good, st.Revision)
	assert.Empty(t, st.LastError, "a good reload clears the error")
	assert.Equal(t, 1, st.Reloads)
	assert.EqualValues(t, 1, rec.reloads.Load())
}

func TestUndoingAnEditReinstallsThePreviousPolicy(t *testing.T) {
	dir := fixtureDir(t)
	writePolicy(t, dir, map[string]string{"data.yaml": fixtureData +
		"    cache: {views: {mutate: [request, namespace.labels, policy.revision], validate: [request, namespace.labels, policy.revision]}}\n"})
	rec := &countingRecorder{}
	e, err := New(context.Background(), Options{Tested: testedPolicies, Dir: dir, Recorder: rec, Log: logr.Discard()})
	require.NoError(t, err)
	first := e.Current()

	writePolicy(t, dir, map[string]string{"mutate/m.rego": strings.Replace(fixtureMutate, "data.flowforge.config.value", `"changed"`, 1)})
	require.NoError(t, e.Reload(context.Background()))
	edited := e.Current()
	require.NotEqual(t, first.Revision, edited.Revision)
	_, err = e.Mutate(context.Background(), Input{Request: jobRequest(admissionv1.Create, `{"metadata":{}}`, "")})
	require.NoError(t, err)
	require.Equal(t, 1, edited.mutateQ.cache.len(), "the edit cached a decision")
	require.Equal(t, first, e.previous.policy, "the replaced policy is kept")

	// A broken edit on top is refused; undoing both edits serves the first
	// policy again, the very object that passed its load, with no decisions
	// left from its earlier term.
	writePolicy(t, dir, map[string]string{"mutate/broken.rego": "package flowforge.mutate\npatch contains"})
	require.Error(t, e.Reload(context.Background()))
	require.NoError(t, os.Remove(filepath.Join(dir, "mutate", "broken.rego")))
	writePolicy(t, dir, map[string]string{"mutate/m.rego": fixtureMutate})
	require.NoError(t, e.Reload(context.Background()))
	require.Same(t, first, e.Current(), "the previous policy, not a new load")
	st := e.Status()
	assert.Equal(t, first.Revision, st.Revision)
	assert.Empty(t, st.LastError, "the refusal no longer applies")
	assert.Equal(t, 2, st.Reloads)
	assert.EqualValues(t, 2, rec.reloads.Load())
	assert.Equal(t, first.Revision, rec.revision.Load())
	assert.Same(t, edited, e.previous.policy, "and the edit becomes the previous one")
	assert.Zero(t, edited.mutateQ.cache.len(), "a policy that stopped serving keeps no decisions")

	// A file the digest cannot read (a directory in place of a file is not
	// one) never matches: the reload is a full load.
	_, err = filesDigest(os.DirFS(filepath.Join(dir, "missing")))
	require.Error(t, err)
}

func TestWatchHotReloads(t *testing.T) {
	dir := fixtureDir(t)
	e, err := New(context.Background(), Options{Tested: testedPolicies, Dir: dir})
	require.NoError(t, err)
	first := e.Current().Revision
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- e.Watch(ctx) }()
	defer func() {
		cancel()
		require.NoError(t, <-done)
	}()

	<-e.watching
	// A new subdirectory is picked up as well as edits.
	writePolicy(t, dir, map[string]string{"extra/more.rego": "package flowforge.extra\n\nanswer := 42\n"})
	require.NoError(t, wait.PollUntilContextTimeout(context.Background(), 20*time.Millisecond, 30*time.Second, true, func(context.Context) (bool, error) {
		return e.Current().Revision != first, nil
	}), "the watcher reloads after a change")
}

func TestWatchWithEmbeddedPoliciesWaits(t *testing.T) {
	e, err := New(context.Background(), Options{Tested: testedPolicies})
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	assert.NoError(t, e.Watch(ctx))
}

func TestConcurrentEvaluationDuringReloads(t *testing.T) {
	dir := fixtureDir(t)
	e, err := New(context.Background(), Options{Tested: testedPolicies, Dir: dir})
	require.NoError(t, err)
	in := Input{Request: jobRequest(admissionv1.Create, `{"metadata":{}}`, "")}
	var wg sync.WaitGroup
	errs := make(chan error, 64)
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 50 {
				if _, err := e.Mutate(context.Background(), in); err != nil {
					errs <- err
				}
			}
		}()
	}
	for i := range 5 {
		writePolicy(t, dir, map[string]string{"data.yaml": strings.Replace(fixtureData, "v1", "v"+string(rune('2'+i)), 1)})
		require.NoError(t, e.Reload(context.Background()))
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	assert.Equal(t, 5, e.Status().Reloads)
}
