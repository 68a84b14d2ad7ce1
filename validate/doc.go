// Package validate holds FlowForge's validating admission handlers: one for
// batch/v1 Jobs on /validate-batch-v1-job and one for Pods on
// /validate-v1-pod (Pods created directly, and ephemeral containers added to
// running pods).
//
// They evaluate data.flowforge.validate and answer with one denial that
// lists every violation with its field path, as kubectl prints field errors
// (a 422 Invalid status built from a field.ErrorList), plus any warnings.
// Like the mutating handler they decide nothing themselves, honour dryRun
// (same answer, no metrics) and fail closed. For a Job CREATE the handler
// first gathers, from a local cache (Handler.Claims), the Jobs that already
// hold its job-id, and passes them as input.claims; without a source or
// when the cache fails, the Job is denied.
//
// Which objects reach them is set by the ValidatingWebhookConfiguration in
// deploy/: labelled Jobs and Pods anywhere but the excluded namespaces, and
// every Job and Pod in namespaces labelled flowforge.io/managed=true, so that
// leaving the label off is not a way around the hardening. Objects that are
// neither labelled nor in a managed namespace are allowed without evaluation.
//
// NamespaceHandler, on /validate-v1-namespace, guards the namespace labels
// and annotations that decide what FlowForge enforces (validate/namespace-labels
// in the policy): a change by anyone the policy's namespaceGuard does not
// name gets a 403 naming each key. Its webhook's matchConditions send only
// requests that add, change or remove a flowforge.io/ key.
//
// ConnectHandler, on /validate-v1-pod-connect, decides exec, attach,
// port-forward and proxy (CONNECT) on pods: the API server sends only the
// connect options, so it looks the pod up (PodMetadata, an uncached
// metadata GET) and evaluates the policy with the pod's metadata as the
// request's object (policies/validate/interactive-access). It fails closed.
//
// CronJobHandler, on /validate-batch-v1-cronjob, refuses FlowForge CronJobs
// when they are written (policies/validate/cronjob): a job-id names one Job
// created by its owner, and a CronJob would stamp out many, as the cronjob
// controller.
package validate
