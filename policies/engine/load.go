package engine

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"sort"
	"strings"
	"time"

	"github.com/flowforge/flowforge/policies"
	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/bundle"
	"github.com/open-policy-agent/opa/v1/loader"
	"github.com/open-policy-agent/opa/v1/rego"
	"github.com/open-policy-agent/opa/v1/storage"
	"github.com/open-policy-agent/opa/v1/storage/inmem"
	"github.com/open-policy-agent/opa/v1/tester"
)

const (
	mutateQuery   = "patch = data.flowforge.mutate.patch; warn = data.flowforge.mutate.warn"
	validateQuery = "deny = data.flowforge.validate.deny; warn = data.flowforge.validate.warn"
	// A policy that splits validation (data.flowforge.validate.shape_deny
	// exists) is served as two queries: the shape, cached on its views,
	// and everything else in deny and warn (the identity rules, UPDATE,
	// CONNECT), evaluated on every request with the shape left out.
	shapeQuery = "deny = data.flowforge.validate.shape_deny; warn = data.flowforge.validate.shape_warn"
	// identityQuery serves the rest when deny and warn are exactly the
	// unions of shape_* and identity_* (validate.rego's four rules);
	// otherwiseQuery when a rule adds to deny or warn directly: such a rule
	// is then evaluated on every request too.
	identityQuery  = "deny = data.flowforge.validate.identity_deny; warn = data.flowforge.validate.identity_warn"
	otherwiseQuery = "deny = data.flowforge.validate.deny with data.flowforge.validate.shape_deny as set() with data.flowforge.validate.shape_warn as set(); " +
		"warn = data.flowforge.validate.warn with data.flowforge.validate.shape_deny as set() with data.flowforge.validate.shape_warn as set()"
	// testTimeout bounds one policy test, so a pathological policy cannot
	// stall a reload. It is wall-clock time: 10 s timed out an ordinary
	// test on a 2-core machine at load average 18, so it leaves room for a
	// starved process and bounds only a test that would never end.
	testTimeout = time.Minute
)

// Policy is a loaded, tested and compiled policy set. It is immutable and
// safe for concurrent use.
type Policy struct {
	// Revision identifies the policy set: the release named in its data
	// plus a hash of every module and data document.
	Revision string
	// Tests is the number of policy tests that passed when it was loaded.
	Tests int

	data     map[string]any
	limits   policies.Limits
	config   *policies.Config
	mutate   rego.PreparedEvalQuery
	validate rego.PreparedEvalQuery
	// identity, when split is set, is the uncached rest of validation:
	// validate then serves only the shape (see shapeQuery).
	identity rego.PreparedEvalQuery
	split    bool
	// identityText is the query identity serves (identityQuery or
	// otherwiseQuery).
	identityText string
	// identityIR, if set, evaluates identityQuery in place of identity
	// (irvm.go); identityIRReason says why it is not set.
	identityIR       *irProgram
	identityIRReason string
	// compiler and store prepared the queries (tests prepare others).
	compiler *ast.Compiler
	store    storage.Store
	// mutateQ and validateQ hold each query's views and decision cache
	// (see cache.go); the cache lives and dies with this revision.
	mutateQ, validateQ *cachedQuery
	// images memoises parsed image references (input.images).
	images *imageTerms
}

// TestFailure describes a policy test that failed or errored.
type TestFailure struct {
	Name     string
	Location string
	Err      error
}

// TestsFailedError is returned when a policy set's own tests fail.
type TestsFailedError struct {
	Failures []TestFailure
	Total    int
}

func (e *TestsFailedError) Error() string {
	names := make([]string, 0, len(e.Failures))
	for _, f := range e.Failures {
		name := f.Name + " (" + f.Location + ")"
		if f.Err != nil {
			name += ": " + f.Err.Error()
		}
		names = append(names, name)
	}
	return fmt.Sprintf("%d of %d policy tests failed: %s", len(e.Failures), e.Total, strings.Join(names, "; "))
}

// Load reads the bundle in fsys, runs its tests and compiles it. It refuses
// a policy set that does not parse, does not compile in strict mode, has
// no tests, or fails any test.
func Load(ctx context.Context, fsys fs.FS) (*Policy, error) {
	return load(ctx, fsys, nil)
}

// load is Load, skipping the tests of a set that tested already passed
// (nil: always run them).
func load(ctx context.Context, fsys fs.FS, tested *TestedPolicies) (*Policy, error) {
	platform, err := policies.ReadPlatform(fsys)
	if err != nil {
		return nil, err
	}
	b, err := readBundle(fsys)
	if err != nil {
		return nil, err
	}
	// The embedded policy's masks are proven by its unit tests
	// (TestEmbeddedPolicyMasksPassTheirCheck); any other policy's at load.
	var capture *inputCapture
	if platform != nil || !sameFiles(fsys, policies.Embedded()) {
		capture = &inputCapture{}
	}
	run, err := testOnce(ctx, b, capture, tested)
	if err != nil {
		return nil, err
	}
	capture, tests := run.capture, run.tests
	// The platform's data (platform.go) applies once the tests passed.
	if err := policies.ApplyPlatform(platform, b.Data); err != nil {
		return nil, err
	}
	p, err := compile(ctx, b, tests, tested)
	if err != nil {
		return nil, err
	}
	// The masks of the cached views, proven on the tests' inputs
	// (viewcheck.go).
	if capture != nil {
		if err := p.checkMasks(ctx, capture.inputs()); err != nil {
			return nil, err
		}
		// The compiled identity query, held to topdown's answers on the
		// same inputs (irplan.go).
		p.checkCompiledIdentity(ctx, capture.inputs())
	}
	return p, nil
}

// testOnce runs the bundle's tests, unless tested holds a passing run of
// the same content. Without a record (the webhook, the CLI) the content is
// not even hashed: compile computes the revision once, after the
// platform's data.
func testOnce(ctx context.Context, b *bundle.Bundle, capture *inputCapture, tested *TestedPolicies) (testedRun, error) {
	run := testedRun{capture: capture}
	if tested == nil {
		var err error
		run.tests, err = runTests(ctx, b, nil, capture)
		return run, err
	}
	content, err := revision(b)
	if err != nil {
		return run, err
	}
	key := testedKey{revision: content, capture: capture != nil}
	if prev, ok := tested.lookup(key); ok {
		return prev, nil
	}
	if run.tests, err = runTests(ctx, b, nil, capture); err != nil {
		return run, err
	}
	tested.record(key, run)
	return run, nil
}

// readBundle loads the .rego modules and data documents of fsys.
func readBundle(fsys fs.FS) (*bundle.Bundle, error) {
	// A mounted ConfigMap's files are symbolic links (platform.go).
	b, err := loader.NewFileLoader().WithFS(fsys).WithRegoVersion(ast.RegoV1).
		WithFollowSymlinks(true).WithFilter(policies.SkipMountBookkeeping).AsBundle(".")
	if err != nil {
		return nil, fmt.Errorf("load policies: %w", err)
	}
	if len(b.Modules) == 0 {
		return nil, errors.New("load policies: no .rego modules found")
	}
	return b, nil
}

// RunTests runs every test rule of the bundle (rules named test_* in
// *_test.rego files) and returns how many passed. If report is not nil it
// receives every result. Any failure or error refuses the whole set.
func RunTests(ctx context.Context, b *bundle.Bundle, report func(*tester.Result)) (int, error) {
	return runTests(ctx, b, report, nil)
}

// runTests is RunTests, recording every test input in capture if it is
// not nil.
func runTests(ctx context.Context, b *bundle.Bundle, report func(*tester.Result), capture *inputCapture) (int, error) {
	modules := map[string]*ast.Module{}
	for _, m := range b.Modules {
		modules[m.Path] = m.Parsed
	}
	var builtins []*tester.Builtin
	if capture != nil {
		var builtin *tester.Builtin
		modules, builtin = capture.instrument(modules)
		builtins = append(builtins, builtin)
	}
	runner := tester.NewRunner().
		SetModules(modules).
		SetStore(inmem.NewFromObject(b.Data)).
		SetDefaultRegoVersion(ast.RegoV1).
		AddCustomBuiltins(builtins).
		SetTimeout(testTimeout)
	ch, err := runner.RunTests(ctx, nil)
	if err != nil {
		return 0, fmt.Errorf("compile policies with their tests: %w", err)
	}
	failed := &TestsFailedError{}
	for r := range ch {
		if report != nil {
			report(r)
		}
		if r.Skip {
			continue
		}
		failed.Total++
		if r.Fail || r.Error != nil {
			loc := ""
			if r.Location != nil {
				loc = fmt.Sprintf("%s:%d", r.Location.File, r.Location.Row)
			}
			failed.Failures = append(failed.Failures, TestFailure{Name: r.Package + "." + r.Name, Location: loc, Err: r.Error})
		}
	}
	if failed.Total == 0 {
		return 0, errors.New("policies have no tests: a policy set must test itself")
	}
	if len(failed.Failures) > 0 {
		return 0, failed
	}
	return failed.Total, nil
}

// compile prepares the serving queries from the non-test modules.
func compile(ctx context.Context, b *bundle.Bundle, tests int, tested *TestedPolicies) (*Policy, error) {
	modules := map[string]*ast.Module{}
	for _, m := range b.Modules {
		if strings.HasSuffix(m.Path, "_test.rego") {
			continue
		}
		modules[m.Path] = m.Parsed
	}
	compiler := ast.NewCompiler().WithStrict(true).WithDefaultRegoVersion(ast.RegoV1)
	if compiler.Compile(modules); compiler.Failed() {
		return nil, fmt.Errorf("compile policies: %w", compiler.Errors)
	}
	store := inmem.NewFromObjectWithOpts(b.Data, inmem.OptReturnASTValuesOnRead(true))
	prepare := func(query string) (rego.PreparedEvalQuery, error) {
		return rego.New(
			rego.Query(query),
			rego.Compiler(compiler),
			rego.Store(store),
			// Results stay AST terms: decodeOps and decodeViolations read
			// them directly instead of converting every value to Go first.
			rego.GenerateJSON(func(t *ast.Term, _ *rego.EvalContext) (any, error) { return t, nil }),
		).PrepareForEval(ctx)
	}
	limits, err := policies.ParseLimits(b.Data)
	if err != nil {
		return nil, err
	}
	config, err := policies.ParseConfig(b.Data)
	if err != nil {
		return nil, err
	}
	p := &Policy{Tests: tests, data: b.Data, limits: limits, config: config, compiler: compiler, store: store, images: &imageTerms{}}
	if p.mutate, err = prepare(mutateQuery); err != nil {
		return nil, fmt.Errorf("prepare mutation query: %w", err)
	}
	vQuery, vRoots := validateQuery, validateRoots
	if p.split = len(compiler.GetRules(shapeRoots[0])) > 0; p.split {
		vQuery, vRoots = shapeQuery, shapeRoots
		rest := otherwiseQuery
		if onlyUnions(compiler) {
			rest = identityQuery
		}
		p.identityText = rest
		if p.identity, err = prepare(rest); err != nil {
			return nil, fmt.Errorf("prepare identity query: %w", err)
		}
	}
	if p.validate, err = prepare(vQuery); err != nil {
		return nil, fmt.Errorf("prepare validation query: %w", err)
	}
	if p.Revision, err = revision(b); err != nil {
		return nil, err
	}
	if p.split {
		p.planIdentity(ctx, b, tested)
	}
	if p.mutateQ, p.validateQ, err = cachedQueries(compiler, b.Data, p.Revision, vRoots); err != nil {
		return nil, err
	}
	return p, nil
}

// onlyUnions reports whether every rule of data.flowforge.validate.deny
// and warn depends on nothing but shape_deny and identity_deny (shape_warn
// and identity_warn), as validate.rego writes them; identity_deny and
// identity_warn must exist.
func onlyUnions(c *ast.Compiler) bool {
	for _, pair := range [][3]string{
		{"data.flowforge.validate.deny", "data.flowforge.validate.shape_deny", "data.flowforge.validate.identity_deny"},
		{"data.flowforge.validate.warn", "data.flowforge.validate.shape_warn", "data.flowforge.validate.identity_warn"},
	} {
		allowed := map[*ast.Rule]bool{}
		for _, ref := range pair[1:] {
			rules := c.GetRules(ast.MustParseRef(ref))
			if len(rules) == 0 {
				return false
			}
			for _, r := range rules {
				allowed[r] = true
			}
		}
		for _, r := range c.GetRules(ast.MustParseRef(pair[0])) {
			deps := c.Graph.Dependencies(r)
			if len(deps) == 0 {
				return false
			}
			for dep := range deps {
				d, ok := dep.(*ast.Rule)
				if !ok || !allowed[d] {
					return false
				}
			}
		}
	}
	return true
}

// revision names a policy set: its release label plus a content hash of
// every module and the data, so that any edit gives a new revision.
func revision(b *bundle.Bundle) (string, error) {
	h := sha256.New()
	paths := make([]string, 0, len(b.Modules))
	raw := map[string][]byte{}
	for _, m := range b.Modules {
		paths = append(paths, m.Path)
		raw[m.Path] = m.Raw
	}
	sort.Strings(paths)
	for _, p := range paths {
		fmt.Fprintf(h, "%s\x00%d\x00", p, len(raw[p]))
		h.Write(raw[p])
	}
	data, err := json.Marshal(b.Data) // map keys are sorted by encoding/json
	if err != nil {
		return "", fmt.Errorf("hash policy data: %w", err)
	}
	h.Write(data)
	release, _ := policies.Lookup(b.Data, "flowforge", "config", "release").(string)
	if release == "" {
		release = "unreleased"
	}
	return release + "-" + hex.EncodeToString(h.Sum(nil))[:12], nil
}

// Config returns the value at path below data.flowforge.config, or nil.
func (p *Policy) Config(path ...string) any {
	return policies.Lookup(p.data, append([]string{"flowforge", "config"}, path...)...)
}

// Configuration returns the policy's typed settings (see policies.Config).
func (p *Policy) Configuration() *policies.Config { return p.config }

// Limits returns the policy's limits (see Limits).
func (p *Policy) Limits() policies.Limits { return p.limits }
