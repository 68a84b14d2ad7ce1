// Package floor is the reference floor for admission performance: a
// pure-Go hardening webhook for Jobs (controller-runtime, decode, harden
// with fixed settings, admission.PatchResponseFromRaw) with no policy
// engine. FlowForge's admission is measured beside it in the same run
// (webhook/server's BenchmarkAdmission, docs/performance.md), so that its
// cost is stated against what plain Go costs on the same machine. It is a
// measuring stick, not a policy: it decides nothing.
package floor
