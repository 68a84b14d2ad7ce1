package policies

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

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/bundle"
	"github.com/open-policy-agent/opa/v1/loader"
	"github.com/open-policy-agent/opa/v1/rego"
	"github.com/open-policy-agent/opa/v1/storage/inmem"
	"github.com/open-policy-agent/opa/v1/tester"
)

const (
	mutateQuery   = "patch = data.flowforge.mutate.patch; warn = data.flowforge.mutate.warn"
	validateQuery = "deny = data.flowforge.validate.deny; warn = data.flowforge.validate.warn"
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
	limits   Limits
	config   *Config
	mutate   rego.PreparedEvalQuery
	validate rego.PreparedEvalQuery
	// mutateQ and validateQ hold each query's views and decision cache
	// (see cache.go); the cache lives and dies with this revision.
	mutateQ, validateQ *cachedQuery
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
	platform, err := readPlatform(fsys)
	if err != nil {
		return nil, err
	}
	b, err := readBundle(fsys)
	if err != nil {
		return nil, err
	}
	tests, err := RunTests(ctx, b, nil)
	if err != nil {
		return nil, err
	}
	// The platform's data (platform.go) applies once the tests passed.
	if err := applyPlatform(platform, b.Data); err != nil {
		return nil, err
	}
	return compile(ctx, b, tests)
}

// readBundle loads the .rego modules and data documents of fsys.
func readBundle(fsys fs.FS) (*bundle.Bundle, error) {
	// A mounted ConfigMap's files are symbolic links (platform.go).
	b, err := loader.NewFileLoader().WithFS(fsys).WithRegoVersion(ast.RegoV1).
		WithFollowSymlinks(true).WithFilter(skipMountBookkeeping).AsBundle(".")
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
	modules := map[string]*ast.Module{}
	for _, m := range b.Modules {
		modules[m.Path] = m.Parsed
	}
	runner := tester.NewRunner().
		SetModules(modules).
		SetStore(inmem.NewFromObject(b.Data)).
		SetDefaultRegoVersion(ast.RegoV1).
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
func compile(ctx context.Context, b *bundle.Bundle, tests int) (*Policy, error) {
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
	limits, err := parseLimits(b.Data)
	if err != nil {
		return nil, err
	}
	config, err := parseConfig(b.Data)
	if err != nil {
		return nil, err
	}
	p := &Policy{Tests: tests, data: b.Data, limits: limits, config: config}
	if p.mutate, err = prepare(mutateQuery); err != nil {
		return nil, fmt.Errorf("prepare mutation query: %w", err)
	}
	if p.validate, err = prepare(validateQuery); err != nil {
		return nil, fmt.Errorf("prepare validation query: %w", err)
	}
	if p.Revision, err = revision(b); err != nil {
		return nil, err
	}
	if p.mutateQ, p.validateQ, err = cachedQueries(compiler, b.Data, p.Revision); err != nil {
		return nil, err
	}
	return p, nil
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
	release, _ := lookup(b.Data, "flowforge", "config", "release").(string)
	if release == "" {
		release = "unreleased"
	}
	return release + "-" + hex.EncodeToString(h.Sum(nil))[:12], nil
}

// Config returns the value at path below data.flowforge.config, or nil.
func (p *Policy) Config(path ...string) any {
	return lookup(p.data, append([]string{"flowforge", "config"}, path...)...)
}

func lookup(data map[string]any, path ...string) any {
	var cur any = data
	for _, key := range path {
		m, ok := cur.(map[string]any)
		if !ok {
			return nil
		}
		cur = m[key]
	}
	return cur
}
