// Package chaos is FlowForge's fault run: under a steady stream of Job
// creates through the API server, it injects, one after the other, the
// faults a real cluster has, and measures what they cost:
//
//   - a webhook replica is stopped (as Kubernetes stops a pod: SIGTERM) and
//     started again;
//   - a webhook replica crashes (SIGKILL) and is started again;
//   - the webhook's serving certificate is rotated (certs.ForceRotation);
//   - a broken policy is pushed (it must be refused, the old one kept),
//     then a good one (every replica must serve it);
//   - the API server restarts;
//   - the controller is killed in the middle of a burst and started again.
//
// The stream keeps its schedule (stream.go): the n-th create is due at
// the start plus n/rate, and creates a fault delayed start as soon as a
// slot of the bounded number in flight frees, so that the stream catches
// up. The report gives the admitted creates per second over the run and
// over its steady windows, and whether the ClaimRate (50/s) holds.
//
// Every create is classified (classify.go): admitted, denied by the
// policy, failed admission (the API server could not get an answer from
// a webhook: a failed call, a timeout, a refusal for load), or API server
// unavailable (the request never reached admission; the stream retries it).
// The API server's own count of rejected webhook calls covers the
// admissions the stream does not make (the Job controller's pods, the
// FlowForge controller's updates). At the end, every admitted Job must be
// recorded in the execution history and exported exactly once.
//
// Run drives a stack that test/localup started (its Ready hook); a fault
// whose building block the stack lacks is reported as not run, with the
// reason, never silently dropped. `make chaos` (test/cmd/chaos) runs the
// full version and prints one summary line; test/integration/chaos runs a
// shorter one.
package chaos
