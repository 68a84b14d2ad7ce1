// Package policies is FlowForge's policy set and the settings Go reads
// from it, without the engine that evaluates it.
//
// The Rego modules and their data (data.yaml) live next to this file and
// are embedded into every FlowForge binary (Embedded); a directory given
// with --policy-dir (for example a mounted ConfigMap) replaces them.
// Package policies/engine loads, tests, compiles and evaluates them: it is
// the only package that links OPA, and only the webhook and the CLI import
// it.
//
// What this package holds is what programs that never evaluate the policy
// need:
//   - Config, the typed view of data.flowforge.config, and ConfigSource,
//     which reads it (data.yaml plus the platform file, PlatformFile) and
//     hot-reloads it without compiling or testing the Rego. The controller
//     reads its settings this way, and so does not link OPA: its binary
//     maps about 13 MB less (docs/performance.md).
//   - Limits and their hard ceilings, the claim records' labels, and the
//     Claims the identity policy sees.
//   - The pieces the engine shares: Recorder, Status and the directory
//     watch.
package policies
