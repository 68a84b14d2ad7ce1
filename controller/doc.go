// Package controller is FlowForge's companion controller: a
// controller-runtime manager (with leader election) whose cache holds Jobs
// and Pods labelled app=flowforge, with managedFields stripped, and the
// events about Jobs, cut down to what the export copies.
//
// The Job reconciler:
//   - records every Job and each of its attempts (pod, node, start and end,
//     exit code, reason, and whether podFailurePolicy counted it) in the
//     execution history (package history);
//   - cancels a Job when a user asks for it declaratively (the
//     flowforge.io/cancel-* annotations that `flowforge cancel` writes), and
//     ends a Job whose pods stay Pending (unschedulable, image-pull back-off)
//     longer than the policy allows. Both lower the Job's
//     activeDeadlineSeconds to the time already elapsed, so that the Job
//     controller itself terminates the pods gracefully (SIGTERM, then the
//     grace period) and marks the Job Failed; the reason is recorded in the
//     flowforge.io/termination-reason annotation, Events and the history;
//   - ships the logs of running pods, line by line, to a sink (stdout JSON
//     by default) tagged with job-id, user-id and attempt;
//   - exports each finished Job (final status, events and per-attempt log
//     archives) before it lets it go: the webhook puts a finalizer on the
//     Job and on its pods, and the reconciler removes them only once the
//     export is stored, so TTL cleanup never loses data. A failing export
//     keeps the Job and raises flowforge_export_failures_total. Job events
//     come from the manager's cache (Job events only, slimmed by SlimEvent,
//     indexed by IndexJobEvents); finalizers are removed
//     by value (RemoveFinalizer), so other controllers' updates never make
//     the export conflict;
//   - emits Events (Started, Retried, Succeeded, Failed, TimedOut,
//     Cancelled, Exported) and Prometheus metrics.
//
// Everything is rebuilt from the cluster and the history store, and every
// one-time effect (an Event, a metric observation) is guarded by a mark in
// the store, so a restart or a change of leader neither loses nor
// double-counts anything.
package controller
