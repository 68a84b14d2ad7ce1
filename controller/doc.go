// Package controller is FlowForge's companion controller: a
// controller-runtime manager (with leader election) whose cache holds Jobs
// and Pods labelled app=flowforge, cut down to what the controller reads
// (SlimJob, SlimPod: metadata, status, container names and states, and
// the Job's deadline, failure policy and TTL; no pod template, no pod
// spec beyond names and node). The events about Jobs are kept apart, by
// Job and cut down to what the export copies, until the Job is exported
// for good (JobEventBook, fed by its own reflector). Pods are indexed by their Job's UID
// (IndexPods), so a reconcile's pod list is a lookup. A Job exported with
// every pod ended is cut down further, with its pods, at their next change
// (ExportedJobs, StubJob, StubPod: what finalizer release, TTL deletion and
// the state collector read), and its reconciles take a short path that
// reads nothing else. Events are written straight to the API server
// (EventWriter), without client-go's broadcaster and its cache of recent
// events. Memory thus follows the Jobs in flight more than the finished
// ones waiting for their TTL.
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
//   - writes each attempt's peak CPU and memory at export, as sampled
//     from metrics.k8s.io while it ran by UsageSampler (usage.go), when
//     that API is served;
//   - exports each finished Job (final status, events and per-attempt log
//     archives) before it lets it go: the webhook puts a finalizer on the
//     Job and on its pods, and the reconciler removes them only once the
//     export is stored, so TTL cleanup never loses data. Before it lets a
//     Job go it records that the Job's job-id is taken (Claims: a ConfigMap
//     without data in FlowForge's namespace, which the webhook caches), so
//     a job-id names one Job even after the Job is gone. A failing export
//     keeps the Job and raises flowforge_export_failures_total. Job events
//     come from the JobEventBook; finalizers are removed
//     by value (RemoveFinalizer), so other controllers' updates never make
//     the export conflict;
//   - deletes each exported Job, with its pods (foreground), once the TTL
//     in its flowforge.io/ttl-seconds-after-finished annotation has passed
//     since it finished. The webhook puts the TTL there instead of in
//     spec.ttlSecondsAfterFinished, so that the built-in TTL controller
//     never starts a deletion (and with it the node's removal of the pods'
//     logs) before the export. A Job deleted by someone else is exported as
//     soon as the deletion is seen; a log its node removed first is
//     reported (LogsLost) instead of retried for ever;
//   - emits Events (Started, Retried, Succeeded, Failed, TimedOut,
//     Cancelled, Exported, Deleted, LogsLost) and Prometheus metrics.
//
// Everything is rebuilt from the cluster and the history store, and every
// one-time effect (an Event, a metric observation) is guarded by a mark in
// the store, so a restart or a change of leader neither loses nor
// double-counts anything.
package controller
