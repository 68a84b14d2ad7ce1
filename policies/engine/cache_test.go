package engine

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/flowforge/flowforge/policies"

	"github.com/go-logr/logr"
	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	admissionv1 "k8s.io/api/admission/v1"
	authenticationv1 "k8s.io/api/authentication/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/utils/ptr"
)

// fixtureViews declares the views of the engine tests' fixture policy.
const fixtureViews = `    cache:
      maxEntries: 2
      views:
        mutate: [request.object, request.userInfo.username, request.dryRun, namespace.labels, policy.revision]
        validate: [request.object, request.oldObject]
`

func cachedFixtureDir(t *testing.T) string {
	dir := fixtureDir(t)
	writePolicy(t, dir, map[string]string{"data.yaml": fixtureData + fixtureViews})
	return dir
}

// recordingCache records the cache lookups an engine reports.
type recordingCache struct {
	countingRecorder
	lookups []string
	entries int
}

func (r *recordingCache) PolicyCacheLookup(query, lookup string, entries int) {
	r.lookups = append(r.lookups, query+":"+lookup)
	r.entries = entries
}

func TestCacheHitsOnlyOnTheSameView(t *testing.T) {
	rec := &recordingCache{}
	e, err := New(context.Background(), Options{Tested: testedPolicies, Dir: cachedFixtureDir(t), Recorder: rec})
	require.NoError(t, err)
	ctx := context.Background()
	base := Input{Request: jobRequest(admissionv1.Create, `{"metadata":{"name":"a"}}`, ""), NamespaceLabels: map[string]string{"team": "x"}}
	first, err := e.Mutate(ctx, base)
	require.NoError(t, err)

	// The uid is not in the view: a second request for the same object is
	// a hit, with the same decision.
	again := base
	again.Request = base.Request.DeepCopy()
	again.Request.UID = "u2"
	second, err := e.Mutate(ctx, again)
	require.NoError(t, err)
	assert.Equal(t, first, second)
	assert.Equal(t, []string{"mutate:miss", "mutate:hit"}, rec.lookups)
	assert.Equal(t, 1, rec.entries)

	// Each field in the view is part of the key: changing it is a miss,
	// and the decision is that of a full evaluation.
	variants := map[string]func(*Input){
		"object":    func(in *Input) { in.Request.Object = runtime.RawExtension{Raw: []byte(`{"metadata":{"name":"b"}}`)} },
		"username":  func(in *Input) { in.Request.UserInfo = authenticationv1.UserInfo{Username: "bob"} },
		"dryRun":    func(in *Input) { in.Request.DryRun = ptr.To(false) },
		"namespace": func(in *Input) { in.NamespaceLabels = map[string]string{"team": "y"} },
	}
	for name, change := range variants {
		t.Run(name, func(t *testing.T) {
			in := base
			in.Request = base.Request.DeepCopy()
			change(&in)
			rec.lookups = nil
			got, err := e.Mutate(ctx, in)
			require.NoError(t, err)
			assert.Equal(t, []string{"mutate:miss"}, rec.lookups)
			want, _, err := e.Current().mutateWith(ctx, in, false)
			require.NoError(t, err)
			assert.Equal(t, want, got)
			if name != "object" { // the fixture's mutation does not depend on the name
				assert.NotEqual(t, first, got, "the fixture echoes the field")
			}
		})
	}
	stats := e.CacheStats()["mutate"]
	assert.True(t, stats.Enabled)
	assert.Equal(t, 2, stats.Entries, "bounded by maxEntries")
	assert.Equal(t, 2, stats.Capacity)
	assert.InDelta(t, 1.0/6, stats.HitRate(), 1e-9)
}

func TestCacheIsDroppedOnReload(t *testing.T) {
	dir := cachedFixtureDir(t)
	e, err := New(context.Background(), Options{Tested: testedPolicies, Dir: dir})
	require.NoError(t, err)
	in := Input{Request: jobRequest(admissionv1.Create, `{"metadata":{"name":"a"}}`, "")}
	_, err = e.Validate(context.Background(), in)
	require.NoError(t, err)
	_, err = e.Validate(context.Background(), in)
	require.NoError(t, err)
	require.Equal(t, uint64(1), e.CacheStats()["validate"].Hits)

	writePolicy(t, dir, map[string]string{"data.yaml": strings.Replace(fixtureData+fixtureViews, "r1", "r2", 1)})
	require.NoError(t, e.Reload(context.Background()))
	assert.Equal(t, CacheStats{Enabled: true, Capacity: 2}, e.CacheStats()["validate"], "a new revision starts empty")
	v, err := e.Validate(context.Background(), in)
	require.NoError(t, err)
	assert.True(t, strings.HasPrefix(v.Revision, "r2-"))
}

func TestPolicyReadingOutsideItsViewsIsRefused(t *testing.T) {
	dir := cachedFixtureDir(t)
	writePolicy(t, dir, map[string]string{"validate/v.rego": fixtureValidate + `
deny contains {"msg": "no alice", "field": "user"} if object.get(input.request, ["userInfo", "username"], "") == "alice"
`})
	_, err := New(context.Background(), Options{Tested: testedPolicies, Dir: dir})
	var viewErr *ViewError
	require.ErrorAs(t, err, &viewErr)
	assert.Equal(t, "validate", viewErr.Query)
	assert.Contains(t, err.Error(), "input.request.userInfo.username read by data.flowforge.validate.deny at validate/v.rego:")
	assert.Contains(t, err.Error(), "data.flowforge.config.cache.views.validate")
}

func TestViewAnalysis(t *testing.T) {
	tests := []struct {
		name   string
		rule   string
		reads  []string
		reason string
	}{
		{name: "reference", rule: `deny contains 1 if input.request.object.spec.x`, reads: []string{"input.request.object.spec.x"}},
		{name: "reference with a variable", rule: `deny contains 1 if input.images[x].error`, reads: []string{"input.images"}},
		{name: "object.get", rule: `deny contains 1 if object.get(input, ["namespace", "labels"], {}).a`, reads: []string{"input.namespace.labels"}},
		{name: "object.get with a variable key", rule: `deny contains x if { some x in ["a"]; object.get(input, ["claims", x], 1) }`, reads: []string{"input.claims"}},
		{name: "object.get with a string key", rule: `deny contains 1 if object.get(input.request, "name", "") == "a"`, reads: []string{"input.request.name"}},
		{name: "through a rule", rule: "o := input.request.object\n\ndeny contains 1 if o.a", reads: []string{"input.request.object"}},
		{name: "whole input", rule: `deny contains 1 if count(input) > 1`, reads: []string{"input"}},
		{name: "with", rule: "o := input.request.object\n\ndeny contains 1 if { o with input.request.object as input.request.oldObject }", reads: []string{"input.request.object", "input.request.oldObject"}},
		{name: "non-deterministic", rule: `deny contains 1 if time.now_ns() > 0`, reason: "non-deterministic builtin time.now_ns"},
		{name: "walk", rule: `deny contains 1 if { walk(input, [p, v]); v == "x" }`, reason: "walk over input"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := compileFixture(t, "package flowforge.validate\n\n"+tc.rule+"\n")
			a, err := analyzeQuery(c, validateRoots[:1])
			require.NoError(t, err)
			if tc.reason != "" {
				assert.Contains(t, a.uncacheable, tc.reason)
				return
			}
			assert.Empty(t, a.uncacheable)
			var got []string
			for _, r := range a.reads {
				got = append(got, r.path.String())
			}
			assert.Equal(t, tc.reads, got)
		})
	}
}

func TestUncacheableQueriesAreEvaluatedInFull(t *testing.T) {
	dir := cachedFixtureDir(t)
	writePolicy(t, dir, map[string]string{"validate/v.rego": fixtureValidate + `
deny contains {"msg": "late", "field": "time"} if time.now_ns() < 0
`})
	e, err := New(context.Background(), Options{Tested: testedPolicies, Dir: dir})
	require.NoError(t, err)
	in := Input{Request: jobRequest(admissionv1.Create, `{"metadata":{"labels":{"bad":true}}}`, "")}
	for range 2 {
		v, err := e.Validate(context.Background(), in)
		require.NoError(t, err)
		assert.Equal(t, []Violation{{Msg: "bad is forbidden", Field: "metadata.labels[bad]"}}, v.Deny)
	}
	st := e.CacheStats()["validate"]
	assert.False(t, st.Enabled)
	assert.Contains(t, st.Reason, "time.now_ns")
	assert.True(t, e.CacheStats()["mutate"].Enabled)
}

func TestBadCacheConfigIsRefused(t *testing.T) {
	tests := map[string]string{
		"maxEntries": "    cache:\n      maxEntries: -1\n      views: {mutate: [request], validate: [request]}\n",
		"views":      "    cache:\n      views: {mutate: request, validate: [request]}\n",
		"empty key":  "    cache:\n      views: {mutate: [request..object], validate: [request]}\n",
	}
	for name, cfg := range tests {
		t.Run(name, func(t *testing.T) {
			dir := fixtureDir(t)
			writePolicy(t, dir, map[string]string{"data.yaml": fixtureData + cfg})
			_, err := New(context.Background(), Options{Tested: testedPolicies, Dir: dir})
			require.ErrorContains(t, err, "data.flowforge.config.cache")
		})
	}
	t.Run("no section: uncached", func(t *testing.T) {
		e, err := New(context.Background(), Options{Tested: testedPolicies, Dir: fixtureDir(t)})
		require.NoError(t, err)
		assert.Equal(t, CacheStats{Reason: errNoViews.Error()}, e.CacheStats()["mutate"])
	})
	t.Run("zero entries: uncached", func(t *testing.T) {
		dir := fixtureDir(t)
		writePolicy(t, dir, map[string]string{"data.yaml": fixtureData + strings.Replace(fixtureViews, "maxEntries: 2", "maxEntries: 0", 1)})
		e, err := New(context.Background(), Options{Tested: testedPolicies, Dir: dir})
		require.NoError(t, err)
		assert.False(t, e.CacheStats()["validate"].Enabled)
	})
}

func TestErrorsAreNotCached(t *testing.T) {
	e, err := New(context.Background(), Options{Tested: testedPolicies, Dir: cachedFixtureDir(t)})
	require.NoError(t, err)
	_, err = e.Mutate(context.Background(), Input{})
	require.Error(t, err)
	_, err = e.Mutate(context.Background(), Input{Request: jobRequest(admissionv1.Create, `{"a":`, "")})
	require.Error(t, err)
	assert.Zero(t, e.CacheStats()["mutate"].Entries)
}

// TestDistinctJobsNeverShareAnEntry: two Jobs that differ only in a field
// a shape rule reads (here: each field the served policy's tests vary) get
// different keys, two that differ only in a masked value (a job-id, a name,
// a secret name, a task) share one; each gets its full evaluation's
// decision, identity rules included.
func TestDistinctJobsNeverShareAnEntry(t *testing.T) {
	ctx := context.Background()
	cached, err := New(ctx, Options{Tested: testedPolicies})
	require.NoError(t, err)
	uncached, err := New(ctx, Options{Tested: testedPolicies, DisableCache: true})
	require.NoError(t, err)
	raw, err := os.ReadFile("testdata/bench-job.json")
	require.NoError(t, err)
	withSecret := func(name string) func(j map[string]any) {
		return func(j map[string]any) {
			container(j)["env"] = []any{map[string]any{"name": "T", "valueFrom": map[string]any{"secretKeyRef": map[string]any{"name": name, "key": "k"}}}}
		}
	}
	shape := map[string]func(job map[string]any){
		"none":       func(map[string]any) {},
		"privileged": func(j map[string]any) { container(j)["securityContext"] = map[string]any{"privileged": true} },
		"image":      func(j map[string]any) { container(j)["image"] = "docker.io/library/busybox:latest" },
		"timeout":    func(j map[string]any) { dig(j, "metadata", "annotations")["flowforge.io/timeout"] = "5m" },
		"profile":    func(j map[string]any) { dig(j, "metadata", "annotations")["flowforge.io/profile"] = "large" },
		"secret":     withSecret("x"),
		"no job-id":  func(j map[string]any) { dig(j, "metadata", "labels")["job-id"] = "" },
		"task":       func(j map[string]any) { dig(j, "metadata", "annotations")["flowforge.io/task"] = "fix it" },
	}
	// identity edits change only masked values: each shares the key of
	// the shape edit named beside it.
	identity := map[string]struct {
		like string
		edit func(job map[string]any)
	}{
		"job-id":      {"none", func(j map[string]any) { dig(j, "metadata", "labels")["job-id"] = "other" }},
		"name":        {"none", func(j map[string]any) { dig(j, "metadata")["name"] = "other" }},
		"other task":  {"task", func(j map[string]any) { dig(j, "metadata", "annotations")["flowforge.io/task"] = "other" }},
		"secret name": {"secret", withSecret("git-credentials-other")},
	}
	decide := func(name string, edit func(map[string]any)) map[string]string {
		var job map[string]any
		require.NoError(t, json.Unmarshal(raw, &job))
		edit(job)
		obj, err := json.Marshal(job)
		require.NoError(t, err)
		in := Input{Request: &admissionv1.AdmissionRequest{
			UID: "x", Kind: benchKind, Namespace: "agents", Operation: admissionv1.Create,
			Object: runtime.RawExtension{Raw: obj},
		}, NamespaceLabels: map[string]string{"kubernetes.io/metadata.name": "agents"}}
		p := cached.Current()
		value, err := p.inputValue(in)
		require.NoError(t, err)
		keys := map[string]string{}
		for _, q := range []*cachedQuery{p.mutateQ, p.validateQ} {
			key, err := q.keyOf(value)
			require.NoError(t, err)
			keys[q.name] = hex.EncodeToString(key[:])
		}
		for range 2 {
			gotM, err := cached.Mutate(ctx, in)
			require.NoError(t, err)
			wantM, err := uncached.Mutate(ctx, in)
			require.NoError(t, err)
			assert.ElementsMatch(t, wantM.Ops, gotM.Ops, name)
			gotV, err := cached.Validate(ctx, in)
			require.NoError(t, err)
			wantV, err := uncached.Validate(ctx, in)
			require.NoError(t, err)
			assert.Equal(t, wantV, gotV, name)
		}
		return keys
	}
	seen := map[string]string{}
	shapeKeys := map[string]map[string]string{}
	for name, edit := range shape {
		shapeKeys[name] = decide(name, edit)
		for _, key := range shapeKeys[name] {
			if other, dup := seen[key]; dup {
				t.Fatalf("%s and %s share a key", name, other)
			}
			seen[key] = name
		}
	}
	for name, tc := range identity {
		assert.Equal(t, shapeKeys[tc.like], decide(name, tc.edit), "%s shares the entry of %s", name, tc.like)
	}
	assert.Equal(t, uint64(len(shape)+2*len(identity)), cached.CacheStats()["mutate"].Hits)
}

var benchKind = metav1.GroupVersionKind{Group: "batch", Version: "v1", Kind: "Job"}

// compileFixture compiles one module as load compiles the policy.
func compileFixture(t *testing.T, module string) *ast.Compiler {
	t.Helper()
	m, err := ast.ParseModuleWithOpts("fixture.rego", module, ast.ParserOptions{RegoVersion: ast.RegoV1})
	require.NoError(t, err)
	c := ast.NewCompiler().WithStrict(true).WithDefaultRegoVersion(ast.RegoV1)
	c.Compile(map[string]*ast.Module{"fixture.rego": m})
	require.False(t, c.Failed(), "%v", c.Errors)
	return c
}

func dig(obj map[string]any, path ...string) map[string]any {
	for _, k := range path {
		next, ok := obj[k].(map[string]any)
		if !ok {
			next = map[string]any{}
			obj[k] = next
		}
		obj = next
	}
	return obj
}

func container(job map[string]any) map[string]any {
	return dig(job, "spec", "template", "spec")["containers"].([]any)[0].(map[string]any)
}

func TestDecisionCacheLRU(t *testing.T) {
	c := newDecisionCache(2)
	k := func(b byte) cacheKey { return cacheKey{b} }
	c.put(k(1), "a")
	c.put(k(2), "b")
	_, ok := c.get(k(1)) // 1 is now the most recently used
	require.True(t, ok)
	c.put(k(3), "c")
	_, ok = c.get(k(2))
	assert.False(t, ok, "the least recently used entry went first")
	v, ok := c.get(k(1))
	assert.True(t, ok)
	assert.Equal(t, "a", v)
	c.put(k(1), "a2")
	v, _ = c.get(k(1))
	assert.Equal(t, "a2", v)
	assert.Equal(t, CacheStats{Entries: 2, Capacity: 2, Hits: 3, Misses: 1}, c.stats())
}

func TestViewErrorMessage(t *testing.T) {
	err := error(&ViewError{Query: "mutate", Reads: []string{"input.request.uid read by x at y:1"}})
	var ve *ViewError
	require.True(t, errors.As(err, &ve))
	assert.Equal(t, "policy query mutate reads input outside its declared views (data.flowforge.config.cache.views.mutate): input.request.uid read by x at y:1; declare the path there, or read only what the views cover", err.Error())
}

// TestCacheIsSafeForConcurrentUse: run with -race. Concurrent requests on
// a few views share entries and each gets the full evaluation's decision.
func TestCacheIsSafeForConcurrentUse(t *testing.T) {
	e, err := New(context.Background(), Options{Tested: testedPolicies, Dir: cachedFixtureDir(t)})
	require.NoError(t, err)
	inputs := []Input{
		{Request: jobRequest(admissionv1.Create, `{"metadata":{"labels":{"bad":true}}}`, "")},
		{Request: jobRequest(admissionv1.Create, `{"spec":{"warn":true}}`, "")},
		{Request: jobRequest(admissionv1.Create, `{"metadata":{}}`, ""), NamespaceLabels: map[string]string{"team": "t"}},
	}
	want := make([]*Validation, len(inputs))
	for i, in := range inputs {
		want[i], _, err = e.Current().validateWith(context.Background(), in, false)
		require.NoError(t, err)
	}
	var wg sync.WaitGroup
	errs := make(chan error, 64)
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 30 {
				k := (g + i) % len(inputs)
				if _, err := e.Mutate(context.Background(), inputs[k]); err != nil {
					errs <- err
					return
				}
				v, err := e.Validate(context.Background(), inputs[k])
				if err != nil {
					errs <- err
					return
				}
				if !assert.Equal(t, want[k], v) {
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
	assert.NotZero(t, e.CacheStats()["validate"].Hits)
}

func TestUndoingARefusedEditClearsTheRefusal(t *testing.T) {
	dir := cachedFixtureDir(t)
	e, err := New(context.Background(), Options{Tested: testedPolicies, Dir: dir, Log: logr.Discard()})
	require.NoError(t, err)
	good := e.Current().Revision
	outside := fixtureValidate + "\ndeny contains {\"msg\": \"x\", \"field\": \"y\"} if input.request.uid == \"u\"\n"
	writePolicy(t, dir, map[string]string{"validate/v.rego": outside})
	require.ErrorContains(t, e.Reload(context.Background()), "input.request.uid read by data.flowforge.validate.deny")
	assert.NotEmpty(t, e.Status().LastError)
	writePolicy(t, dir, map[string]string{"validate/v.rego": fixtureValidate})
	require.NoError(t, e.Reload(context.Background()))
	assert.Equal(t, good, e.Status().Revision)
	assert.Empty(t, e.Status().LastError, "the files serve again as they are")
}

// TestIdentityQueryServesWhatTheShapeLeavesOut: the served policy's deny
// and warn are exactly the unions of shape_* and identity_*, so the
// identity rules are served by their own query; a rule that adds to deny
// directly makes the engine serve deny without the shape instead, so that
// the rule is evaluated, uncached, on every request.
func TestIdentityQueryServesWhatTheShapeLeavesOut(t *testing.T) {
	ctx := context.Background()
	// (The served policy's use of identityQuery is checked with the
	// policy tests' inputs in TestViewGivesTheFullDecisionOnEveryPolicyTestInput.)
	dir := t.TempDir()
	require.NoError(t, os.CopyFS(dir, policies.Embedded()))
	writePolicy(t, dir, map[string]string{"validate/extra/extra.rego": `package flowforge.validate

deny contains {"msg": "mallory may not", "field": "metadata"} if input.request.userInfo.username == "mallory.extra"
`})
	e, err := New(ctx, Options{Tested: testedPolicies, Dir: dir})
	require.NoError(t, err)
	assert.Equal(t, otherwiseQuery, e.Current().identityText)
	evaluator, reason := e.Current().IdentityEvaluator()
	assert.Equal(t, "topdown", evaluator)
	assert.Contains(t, reason, "adds to deny or warn directly")
	raw, err := os.ReadFile("testdata/bench-job.json")
	require.NoError(t, err)
	for _, user := range []string{"mallory.extra", "bob", "mallory.extra"} {
		in := Input{Request: &admissionv1.AdmissionRequest{
			UID: "x", Kind: benchKind, Namespace: "agents", Operation: admissionv1.Create,
			Object: runtime.RawExtension{Raw: raw}, UserInfo: authenticationv1.UserInfo{Username: user},
		}, NamespaceLabels: map[string]string{"kubernetes.io/metadata.name": "agents"}}
		v, err := e.Validate(ctx, in)
		require.NoError(t, err)
		assert.Equal(t, user == "mallory.extra", slices.Contains(v.Deny, Violation{Msg: "mallory may not", Field: "metadata"}), user)
		assert.NotEmpty(t, v.Deny, "the identity rules still deny (the bench Job has no claims)")
	}
	assert.Equal(t, uint64(2), e.CacheStats()["validate"].Hits, "the shape is cached all the same")
}

// TestVerifiedIsSharedByOneView: a mutation's verified mark belongs to
// its cached decision, so objects of one (masked) view share it, and an
// uncached decision never carries one.
func TestVerifiedIsSharedByOneView(t *testing.T) {
	ctx := context.Background()
	dir := fixtureDir(t)
	writePolicy(t, dir, map[string]string{"data.yaml": fixtureData + fixtureViews + "      masks:\n        object:\n          - [metadata, name]\n"})
	for _, disable := range []bool{false, true} {
		e, err := New(ctx, Options{Tested: testedPolicies, Dir: dir, DisableCache: disable})
		require.NoError(t, err)
		first, err := e.Mutate(ctx, Input{Request: jobRequest(admissionv1.Create, `{"metadata":{"name":"a1"}}`, "")})
		require.NoError(t, err)
		assert.False(t, first.Verified())
		first.MarkVerified()
		second, err := e.Mutate(ctx, Input{Request: jobRequest(admissionv1.Create, `{"metadata":{"name":"b2"}}`, "")})
		require.NoError(t, err)
		assert.Equal(t, !disable, second.Verified(), "cache disabled: %v", disable)
		other, err := e.Mutate(ctx, Input{Request: jobRequest(admissionv1.Create, `{"metadata":{"name":"c3","labels":{"x":"y"}}}`, "")})
		require.NoError(t, err)
		assert.False(t, other.Verified(), "another view, another decision")
	}
	assert.False(t, (&Mutation{}).Verified())
	(&Mutation{}).MarkVerified() // no mark to set: nothing happens
}
