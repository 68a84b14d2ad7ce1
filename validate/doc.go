// Package validate holds FlowForge's validating admission handlers: one for
// batch/v1 Jobs on /validate-batch-v1-job and one for Pods on
// /validate-v1-pod (Pods created directly, and ephemeral containers added to
// running pods).
//
// They evaluate data.flowforge.validate and answer with one denial that
// lists every violation with its field path, as kubectl prints field errors
// (a 422 Invalid status built from a field.ErrorList), plus any warnings.
// Like the mutating handler they decide nothing themselves, honour dryRun
// (same answer, no metrics) and fail closed.
//
// Which objects reach them is set by the ValidatingWebhookConfiguration in
// deploy/: labelled Jobs and Pods anywhere but the excluded namespaces, and
// every Job and Pod in namespaces labelled flowforge.io/managed=true, so that
// leaving the label off is not a way around the hardening. Objects that are
// neither labelled nor in a managed namespace are allowed without evaluation.
package validate
