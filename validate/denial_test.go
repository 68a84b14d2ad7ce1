package validate

import (
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"
	batchv1 "k8s.io/api/batch/v1"

	"github.com/flowforge/flowforge/policies/engine"
)

// TestDenialListsABoundedNumberOfViolations: a denial lists the first
// violations and says how many more; joining thousands cost apimachinery
// time and memory quadratic in their number.
func TestDenialListsABoundedNumberOfViolations(t *testing.T) {
	violations := make([]engine.Violation, maxListedViolations+500)
	for i := range violations {
		violations[i] = engine.Violation{Field: fmt.Sprintf("spec.template.spec.containers[%d]", i), Msg: "is not allowed"}
	}
	resp := Denial(batchv1.SchemeGroupVersion.WithKind("Job"), "j", violations)
	require.False(t, resp.Allowed)
	require.Len(t, resp.Result.Details.Causes, maxListedViolations+1)
	require.Contains(t, resp.Result.Message, "spec.template.spec.containers[63]: Forbidden: is not allowed")
	require.NotContains(t, resp.Result.Message, "containers[64]")
	require.Contains(t, resp.Result.Message, "and 500 more violations")

	few := Denial(batchv1.SchemeGroupVersion.WithKind("Job"), "j", violations[:2])
	require.Len(t, few.Result.Details.Causes, 2, "all of a few")
}
