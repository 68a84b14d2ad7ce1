package engine

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io/fs"
	"reflect"
	"sort"
	"strings"
	"sync"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/rego"
	"github.com/open-policy-agent/opa/v1/tester"
	"github.com/open-policy-agent/opa/v1/types"
)

// The load-time analysis (views.go) proves that a cached query reads
// nothing outside its views, and refuses a direct read of a masked path.
// It cannot follow a read through a helper rule that hands a whole object
// on (k8s.obj, a container list): a rule that decides on a masked string
// that way would see maskedValue on the cached path and decide wrongly for
// every Job of that view. So Load also evaluates each cached query on
// every input the policy's own tests use, once whole and once on its
// masked view, and refuses the policy if any decision differs: the tests
// a platform team writes for a new rule are what prove the masks safe for
// it.

// sameFiles reports whether a and b hold the same regular files with the
// same contents (a mounted ConfigMap's ".."-bookkeeping aside); any
// doubt, such as an unreadable file, is a difference.
func sameFiles(a, b fs.FS) bool {
	fa, err := regularFiles(a)
	if err != nil {
		return false
	}
	fb, err := regularFiles(b)
	if err != nil || len(fa) != len(fb) {
		return false
	}
	for path, content := range fa {
		other, ok := fb[path]
		if !ok || !bytes.Equal(content, other) {
			return false
		}
	}
	return true
}

// filesDigest is a sha256 over the paths and contents of fsys's files (a
// mounted ConfigMap's ".."-bookkeeping aside, its symbolic links
// followed): Load's only input, so equal digests load equal policies.
func filesDigest(fsys fs.FS) (string, error) {
	h := sha256.New()
	err := walkFiles(fsys, func(path string, _ fs.DirEntry) error {
		content, err := fs.ReadFile(fsys, path)
		if err != nil {
			return err
		}
		fmt.Fprintf(h, "%d:%s%d:", len(path), path, len(content))
		h.Write(content)
		return nil
	})
	if err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

func regularFiles(fsys fs.FS) (map[string][]byte, error) {
	out := map[string][]byte{}
	err := walkFiles(fsys, func(path string, d fs.DirEntry) error {
		if !d.Type().IsRegular() {
			return fmt.Errorf("%s is not a regular file", path)
		}
		content, err := fs.ReadFile(fsys, path)
		if err != nil {
			return err
		}
		out[path] = content
		return nil
	})
	return out, err
}

// walkFiles calls fn for every file of fsys, in lexical order, skipping a
// mounted ConfigMap's ".."-bookkeeping.
func walkFiles(fsys fs.FS, fn func(path string, d fs.DirEntry) error) error {
	return fs.WalkDir(fsys, ".", func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if strings.HasPrefix(d.Name(), "..") {
			if d.IsDir() {
				return fs.SkipDir
			}
			return nil
		}
		if d.IsDir() {
			return nil
		}
		return fn(path, d)
	})
}

// captureBuiltin records every input a policy test evaluates with.
const captureBuiltin = "flowforge_capture_input"

// inputCapture collects the inputs of the policy tests: every `with input
// as X` of a *_test.rego module is rewritten to `with input as
// flowforge_capture_input(X)`, which records X and returns it unchanged.
type inputCapture struct {
	mu   sync.Mutex
	seen map[string]ast.Object
}

// instrument returns the modules with the test modules' input overrides
// rewritten, and the builtin that records them.
func (c *inputCapture) instrument(modules map[string]*ast.Module) (map[string]*ast.Module, *tester.Builtin) {
	out := make(map[string]*ast.Module, len(modules))
	for path, m := range modules {
		if !strings.HasSuffix(path, "_test.rego") {
			out[path] = m
			continue
		}
		mod := m.Copy()
		ast.WalkExprs(mod, func(e *ast.Expr) bool {
			for _, w := range e.With {
				if w.Target.Value.Compare(ast.InputRootRef) == 0 {
					w.Value = ast.CallTerm(ast.RefTerm(ast.VarTerm(captureBuiltin)), w.Value)
				}
			}
			return false
		})
		out[path] = mod
	}
	decl := &ast.Builtin{Name: captureBuiltin, Decl: types.NewFunction(types.Args(types.A), types.A)}
	fn := rego.Function1(&rego.Function{Name: captureBuiltin, Decl: decl.Decl},
		func(_ rego.BuiltinContext, in *ast.Term) (*ast.Term, error) {
			if obj, ok := in.Value.(ast.Object); ok {
				c.mu.Lock()
				if c.seen == nil {
					c.seen = map[string]ast.Object{}
				}
				c.seen[obj.String()] = obj
				c.mu.Unlock()
			}
			return in, nil
		})
	return out, &tester.Builtin{Decl: decl, Func: fn}
}

// inputs returns the recorded inputs in a stable order.
func (c *inputCapture) inputs() []ast.Object {
	c.mu.Lock()
	defer c.mu.Unlock()
	keys := make([]string, 0, len(c.seen))
	for k := range c.seen {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	out := make([]ast.Object, 0, len(keys))
	for _, k := range keys {
		out = append(out, c.seen[k])
	}
	return out
}

// MaskError is returned by Load when a cached query decides differently
// on its masked view than on the whole input of a policy test.
type MaskError struct {
	Query string
	// Input names the test input (its request's kind, operation and
	// object name, when it has them).
	Input string
	// Whole and Masked are the two decisions, rendered.
	Whole, Masked string
}

func (e *MaskError) Error() string {
	return fmt.Sprintf("policy %s: on the input of a policy test (%s) the cached view decides %s but the whole input %s: "+
		"a rule reads a value that data.flowforge.config.cache.masks hides (through a helper the load-time analysis does not follow); "+
		"take that path out of the masks", e.Query, e.Input, e.Masked, e.Whole)
}

// checkMasks evaluates each cached query with masks on every test input
// whose view masking changes, whole and on the view, and returns a
// *MaskError for the first decision that differs. An input the whole
// query fails on is skipped: serving it fails closed either way.
func (p *Policy) checkMasks(ctx context.Context, inputs []ast.Object) error {
	for _, q := range p.servedQueries() {
		if q.cq == nil || q.cq.cache == nil || q.cq.masks == nil {
			continue
		}
		for _, in := range inputs {
			projected := project(in, q.cq.views)
			view := maskView(projected, q.cq.masks)
			if view.Compare(projected) == 0 {
				// Nothing masked: the projection alone is proven by the
				// analysis.
				continue
			}
			whole, err := p.decision(ctx, q.q, in, q.decode)
			if err != nil {
				continue
			}
			masked, err := p.decision(ctx, q.q, view, q.decode)
			if err != nil || !reflect.DeepEqual(whole, masked) {
				got := fmt.Sprintf("%+v", masked)
				if err != nil {
					got = "an error (" + err.Error() + ")"
				}
				return &MaskError{Query: q.cq.name, Input: describeInput(in), Whole: fmt.Sprintf("%+v", whole), Masked: got}
			}
		}
	}
	return nil
}

// servedQuery is a query that may be served from the decision cache, with
// its cache and its decoder.
type servedQuery struct {
	q      rego.PreparedEvalQuery
	cq     *cachedQuery
	decode func(rego.Vars) (any, error)
}

// servedQueries are the mutation and the (shape of) validation.
func (p *Policy) servedQueries() []servedQuery {
	return []servedQuery{
		{p.mutate, p.mutateQ, decodeMutation},
		{p.validate, p.validateQ, decodeValidation},
	}
}

// decision evaluates q on value and decodes it, with a mutation's ops in
// a canonical order (the order of a set's elements is not a decision).
func (p *Policy) decision(ctx context.Context, q rego.PreparedEvalQuery, value ast.Value, decode func(rego.Vars) (any, error)) (any, error) {
	bindings, err := p.eval(ctx, q, value)
	if err != nil {
		return nil, err
	}
	d, err := decode(bindings)
	if m, ok := d.(*Mutation); ok {
		sort.SliceStable(m.Ops, func(i, j int) bool {
			return renderPath(m.Ops[i].Path)+m.Ops[i].Op < renderPath(m.Ops[j].Path)+m.Ops[j].Op
		})
	}
	return d, err
}

// describeInput names a test input by its request's kind, operation and
// object name.
func describeInput(in ast.Object) string {
	get := func(path ...string) string {
		v := ast.Value(in)
		for _, k := range path {
			obj, ok := v.(ast.Object)
			if !ok {
				return ""
			}
			t := obj.Get(ast.InternedTerm(k))
			if t == nil {
				return ""
			}
			v = t.Value
		}
		if s, ok := v.(ast.String); ok {
			return string(s)
		}
		return ""
	}
	parts := []string{}
	for _, s := range []string{get("request", "kind", "kind"), get("request", "operation"), get("request", "object", "metadata", "name")} {
		if s != "" {
			parts = append(parts, s)
		}
	}
	if len(parts) == 0 {
		return "an input without a request"
	}
	return strings.Join(parts, " ")
}
