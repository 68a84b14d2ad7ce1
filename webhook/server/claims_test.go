package server

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/utils/clock"

	"github.com/flowforge/flowforge/policies"
	"github.com/flowforge/flowforge/validate"
)

func TestWithClaimsWiresTheValidators(t *testing.T) {
	engine, err := loadEngine()
	require.NoError(t, err)
	handlers := Handlers(engine, func(context.Context, string) (map[string]string, error) { return nil, nil }, clock.RealClock{})
	called := false
	WithClaims(handlers, func(context.Context, string, string) ([]policies.ClaimHolder, error) {
		called = true
		return nil, nil
	})
	jobs, ok := handlers[validate.JobPath].(*validate.Handler)
	require.True(t, ok)
	require.NotNil(t, jobs.Claims)
	_, err = jobs.Claims(context.Background(), "agents", "abc")
	require.NoError(t, err)
	assert.True(t, called)
	pods, ok := handlers[validate.PodPath].(*validate.Handler)
	require.True(t, ok)
	assert.NotNil(t, pods.Claims, "a Pod's job-id is checked against the Jobs that hold it")
}

func TestSelectorsAndClaimNamespace(t *testing.T) {
	engine, err := loadEngine()
	require.NoError(t, err)
	sel := jobSelector(engine.Current())
	assert.True(t, sel.Matches(labels.Set{"app": "flowforge", "job-id": "a"}))
	assert.False(t, sel.Matches(labels.Set{"job-id": "a"}))
	assert.Equal(t, policies.DefaultClaimNamespace, claimNamespace(Options{}))
	assert.Equal(t, "ops", claimNamespace(Options{ClaimNamespace: "ops"}))
}
