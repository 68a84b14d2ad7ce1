// Package jobs is FlowForge's Jobs client: it submits job requests as
// Kubernetes Jobs and follows, cancels and deletes them. The CLI and the
// backend use it; the webhook hardens what it creates, and the FlowForge
// controller acts on what it records.
//
// # Connecting
//
// LoadConfig finds the cluster (an explicit --kubeconfig, the in-cluster
// service account, $KUBECONFIG, ~/.kube/config) and NewForConfig builds a
// Client with the rate limits of Options. New takes any kubernetes.Interface,
// so tests use client-go's fake clientset.
//
// # Retries
//
// Every API call goes through one retry policy (Options.Backoff): each
// attempt is bounded by Options.RequestTimeout, and a transient failure
// (IsTransient: timeouts, 429, 5xx, refused or cut connections) is retried
// with exponential backoff and jitter, up to a bounded number of attempts,
// while the caller's context lasts. Permanent failures (NotFound, Forbidden,
// Invalid, Conflict, admission denials) return at once. When the attempts
// run out, the error names the API server, so an unreachable cluster is
// reported clearly and in bounded time.
//
// # Submit
//
// Submit renders the request with the templates package and creates the
// Job (and the task ConfigMap of a large task, then owned by the Job). It is
// idempotent on the job id: the Job records the hash of the normalized
// request, and a resubmission of the same request returns the existing Job
// with created=false, while a different request under the same id fails
// with ErrConflict and says what differs.
//
// # Status and Watch
//
// StatusOf maps a Job to a Phase (Pending, Running, Cancelling, Succeeded,
// Failed, Cancelled, TimedOut) from its conditions, counts and FlowForge's
// annotations. Watch lists the Job and watches it from the list's resource
// version until a terminal phase. A watch that closes (a server-side
// timeout, an API server restart) is resumed from the last resource version
// seen, with backoff; a resource version the server no longer has (410
// Gone/Expired, as after a restart empties the watch cache) leads to a new
// list. WatchFrom starts from a resource version saved earlier. A Job that
// is deleted before it finishes is reported with ErrDeleted.
//
// # Logs
//
// Logs streams the output of a job's pods, oldest attempt first with
// AllAttempts. Following requests timestamps, so that a broken stream is
// resumed from the last line without repeating it, and watches the pod: a
// kubelet may keep a follow stream open after the container ended (the
// local cluster's kwok always does), so once the pod has terminated, Logs
// reads for Options.LogDrain more and stops.
//
// # Cancel and Delete
//
// Cancel is declarative: it records who asked, why and when in the Job's
// cancel annotations, once (a second request keeps the first), and the
// controller ends the Job and marks it with flowforge.io/termination-reason.
// Delete deletes the Job; the export finalizer keeps it until the
// controller has archived it.
package jobs
