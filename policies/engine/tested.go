package engine

import "sync"

// TestedPolicies remembers the policy sets whose tests passed, by their
// content, so that loading the same files again in one process (a second
// engine, a test that builds its own) compiles them without running their
// tests again. The content is the revision's hash of every module and
// the data as the tests saw them, before the platform's data applies: any
// change to a module, a test or the data is a new entry and runs the
// tests. A set whose tests failed is never remembered.
//
// It is safe for concurrent use; two loads of the same new content at
// once both run the tests.
type TestedPolicies struct {
	mu     sync.Mutex
	passed map[testedKey]testedRun
	// plans holds the identity query's plan of each revision
	// (irplan.go): a compiled program is immutable and safe to share.
	plans map[string]identityPlan
}

// identityPlan is the compiled identity query of one revision, or why
// there is none.
type identityPlan struct {
	prog   *irProgram
	reason string
}

// testedKey is one content, with or without the capture of the tests'
// inputs that the mask check needs (see viewcheck.go).
type testedKey struct {
	revision string
	capture  bool
}

// testedRun is what a passing run left: how many tests passed, and the
// inputs it captured, which the mask check only reads.
type testedRun struct {
	tests   int
	capture *inputCapture
}

// NewTestedPolicies returns an empty record.
func NewTestedPolicies() *TestedPolicies {
	return &TestedPolicies{passed: map[testedKey]testedRun{}, plans: map[string]identityPlan{}}
}

func (t *TestedPolicies) lookup(k testedKey) (testedRun, bool) {
	return lockedGet(t, func() map[testedKey]testedRun { return t.passed }, k)
}

func (t *TestedPolicies) record(k testedKey, r testedRun) {
	lockedPut(t, func() map[testedKey]testedRun { return t.passed }, k, r)
}

func (t *TestedPolicies) plan(revision string) (identityPlan, bool) {
	return lockedGet(t, func() map[string]identityPlan { return t.plans }, revision)
}

func (t *TestedPolicies) recordPlan(revision string, r identityPlan) {
	lockedPut(t, func() map[string]identityPlan { return t.plans }, revision, r)
}

// lockedGet reads one of the record's maps (m) under its lock; a nil
// record holds nothing.
func lockedGet[K comparable, V any](t *TestedPolicies, m func() map[K]V, k K) (V, bool) {
	var v V
	if t == nil {
		return v, false
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	v, ok := m()[k]
	return v, ok
}

// lockedPut writes one of the record's maps (m) under its lock; a nil
// record keeps nothing.
func lockedPut[K comparable, V any](t *TestedPolicies, m func() map[K]V, k K, v V) {
	if t == nil {
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	m()[k] = v
}
