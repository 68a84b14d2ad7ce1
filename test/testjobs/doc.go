// Package testjobs builds Jobs for tests, in the manner of kueue's
// pkg/util/testingjobs: MakeJob or MakeAgentJob, chained setters, Obj.
//
//	job := testjobs.MakeAgentJob("abc", "agents").UserID("alice").
//		Annotation(contract.AnnotationBranch, "main").Obj()
//
// It is the one Job builder of the unit and integration tests, so a change
// to the Job contract changes every test's Jobs at once. It imports only
// the Job contract and the Kubernetes API types.
package testjobs
