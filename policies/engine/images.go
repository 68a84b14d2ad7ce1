package engine

import (
	"sort"
	"sync"

	"github.com/distribution/reference"
	"github.com/open-policy-agent/opa/v1/ast"
)

// ImageView is what the policy sees of one image reference: the result of
// parsing it with github.com/distribution/reference, the standard parser
// that container runtimes use. Rego cannot call Go, and a string-prefix
// match on the raw reference lets "ghcr.io/flowforge-evil/x" pass for
// "ghcr.io/flowforge/", so the input carries this view under
// input.images[<raw reference>] and the policy compares components
// (validate/images). A reference missing from the view is denied.
type ImageView struct {
	Valid bool `json:"valid"`
	// Error is the parser's message for an invalid reference.
	Error string `json:"error,omitempty"`
	// Domain is the registry host (with its port), normalised: "alpine"
	// is docker.io/library/alpine.
	Domain string `json:"domain,omitempty"`
	// Path is the repository path below the registry.
	Path   string `json:"path,omitempty"`
	Tag    string `json:"tag,omitempty"`
	Digest string `json:"digest,omitempty"`
}

// ParseImage parses one image reference into the view the policy sees.
func ParseImage(raw string) ImageView {
	named, err := reference.ParseNormalizedNamed(raw)
	if err != nil {
		return ImageView{Error: err.Error()}
	}
	view := ImageView{Valid: true, Domain: reference.Domain(named), Path: reference.Path(named)}
	if tagged, ok := named.(reference.Tagged); ok {
		view.Tag = tagged.Tag()
	}
	if digested, ok := named.(reference.Digested); ok {
		view.Digest = digested.Digest().String()
	}
	return view
}

func (v ImageView) term() *ast.Term {
	items := [][2]*ast.Term{ast.Item(ast.StringTerm("valid"), ast.BooleanTerm(v.Valid))}
	add := func(key, value string) {
		if value != "" {
			items = append(items, ast.Item(ast.StringTerm(key), ast.StringTerm(value)))
		}
	}
	add("error", v.Error)
	add("domain", v.Domain)
	add("path", v.Path)
	add("tag", v.Tag)
	add("digest", v.Digest)
	return ast.ObjectTerm(items...)
}

// podSpecPaths are where a pod spec sits in the objects FlowForge sees: a
// Pod, a Job's template, a CronJob's job template.
var podSpecPaths = [][]string{
	{"spec"},
	{"spec", "template", "spec"},
	{"spec", "jobTemplate", "spec", "template", "spec"},
}

var containerKinds = []string{"initContainers", "containers", "ephemeralContainers"}

// imageViews parses every container image of the given objects (the
// request's object and old object) and returns input.images. Images that
// are not strings are left out, so the policy denies them.
func imageViews(objects ...ast.Value) *ast.Term { return (*imageTerms)(nil).views(objects...) }

// maxImageTerms bounds a policy's memo of parsed images.
const maxImageTerms = 1024

// imageTerms memoises the parsed view of image references for one policy
// (the parse is the costly part of input.images, and distinct Jobs of one
// template share their images). Terms are never modified once built. A
// nil *imageTerms memoises nothing.
type imageTerms struct {
	mu    sync.Mutex
	terms map[string]*ast.Term
}

func (m *imageTerms) term(raw string) *ast.Term {
	if m == nil {
		return ParseImage(raw).term()
	}
	m.mu.Lock()
	t, ok := m.terms[raw]
	m.mu.Unlock()
	if ok {
		return t
	}
	t = ParseImage(raw).term()
	m.mu.Lock()
	if len(m.terms) >= maxImageTerms {
		clear(m.terms) // a stream of ever-new images: start over
	}
	if m.terms == nil {
		m.terms = map[string]*ast.Term{}
	}
	m.terms[raw] = t
	m.mu.Unlock()
	return t
}

// views is imageViews with the memo.
func (m *imageTerms) views(objects ...ast.Value) *ast.Term {
	seen := map[string]bool{}
	for _, obj := range objects {
		for _, path := range podSpecPaths {
			spec := getPath(obj, path)
			for _, kind := range containerKinds {
				ctrs, ok := getPath(spec, []string{kind}).(*ast.Array)
				if !ok {
					continue
				}
				ctrs.Foreach(func(c *ast.Term) {
					if s, ok := getPath(c.Value, []string{"image"}).(ast.String); ok {
						seen[string(s)] = true
					}
				})
			}
		}
	}
	raws := make([]string, 0, len(seen))
	for raw := range seen {
		raws = append(raws, raw)
	}
	sort.Strings(raws)
	items := make([][2]*ast.Term, 0, len(raws))
	for _, raw := range raws {
		items = append(items, ast.Item(ast.StringTerm(raw), m.term(raw)))
	}
	return ast.ObjectTerm(items...)
}

// getPath follows object keys; it returns nil where one is missing.
func getPath(v ast.Value, path []string) ast.Value {
	for _, key := range path {
		obj, ok := v.(ast.Object)
		if !ok {
			return nil
		}
		t := obj.Get(ast.InternedTerm(key))
		if t == nil {
			return nil
		}
		v = t.Value
	}
	return v
}
