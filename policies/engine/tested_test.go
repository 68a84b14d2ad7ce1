package engine

import (
	"context"
	"os"
	"testing"

	"github.com/stretchr/testify/require"
)

// failingTest replaces the fixture's test with one that fails.
const failingTest = `package flowforge.mutate_test

test_fails if false
`

// contentKey is the key a load of dir looks up (a directory: captured).
func contentKey(t *testing.T, dir string) testedKey {
	t.Helper()
	b, err := readBundle(os.DirFS(dir))
	require.NoError(t, err)
	rev, err := revision(b)
	require.NoError(t, err)
	return testedKey{revision: rev, capture: true}
}

func TestTestedPoliciesRunsTheTestsOncePerContent(t *testing.T) {
	ctx := context.Background()
	tested := NewTestedPolicies()
	dir := fixtureDir(t)

	first, err := load(ctx, os.DirFS(dir), tested)
	require.NoError(t, err)
	require.Positive(t, first.Tests)
	run, ok := tested.lookup(contentKey(t, dir))
	require.True(t, ok, "a passing set is recorded")
	require.Equal(t, first.Tests, run.tests)

	again, err := load(ctx, os.DirFS(dir), tested)
	require.NoError(t, err)
	require.Equal(t, first.Tests, again.Tests)
	require.Equal(t, first.Revision, again.Revision)
	require.Len(t, tested.passed, 1)

	// An edited test is new content: its tests run, and refuse it.
	writePolicy(t, dir, map[string]string{"mutate/m_test.rego": failingTest})
	_, err = load(ctx, os.DirFS(dir), tested)
	var failed *TestsFailedError
	require.ErrorAs(t, err, &failed)
	_, ok = tested.lookup(contentKey(t, dir))
	require.False(t, ok, "a failing set is never recorded")
	require.Len(t, tested.passed, 1)
}

func TestTestedPoliciesSkipsTheTestsOfRecordedContent(t *testing.T) {
	ctx := context.Background()
	dir := fixtureDir(t)
	writePolicy(t, dir, map[string]string{"mutate/m_test.rego": failingTest})

	// Without a record the failing test refuses the set.
	_, err := load(ctx, os.DirFS(dir), NewTestedPolicies())
	var failed *TestsFailedError
	require.ErrorAs(t, err, &failed)

	// A record of this exact content is trusted: its tests do not run
	// again, so the same files load.
	tested := NewTestedPolicies()
	tested.record(contentKey(t, dir), testedRun{tests: 7, capture: &inputCapture{}})
	p, err := load(ctx, os.DirFS(dir), tested)
	require.NoError(t, err)
	require.Equal(t, 7, p.Tests)
}

func TestTestedPoliciesNilRunsTheTestsEveryTime(t *testing.T) {
	var tested *TestedPolicies
	tested.record(testedKey{revision: "r"}, testedRun{tests: 1})
	_, ok := tested.lookup(testedKey{revision: "r"})
	require.False(t, ok)
}
