package engine

import (
	"github.com/open-policy-agent/opa/v1/ast"

	"github.com/flowforge/flowforge/policies"
)

// claimsValue is c as the policy sees it: input.claims.
func claimsValue(c *policies.Claims) ast.Value {
	holders := make([]*ast.Term, 0, len(c.JobID))
	for _, h := range c.JobID {
		holders = append(holders, ast.ObjectTerm(
			ast.Item(ast.StringTerm("name"), ast.StringTerm(h.Name)),
			ast.Item(ast.StringTerm("uid"), ast.StringTerm(h.UID)),
			ast.Item(ast.StringTerm("source"), ast.StringTerm(h.Source)),
		))
	}
	return ast.NewObject(ast.Item(ast.StringTerm("jobID"), ast.ArrayTerm(holders...)))
}
