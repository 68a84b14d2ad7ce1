// Package engine loads, tests, compiles, hot-reloads and evaluates
// FlowForge's Rego policies (the policy set of package policies), and
// applies the hardening they decide. It is the one package that links OPA.
//
// The Rego modules and their data (data.yaml) live in policies/ and are
// embedded into every FlowForge binary (policies.Embedded); a directory
// given with --policy-dir (for example a mounted ConfigMap) replaces them. Files are loaded in OPA's
// bundle mode: *.rego modules plus data.yaml/data.json documents. Other
// files (samples, testdata) are ignored.
//
// A policy set is accepted only if it compiles in strict mode and every one
// of its own tests (the *_test.rego files) passes. The accepted set is
// compiled once into prepared queries and swapped in atomically; a refused
// set leaves the previous one serving, and the refusal is logged, counted
// and reported by Status (and so in the webhook's readiness details).
// Options.Tested (TestedPolicies) lets a process that builds many engines
// of the same files, such as a test binary, run a set's tests once per
// content; without it every load runs them.
//
// The model follows docs/design.md: Rego decides *what* a Job must have, as
// the declarative document data.flowforge.mutate.patch (see
// mutate/mutate.rego for its format), and Apply writes that document into
// the Job with explicit merge rules. Rego never writes JSON Patch itself:
// patches for nested, possibly missing paths and for container arrays are
// hard to keep idempotent in Rego, while a small Go applier makes a second
// pass a no-op by construction. Validation yields data.flowforge.validate.deny
// and .warn, sets of {msg, field}.
//
// Validation is served as two queries (docs/policies.md, "Identity and
// shape"): the shape, cached on its masked views, and the identity rules,
// evaluated on every request. The identity query is compiled at load:
// OPA's planner turns it into OPA's intermediate representation and
// irvm.go runs that plan with OPA's built-in functions, about 8x faster
// than topdown. A plan the evaluator cannot run leaves the query with
// topdown (Policy.IdentityEvaluator says which and why).
//
// Image references are the one thing Rego does not parse itself: a
// reference's grammar (registry host and port, path components, tag,
// digest, the docker.io/library normalisation) is the standard
// github.com/distribution/reference parser's, and a string-prefix match in
// Rego admitted look-alikes. So the input builder parses every container
// image of the object and the old object (ParseImage) and hands the
// policy input.images[<raw reference>] = {valid, domain, path, tag,
// digest} or {valid: false, error}; validate/images compares components
// and denies any image missing from the view, so a policy run without the
// view fails closed. `opa test` still works with the upstream binary: the
// tests carry the views in lib/images_test.rego, which a Go test keeps
// equal to ParseImage.
package engine
