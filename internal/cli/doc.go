// Package cli is the flowforge command: submit, follow, list, cancel and
// read the logs of agent Jobs on the cluster (through the Jobs client in
// jobs/), read the execution history after the cluster has deleted
// them (history.flowforge.io through the API server, with the user's own
// credentials: history.APIClient), and check a policy change
// offline (flowforge policy apply / test) with exactly the webhook's code.
//
// It is also a kubectl plugin: named kubectl-flowforge (ExecuteAs,
// DisplayName) it runs as `kubectl flowforge`. It reads the cluster through
// kubectl's global flags (k8s.io/cli-runtime's ConfigFlags), prints the API
// server's warnings as kubectl does (rest.NewWarningWriter), keeps a live
// status line on a terminal (progress, follow), completes job ids and
// namespaces (completion.go) and prints its version and the cluster's
// (version.go). docs/cli.md documents all of it.
//
// Exit codes tell scripts what happened:
//
//	0  success (for a waited-on job: it succeeded)
//	1  an error (cluster unreachable, job not found, ...)
//	2  invalid usage or an invalid job request
//	3  the job failed
//	4  the job timed out
//	5  the job was cancelled
//	6  the admission policy denies the object (policy apply)
package cli
