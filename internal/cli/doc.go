// Package cli is the flowforge command: submit, follow, list, cancel and
// read the logs of agent Jobs on the cluster (through the Jobs client in
// templates/jobs), read the execution history after the cluster has deleted
// them (through the controller's history API), and check a policy change
// offline (flowforge policy apply / test) with exactly the webhook's code.
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
