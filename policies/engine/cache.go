package engine

import (
	"container/list"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"sync"
	"sync/atomic"

	"github.com/open-policy-agent/opa/v1/ast"

	"github.com/flowforge/flowforge/policies"
)

// DefaultCacheEntries bounds each query's decision cache when the policy
// data does not (data.flowforge.config.cache.maxEntries).
const DefaultCacheEntries = 4096

// cacheKey is the sha256 of the canonical encoding of a query's view.
type cacheKey [sha256.Size]byte

// decisionCache is a bounded LRU of decisions of one query of one policy
// revision, keyed on the view the query reads. It belongs to the Policy, so
// a reload (a new Policy) starts empty.
type decisionCache struct {
	max int

	mu      sync.Mutex
	entries map[cacheKey]*list.Element
	order   *list.List // front: most recently used

	hits, misses atomic.Uint64
}

type cacheEntry struct {
	key   cacheKey
	value any
}

func newDecisionCache(max int) *decisionCache {
	return &decisionCache{max: max, entries: map[cacheKey]*list.Element{}, order: list.New()}
}

func (c *decisionCache) get(k cacheKey) (any, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	el, ok := c.entries[k]
	if !ok {
		c.misses.Add(1)
		return nil, false
	}
	c.hits.Add(1)
	c.order.MoveToFront(el)
	return el.Value.(*cacheEntry).value, true
}

func (c *decisionCache) put(k cacheKey, v any) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if el, ok := c.entries[k]; ok {
		el.Value.(*cacheEntry).value = v
		c.order.MoveToFront(el)
		return
	}
	c.entries[k] = c.order.PushFront(&cacheEntry{key: k, value: v})
	for c.order.Len() > c.max {
		last := c.order.Back()
		c.order.Remove(last)
		delete(c.entries, last.Value.(*cacheEntry).key)
	}
}

func (c *decisionCache) stats() CacheStats {
	c.mu.Lock()
	n := c.order.Len()
	c.mu.Unlock()
	return CacheStats{Entries: n, Capacity: c.max, Hits: c.hits.Load(), Misses: c.misses.Load()}
}

// CacheStats describes one query's decision cache.
type CacheStats struct {
	Enabled  bool   `json:"enabled"`
	Reason   string `json:"reason,omitempty"`
	Entries  int    `json:"entries"`
	Capacity int    `json:"capacity"`
	Hits     uint64 `json:"hits"`
	Misses   uint64 `json:"misses"`
}

// HitRate is hits over lookups (0 without lookups).
func (s CacheStats) HitRate() float64 {
	if s.Hits+s.Misses == 0 {
		return 0
	}
	return float64(s.Hits) / float64(s.Hits+s.Misses)
}

// cachedQuery is one served query with its views and cache.
type cachedQuery struct {
	name  string
	views []viewPath
	// masks are the object paths whose strings the view hides (see
	// views.go); nil masks nothing.
	masks *maskNode
	// trie and inMasks are the views and masks from the input's root,
	// for keyOf (see viewkey.go).
	trie    *viewNode
	inMasks *maskNode
	// readsImages: a rule the query reaches reads input.images (or all of
	// input), so the input must carry them.
	readsImages bool
	// cache is nil when the query is not cached (a non-deterministic
	// builtin, walk over input, or caching switched off).
	cache  *decisionCache
	reason string
	// keyPrefix separates the queries' and revisions' keys.
	keyPrefix []byte
	// vouch lists the kinds whose strict decoding a decision may vouch
	// for (see decoded.go).
	vouch map[string]bool
}

// Roots of the served queries, for the view analysis.
var (
	mutateRoots = []ast.Ref{
		ast.MustParseRef("data.flowforge.mutate.patch"),
		ast.MustParseRef("data.flowforge.mutate.warn"),
	}
	validateRoots = []ast.Ref{
		ast.MustParseRef("data.flowforge.validate.deny"),
		ast.MustParseRef("data.flowforge.validate.warn"),
	}
	// shapeRoots are the cached part of validation in a policy that
	// splits it (see splitValidation).
	shapeRoots = []ast.Ref{
		ast.MustParseRef("data.flowforge.validate.shape_deny"),
		ast.MustParseRef("data.flowforge.validate.shape_warn"),
	}
)

// view is the part of the input the query's decision depends on: the
// projection on its views, masked.
func (q *cachedQuery) view(in ast.Object) ast.Object {
	return maskView(project(in, q.views), q.masks)
}

// cachedQueries reads data.flowforge.config.cache, analyses the input
// reads of both queries and checks them against the declared views. A
// policy without a cache section is served uncached.
func cachedQueries(c *ast.Compiler, data map[string]any, revision string, vRoots []ast.Ref) (mutate, validate *cachedQuery, err error) {
	cfg, _ := policies.Lookup(data, "flowforge", "config", "cache").(map[string]any)
	max := DefaultCacheEntries
	if raw, ok := cfg["maxEntries"]; ok {
		n, ok := asInt(raw)
		if !ok || n < 0 {
			return nil, nil, fmt.Errorf("data.flowforge.config.cache.maxEntries: expected a whole number >= 0, got %v", raw)
		}
		max = n
	}
	views, _ := cfg["views"].(map[string]any)
	masks, maskPaths, err := parseMasks(cfg["masks"])
	if err != nil {
		return nil, nil, err
	}
	build := func(name string, roots []ast.Ref) (*cachedQuery, error) {
		q := &cachedQuery{name: name, keyPrefix: []byte(revision + "\x00" + name + "\x00")}
		a, err := analyzeQuery(c, roots)
		if err != nil {
			return nil, fmt.Errorf("analyse policy query %s: %w", name, err)
		}
		for _, r := range a.reads {
			if len(r.path) == 0 || r.path[0] == "images" {
				q.readsImages = true
			}
		}
		switch {
		case cfg == nil || views == nil:
			q.reason = errNoViews.Error()
			return q, nil
		case a.uncacheable != "":
			q.reason = "calls " + a.uncacheable
			return q, nil
		}
		if q.views, err = parseViews(name, views[name]); err != nil {
			return nil, err
		}
		if err := checkViews(name, a, q.views); err != nil {
			return nil, err
		}
		if err := maskedReads(name, a, maskPaths); err != nil {
			return nil, err
		}
		q.masks = masks
		q.trie, q.inMasks = newViewTrie(q.views), inputMasks(masks)
		q.vouch = vouchKinds(q.views, maskPaths)
		if max == 0 {
			q.reason = "data.flowforge.config.cache.maxEntries is 0"
			return q, nil
		}
		q.cache = newDecisionCache(max)
		return q, nil
	}
	if mutate, err = build("mutate", mutateRoots); err != nil {
		return nil, nil, err
	}
	if validate, err = build("validate", vRoots); err != nil {
		return nil, nil, err
	}
	return mutate, validate, nil
}

func asInt(v any) (int, bool) {
	switch n := v.(type) {
	case int:
		return n, true
	case int64:
		return int(n), true
	case float64:
		if n == float64(int(n)) {
			return int(n), true
		}
	case json.Number:
		i, err := n.Int64()
		return int(i), err == nil
	}
	return 0, false
}

// stats describes the query's cache.
func (q *cachedQuery) stats() CacheStats {
	if q.cache == nil {
		return CacheStats{Reason: q.reason}
	}
	s := q.cache.stats()
	s.Enabled = true
	return s
}

// clear drops every decision.
func (c *decisionCache) clear() {
	c.mu.Lock()
	defer c.mu.Unlock()
	clear(c.entries)
	c.order.Init()
}

// dropDecisions empties the policy's decision caches (a policy that stops
// serving keeps its compiled queries, not its decisions).
func (p *Policy) dropDecisions() {
	for _, q := range []*cachedQuery{p.mutateQ, p.validateQ} {
		if q != nil && q.cache != nil {
			q.cache.clear()
		}
	}
}

func (c *decisionCache) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.order.Len()
}
