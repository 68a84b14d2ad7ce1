package validate

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	authenticationv1 "k8s.io/api/authentication/v1"
	"k8s.io/utils/clock"

	"github.com/flowforge/flowforge/mutate"
	"github.com/flowforge/flowforge/policies"
)

func TestReviewMutatesThenValidates(t *testing.T) {
	engine := sharedEngine(t)
	ns := func(context.Context, string) (map[string]string, error) { return nil, nil }
	mutator := &mutate.Handler{Policy: engine, Namespaces: ns, Clock: clock.RealClock{}}
	validator := NewJobHandler(engine, ns, clock.RealClock{})
	validator.Claims = func(context.Context, string, string) ([]policies.ClaimHolder, error) { return nil, nil }

	hardened, mutation, verdict, err := Review(context.Background(), mutator, validator, "agents", []byte(identityJob), authenticationv1.UserInfo{Username: "alice"})
	require.NoError(t, err)
	assert.True(t, mutation.Allowed)
	assert.NotEmpty(t, mutation.Patches, "the Job was hardened")
	assert.Contains(t, string(hardened), "gvisor")
	require.True(t, verdict.Allowed, "%+v", verdict.Result)

	// Another user may not create alice's Job: the validation sees the
	// requester.
	_, _, verdict, err = Review(context.Background(), mutator, validator, "agents", []byte(identityJob), authenticationv1.UserInfo{Username: "mallory"})
	require.NoError(t, err)
	assert.False(t, verdict.Allowed)

	// A Job the mutation refuses never reaches the validation.
	_, _, verdict, err = Review(context.Background(), mutator, validator, "agents", []byte(`{"apiVersion":"batch/v1","kind":"Pod"}`), authenticationv1.UserInfo{Username: "alice"})
	require.Error(t, err)
	assert.Empty(t, verdict.UID)
}
