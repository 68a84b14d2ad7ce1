// Package mutate is FlowForge's mutating admission handler for batch/v1
// Jobs, served on /mutate-batch-v1-job.
//
// On CREATE of a Job labelled app=flowforge it builds the policy input (the
// admission request plus the namespace's labels, read from a cache),
// evaluates data.flowforge.mutate, applies the resulting settings with the
// merge rules of policies.Apply, and answers with
// admission.PatchResponseFromRaw. It decides nothing itself: what a Job must
// have is policy. It is idempotent (a second pass yields no patch), honours
// dryRun (same answer, no side effects: no mutation metrics), and fails
// closed: if the policy cannot be evaluated or applied for a labelled Job,
// the Job is denied with a message that says why.
//
// Other operations and unlabelled Jobs are allowed unchanged. Requests that
// are not a decodable batch/v1 Job get a 400 error response.
//
// PodHandler, on /mutate-v1-pod, does the same for labelled Pods that no
// hardened Job created (a bare Pod, a ReplicaSet's): the same policy, whose
// pod-level rules apply to a Pod's spec, plus a deadline of its own
// (policies/mutate/pod-lifecycle). It also removes the service-account
// token volume the API server injected before the webhook ran, once the
// policy has said automountServiceAccountToken: false.
package mutate
