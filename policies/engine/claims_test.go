package engine

import (
	"context"
	"testing"

	"github.com/flowforge/flowforge/policies"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	admissionv1 "k8s.io/api/admission/v1"
)

// A policy that reports what it sees of input.claims.
const claimsValidate = `package flowforge.validate

deny contains {"msg": sprintf("%s %s from %s", [h.name, h.uid, h.source]), "field": "claims"} if some h in input.claims.jobID

deny contains {"msg": "no claims", "field": "claims"} if not input.claims

deny contains {"msg": "nobody else", "field": "claims"} if count(input.claims.jobID) == 0

warn contains {"msg": "unused", "field": "spec"} if input.request.object.spec.warn
`

func TestClaimsReachThePolicy(t *testing.T) {
	dir := fixtureDir(t)
	writePolicy(t, dir, map[string]string{"validate/v.rego": claimsValidate})
	e, err := New(context.Background(), Options{Tested: testedPolicies, Dir: dir})
	require.NoError(t, err)
	req := jobRequest(admissionv1.Create, `{"metadata":{}}`, "")
	tests := []struct {
		name   string
		claims *policies.Claims
		want   []Violation
	}{
		{name: "not gathered", claims: nil, want: []Violation{{Msg: "no claims", Field: "claims"}}},
		{name: "nobody else", claims: &policies.Claims{}, want: []Violation{{Msg: "nobody else", Field: "claims"}}},
		{name: "holders", claims: &policies.Claims{JobID: []policies.ClaimHolder{
			{Name: "a", UID: "1", Source: policies.ClaimSourceCluster},
			{Name: "b", UID: "2", Source: policies.ClaimSourceHistory},
		}}, want: []Violation{
			{Msg: "a 1 from cluster", Field: "claims"},
			{Msg: "b 2 from history", Field: "claims"},
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			v, err := e.Validate(context.Background(), Input{Request: req, Claims: tc.claims})
			require.NoError(t, err)
			assert.Equal(t, tc.want, v.Deny)
		})
	}
}
