package mutate

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	jsonpatch "github.com/evanphx/json-patch/v5"
	"github.com/stretchr/testify/require"
	admissionv1 "k8s.io/api/admission/v1"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	"sigs.k8s.io/yaml"

	"github.com/flowforge/flowforge/policies/engine"
)

// The tests in this file prove the two shortcuts of the hardening path:
// the decision cache (policies/cache.go) and the patch built from the
// decision (patch.go). For every input of the corpus, the cached handler
// (on a miss and again on a hit) answers exactly as the reference: a full
// evaluation without the cache, applied, encoded and diffed with
// admission.PatchResponseFromRaw, as the handler did before.

// reference hardens req the way the handler did before the cache and the
// patch from the decision: a full evaluation, then PatchResponseFromRaw.
func reference(ctx context.Context, e *engine.Engine, req admission.Request, k kindHardening) (admission.Response, *engine.Mutation, bool) {
	obj, err := k.decode(req.AdmissionRequest)
	if err != nil {
		return admission.Response{}, nil, false
	}
	if !selectedBy(e, obj) {
		return admission.Response{}, nil, false
	}
	m, err := e.Mutate(ctx, engine.Input{Request: &req.AdmissionRequest, NamespaceLabels: corpusNamespace, Object: obj})
	if err != nil {
		return admission.Response{}, nil, false
	}
	// The reference encodes the whole hardened object and checks it typed
	// (applyTo), where the handler checks only what the ops wrote.
	apply := k.apply
	if k.kind == "Job" {
		apply = applyTo
	}
	mutated, _, err := apply(obj, m.Ops)
	if err != nil {
		return admission.Response{}, m, false
	}
	return admission.PatchResponseFromRaw(req.Object.Raw, mutated), m, true
}

func selectedBy(e *engine.Engine, obj map[string]any) bool {
	labels := objectMeta(obj).labels
	return labels["app"] == "flowforge"
}

var corpusNamespace = map[string]string{"kubernetes.io/metadata.name": "agents", "flowforge.io/managed": "true"}

// applyPatch applies a response's patches to raw.
func applyPatch(t testing.TB, raw []byte, resp admission.Response) []byte {
	t.Helper()
	if len(resp.Patches) == 0 {
		return raw
	}
	ops, err := json.Marshal(resp.Patches)
	require.NoError(t, err)
	patch, err := jsonpatch.DecodePatch(ops)
	require.NoError(t, err)
	out, err := patch.Apply(raw)
	require.NoError(t, err, "patch %s", ops)
	return out
}

// engines are a cached and an uncached engine over the embedded policy.
type engines struct{ cached, uncached *engine.Engine }

func newEngines(t testing.TB) engines {
	t.Helper()
	ctx := context.Background()
	cached, err := engine.New(ctx, engine.Options{Tested: testedPolicies})
	require.NoError(t, err)
	uncached, err := engine.New(ctx, engine.Options{DisableCache: true, Tested: testedPolicies})
	require.NoError(t, err)
	return engines{cached: cached, uncached: uncached}
}

// differential checks one request on both paths, twice on the cached one.
func differential(t testing.TB, es engines, req admission.Request, k kindHardening) {
	t.Helper()
	ctx := context.Background()
	cached, uncached := es.cached, es.uncached
	hitsBefore := cached.CacheStats()["mutate"].Hits
	ns := func(context.Context, string) (map[string]string, error) { return corpusNamespace, nil }

	want, wantDecision, ok := reference(ctx, uncached, req, k)
	for _, pass := range []string{"miss", "hit"} {
		got := harden(ctx, req, cached, ns, k)
		if !ok {
			// Refused or passed through: the same answer as the uncached
			// handler gives.
			ref := harden(ctx, req, uncached, ns, k)
			if wantDecision != nil {
				// The decision could not be applied as a valid object when
				// the whole result was checked: the handler, which checks
				// only what the ops wrote, refuses it as well.
				require.False(t, got.Allowed, "%s: the handler admits what the whole check refuses", pass)
			}
			require.Equal(t, ref.Allowed, got.Allowed, pass)
			require.Equal(t, ref.Result, got.Result, pass)
			require.Equal(t, ref.Warnings, got.Warnings, pass)
			require.Equal(t, applyPatchOrRaw(t, req, ref), applyPatchOrRaw(t, req, got), pass)
			continue
		}
		require.Equal(t, want.Allowed, got.Allowed, "%s: %+v", pass, got.Result)
		require.Equal(t, want.PatchType, got.PatchType, pass)
		require.Equal(t, orNil(wantDecision.Warnings), orNil(got.Warnings), pass)
		require.JSONEq(t, string(applyPatch(t, req.Object.Raw, want)), string(applyPatch(t, req.Object.Raw, got)), "%s: the patch from the decision differs from the diff", pass)
		if k.kind == "Job" {
			// The cached decision is exactly the full evaluation's.
			obj, err := k.decode(req.AdmissionRequest)
			require.NoError(t, err)
			m, err := cached.Mutate(ctx, engine.Input{Request: &req.AdmissionRequest, NamespaceLabels: corpusNamespace, Object: obj})
			require.NoError(t, err)
			require.ElementsMatch(t, wantDecision.Ops, m.Ops, pass)
			require.Equal(t, wantDecision.Warnings, m.Warnings, pass)
		}
	}
	if ok {
		require.Greater(t, cached.CacheStats()["mutate"].Hits, hitsBefore, "the second request is a hit")
	}
}

func orNil(s []string) []string {
	if len(s) == 0 {
		return nil
	}
	return s
}

func applyPatchOrRaw(t testing.TB, req admission.Request, resp admission.Response) string {
	if !resp.Allowed || len(resp.Patches) == 0 {
		return string(req.Object.Raw)
	}
	return string(applyPatch(t, req.Object.Raw, resp))
}

// fuzzSeeds reads the string inputs of a go-fuzz corpus directory.
func fuzzSeeds(t testing.TB, dir string) []string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(dir, "*"))
	require.NoError(t, err)
	var out []string
	for _, f := range files {
		data, err := os.ReadFile(f)
		require.NoError(t, err)
		sc := bufio.NewScanner(bytes.NewReader(data))
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			line := sc.Text()
			if !strings.HasPrefix(line, "string(") {
				continue
			}
			s, err := strconv.Unquote(strings.TrimSuffix(strings.TrimPrefix(line, "string("), ")"))
			require.NoError(t, err, f)
			out = append(out, s)
		}
	}
	return out
}

// jobCorpus is every Job input of this package's tests: the goldens, the
// fuzz seeds (committed corpus and FuzzHandle's own), the handler tests'.
func jobCorpus(t testing.TB) map[string][]byte {
	t.Helper()
	out := map[string][]byte{}
	goldens, err := filepath.Glob("testdata/golden/*.input.yaml")
	require.NoError(t, err)
	require.NotEmpty(t, goldens)
	for _, g := range goldens {
		data, err := os.ReadFile(g)
		require.NoError(t, err)
		raw, err := yaml.YAMLToJSON(data)
		require.NoError(t, err)
		out["golden/"+filepath.Base(g)] = raw
	}
	for i, s := range fuzzSeeds(t, "testdata/fuzz/FuzzHandle") {
		out[fmt.Sprintf("fuzz/%d", i)] = []byte(s)
	}
	for i, s := range jobSeeds {
		out[fmt.Sprintf("seed/%d", i)] = []byte(s)
	}
	return out
}

// jobSeeds are FuzzHandle's seeds and the handler tests' Jobs.
var jobSeeds = []string{
	labelledJob,
	`{"metadata":{"labels":{"app":"flowforge"}},"spec":{"template":{"spec":{"containers":[{"name":"a"},{"name":"b","securityContext":{"privileged":true}}],"initContainers":[{"name":"i"}]}}}}`,
	`{"metadata":{"labels":{"app":"flowforge"},"annotations":{"flowforge.io/timeout":"1h","flowforge.io/profile":"large"}},"spec":{"ttlSecondsAfterFinished":99999999,"template":{"spec":{"containers":[{"name":"w","resources":{"requests":{"cpu":"9"}}}],"volumes":[{"name":"v","emptyDir":{}}]}}}}`,
	`{"metadata":{"labels":{"app":"flowforge"}},"spec":{"template":{"spec":{"containers":null}}}}`,
	`[]`,
	`{"metadata":{"labels":{"app":"flowforge"}},"spec":{"template":{"spec":{"containers":[{"name":"w","volumeMounts":[{"name":"x","mountPath":"/tmp"}]}],"volumes":[{"name":"x","emptyDir":"no"}]}}}}`,
	`{"apiVersion":"batch/v1","kind":"Job","metadata":{"name":"j","labels":{"app":"flowforge","job-id":"a","user-id":"u"},"annotations":{"flowforge.io/ttl-seconds-after-finished":"60"}},"spec":{"ttlSecondsAfterFinished":5,"template":{"metadata":{"labels":null,"annotations":{}},"spec":{"securityContext":null,"containers":[{"name":"w","image":"x","env":[{"name":"A","value":"1"}]}]}}}}`,
	`{"apiVersion":"batch/v1","kind":"Job","metadata":{"name":"j","labels":{"app":"flowforge","job-id":"a~/b","user-id":"u"}},"spec":{"template":{"spec":{"containers":[{"name":"w","image":"x"}]}}}}`,
}

func TestCachedHardeningEqualsUncached(t *testing.T) {
	es := newEngines(t)
	for name, raw := range jobCorpus(t) {
		t.Run(name, func(t *testing.T) {
			differential(t, es, request(admissionv1.Create, raw), jobHardening)
		})
	}
	pods := append(fuzzSeeds(t, "testdata/fuzz/FuzzHandlePod"), bareLabelledPod, resolvedPriorityPod, injectedPod,
		`{"metadata":{"labels":{"app":"flowforge"},"ownerReferences":[{"apiVersion":"batch/v1","kind":"Job","name":"j","uid":"u","controller":true}]},"spec":{"containers":[{"name":"w"}],"initContainers":[{"name":"s","restartPolicy":"Always"}]}}`,
		`{"metadata":{"labels":{"app":"flowforge"},"annotations":{"flowforge.io/timeout":"nonsense"}},"spec":{"containers":null,"volumes":[{"name":"kube-api-access-1","projected":{"sources":"no"}}]}}`,
		`{"metadata":{"labels":{"app":"flowforge"}},"spec":{"automountServiceAccountToken":"yes"}}`,
	)
	for i, raw := range pods {
		t.Run(fmt.Sprintf("pod/%d", i), func(t *testing.T) {
			differential(t, es, podRequest(admissionv1.Create, []byte(raw)), podHardening)
		})
	}
}

// FuzzCachedHardeningEqualsUncached: on any object, the cached handler
// with the patch from the decision answers as the full evaluation with the
// diffed patch, on a miss and on a hit.
func FuzzCachedHardeningEqualsUncached(f *testing.F) {
	for _, s := range jobSeeds {
		f.Add(s)
	}
	es := newEngines(f)
	f.Fuzz(func(t *testing.T, object string) {
		differential(t, es, request(admissionv1.Create, []byte(object)), jobHardening)
	})
}
