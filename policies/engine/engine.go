package engine

import (
	"context"
	"fmt"
	"io/fs"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/flowforge/flowforge/policies"
	"github.com/go-logr/logr"
	"k8s.io/utils/clock"
)

// CacheRecorder, if the Recorder implements it, receives the decision
// cache's lookups (hit, miss or uncached, see Lookup) and its size after
// each lookup.
type CacheRecorder interface {
	PolicyCacheLookup(query, lookup string, entries int)
}

// Options configure an Engine.
type Options struct {
	// Dir, if set, is the policy directory to serve and watch instead of
	// the embedded policies.
	Dir      string
	Log      logr.Logger
	Recorder policies.Recorder
	Clock    clock.PassiveClock
	// DisableCache evaluates every request in full, bypassing the
	// decision cache (for differential tests and measurements).
	DisableCache bool
	// Tested, if set, records the policy sets whose tests passed: a load
	// of content it holds does not run the tests again (see
	// TestedPolicies). Nil runs them at every load.
	Tested *TestedPolicies
}

// Engine serves the current policy and replaces it when its directory
// changes. It is safe for concurrent use.
type Engine struct {
	opts    Options
	current atomic.Pointer[Policy]

	mu     sync.Mutex
	status policies.Status
	// served and previous are the files (see filesDigest) of the policy
	// serving and of the one it replaced, which is kept so that undoing an
	// edit re-installs it at once: a rollback is the reload that must not
	// wait for the tests and checks of a full load.
	served   string
	previous struct {
		files  string
		policy *Policy
	}
	// watching is closed once Watch has set up its file watches.
	watching chan struct{}
}

// New loads the initial policy. It fails if that policy is refused:
// a webhook must not start without a policy it trusts.
func New(ctx context.Context, opts Options) (*Engine, error) {
	if opts.Recorder == nil {
		opts.Recorder = policies.NopRecorder{}
	}
	if opts.Clock == nil {
		opts.Clock = clock.RealClock{}
	}
	e := &Engine{opts: opts, watching: make(chan struct{})}
	e.status.Source = "embedded"
	if opts.Dir != "" {
		e.status.Source = opts.Dir
	}
	files, _ := filesDigest(e.fs())
	p, err := load(ctx, e.fs(), e.opts.Tested)
	if err != nil {
		opts.Recorder.PolicyReload(false)
		return nil, fmt.Errorf("policy from %s refused: %w", e.status.Source, err)
	}
	e.install(p, files, false)
	return e, nil
}

func (e *Engine) fs() fs.FS {
	if e.opts.Dir == "" {
		return policies.Embedded()
	}
	return os.DirFS(e.opts.Dir)
}

// Current returns the policy being served.
func (e *Engine) Current() *Policy { return e.current.Load() }

// Status returns a snapshot of the engine's state.
func (e *Engine) Status() policies.Status {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.status
}

// Mutate evaluates the current policy's hardening for the input.
func (e *Engine) Mutate(ctx context.Context, in Input) (*Mutation, error) {
	start := e.opts.Clock.Now()
	p := e.Current()
	m, how, err := p.mutateWith(ctx, in, !e.opts.DisableCache)
	e.opts.Recorder.PolicyEval("mutate", e.opts.Clock.Since(start))
	e.recordLookup(p.mutateQ, how)
	return m, err
}

// Validate evaluates the current policy's validation for the input.
func (e *Engine) Validate(ctx context.Context, in Input) (*Validation, error) {
	start := e.opts.Clock.Now()
	p := e.Current()
	v, how, err := p.validateWith(ctx, in, !e.opts.DisableCache)
	e.opts.Recorder.PolicyEval("validate", e.opts.Clock.Since(start))
	e.recordLookup(p.validateQ, how)
	return v, err
}

func (e *Engine) recordLookup(q *cachedQuery, how Lookup) {
	r, ok := e.opts.Recorder.(CacheRecorder)
	if !ok || q == nil {
		return
	}
	entries := 0
	if q.cache != nil {
		entries = q.cache.len()
	}
	r.PolicyCacheLookup(q.name, string(how), entries)
}

// CacheStats describes the decision caches of the policy being served.
func (e *Engine) CacheStats() map[string]CacheStats { return e.Current().CacheStats() }

// Reload loads the policy directory again. A refused policy leaves the
// current one serving; the error is returned, logged, counted and kept in
// Status until a later reload succeeds.
func (e *Engine) Reload(ctx context.Context) error {
	files, digestErr := filesDigest(e.fs())
	if digestErr == nil {
		e.mu.Lock()
		served, previous := e.served, e.previous
		e.mu.Unlock()
		switch {
		case files == served:
			// The files are back to what serves (a refused edit undone):
			// the refusal no longer applies.
			e.clearRefusal()
			return nil
		case files == previous.files && previous.policy != nil:
			// An edit undone: the policy it replaced passed its load.
			e.install(previous.policy, files, true)
			return nil
		}
	}
	p, err := load(ctx, e.fs(), e.opts.Tested)
	if err != nil {
		e.opts.Recorder.PolicyReload(false)
		e.mu.Lock()
		e.status.LastError = err.Error()
		e.status.LastErrorAt = e.opts.Clock.Now()
		e.mu.Unlock()
		e.opts.Log.Error(err, "Policy refused; the previous policy keeps serving", "source", e.status.Source, "revision", e.Current().Revision)
		return err
	}
	if p.Revision == e.Current().Revision {
		e.clearRefusal()
		return nil
	}
	e.install(p, files, true)
	return nil
}

func (e *Engine) clearRefusal() {
	e.mu.Lock()
	e.status.LastError, e.status.LastErrorAt = "", time.Time{}
	e.mu.Unlock()
}

// install serves p, loaded from files (empty if unknown), and keeps the
// policy it replaces as the previous one, without its decisions.
func (e *Engine) install(p *Policy, files string, reload bool) {
	old := e.current.Swap(p)
	e.opts.Recorder.PolicyRevision(p.Revision)
	e.mu.Lock()
	if old != nil && old != p {
		old.dropDecisions()
		e.previous.files, e.previous.policy = e.served, old
	}
	e.served = files
	e.status.Revision = p.Revision
	e.status.Tests = p.Tests
	evaluator, reason := p.IdentityEvaluator()
	e.status.IdentityEvaluator = evaluator
	e.status.LoadedAt = e.opts.Clock.Now()
	e.status.LastError, e.status.LastErrorAt = "", time.Time{}
	if reload {
		e.status.Reloads++
	}
	e.mu.Unlock()
	if reload {
		e.opts.Recorder.PolicyReload(true)
	}
	e.opts.Log.Info("Policy loaded", "source", e.status.Source, "revision", p.Revision, "tests", p.Tests, "identityEvaluator", evaluator)
	if reason != "" {
		e.opts.Log.Info("The identity query is evaluated by topdown, not compiled", "reason", reason)
	}
	for _, q := range []*cachedQuery{p.mutateQ, p.validateQ} {
		if q != nil && q.cache == nil {
			e.opts.Log.Info("Policy decisions of this query are not cached", "query", q.name, "reason", q.reason)
		}
	}
}

// Watch reloads the policy whenever a file under the policy directory
// changes, until ctx ends. With embedded policies it just waits.
func (e *Engine) Watch(ctx context.Context) error {
	if e.opts.Dir == "" {
		<-ctx.Done()
		return nil
	}
	return policies.WatchDir(ctx, e.opts.Dir, e.opts.Log, e.watching, func() {
		_ = e.Reload(ctx) // a refusal is logged and reported by Reload
	})
}
