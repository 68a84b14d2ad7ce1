package engine

import (
	"context"
	"io/fs"
	"testing"

	"github.com/flowforge/flowforge/policies"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/rego"
	"github.com/open-policy-agent/opa/v1/storage/inmem"
)

// The benchmarks in this file are measurements for a design decision, not
// tests of the served policy: how fast could embedded OPA produce the
// hardening of the typical Job if the policy were written differently?
// docs/performance.md records the answers; rerun them with
// `go test -run '^$' -bench 'Floor|Coarse' ./policies`.

// prepareExperiment prepares query against modules plus the served policy
// data, the way compile prepares the served queries.
func prepareExperiment(b *testing.B, query string, data map[string]any, modules map[string]string) rego.PreparedEvalQuery {
	b.Helper()
	opts := []func(*rego.Rego){
		rego.Query(query),
		rego.Store(inmem.NewFromObjectWithOpts(data, inmem.OptReturnASTValuesOnRead(true))),
		rego.SetRegoVersion(ast.RegoV1),
		rego.GenerateJSON(func(t *ast.Term, _ *rego.EvalContext) (any, error) { return t, nil }),
	}
	for name, src := range modules {
		opts = append(opts, rego.Module(name, src))
	}
	q, err := rego.New(opts...).PrepareForEval(context.Background())
	if err != nil {
		b.Fatal(err)
	}
	return q
}

// evalSetSize evaluates q once and returns the size of the set bound to
// "patch", failing the benchmark if there is none.
func evalSetSize(b *testing.B, q rego.PreparedEvalQuery, input ast.Value) int {
	b.Helper()
	rs, err := q.Eval(context.Background(), rego.EvalParsedInput(input))
	if err != nil {
		b.Fatal(err)
	}
	if len(rs) != 1 {
		b.Fatalf("expected one result, got %d", len(rs))
	}
	t, ok := rs[0].Bindings["patch"].(*ast.Term)
	if !ok {
		b.Fatalf("patch is %T", rs[0].Bindings["patch"])
	}
	switch v := t.Value.(type) {
	case ast.Set:
		return v.Len()
	case *ast.Array:
		return v.Len()
	default:
		b.Fatalf("patch is a %s", ast.ValueName(t.Value))
		return 0
	}
}

func benchEval(b *testing.B, q rego.PreparedEvalQuery, input ast.Value) {
	b.ReportAllocs()
	for b.Loop() {
		if _, err := q.Eval(context.Background(), rego.EvalParsedInput(input)); err != nil {
			b.Fatal(err)
		}
	}
}

// floorModule builds hardening documents with no decisions at all, from
// entries in data: what any policy pays for evaluation and for each entry
// of its result.
const floorModule = `package flowforge.experiments.floor

applies if {
	input.request.kind.kind == "Job"
	input.request.object.metadata.labels.app == "flowforge"
	input.request.operation == "CREATE"
}

# constant: the entries as one data document.
constant := data.experiment.entries if applies

# entries: the same entries, each built as the served policy builds its own.
entries contains {"setting": e.setting, "op": e.op, "path": e.path, "value": e.value} if {
	applies
	some e in data.experiment.entries
}
`

// BenchmarkEvalFloor measures OPA's fixed cost per evaluation (a constant
// result) and the cost of building a 39-entry document (what the served
// policy returns for the typical Job) when no entry needs a decision.
func BenchmarkEvalFloor(b *testing.B) {
	entries := make([]any, 0, 39)
	for i := range 39 {
		entries = append(entries, map[string]any{
			"setting": "s", "op": "default",
			"path":  []any{"spec", "template", "spec", "field", i},
			"value": map[string]any{"value": i},
		})
	}
	data := map[string]any{"experiment": map[string]any{"entries": entries}}
	input, err := benchEngine(b).Current().inputValue(benchInput(b))
	if err != nil {
		b.Fatal(err)
	}
	for _, rule := range []string{"constant", "entries"} {
		b.Run(rule, func(b *testing.B) {
			q := prepareExperiment(b, "patch = data.flowforge.experiments.floor."+rule, data, map[string]string{"floor.rego": floorModule})
			if n := evalSetSize(b, q, input); n != len(entries) {
				b.Fatalf("%s has %d entries, want %d", rule, n, len(entries))
			}
			benchEval(b, q, input)
		})
	}
}

// BenchmarkCoarseDocumentEval measures the alternative design for the
// mutation policy: about one entry per scope (Job, pod, container), each
// a deep object applied with "defaults" or "merge", instead of one entry
// per setting. The module makes the served policy's decisions for the
// typical Job (profiles, seccomp overrides, timeouts, clamps, privileged
// conflicts, own profiles, scratch volumes); it is a prototype, not served,
// and has no Go applier for "defaults". Compare BenchmarkMutateEval.
func BenchmarkCoarseDocumentEval(b *testing.B) {
	quantity, err := fs.ReadFile(policies.Embedded(), "lib/quantity.rego")
	if err != nil {
		b.Fatal(err)
	}
	p := benchEngine(b).Current()
	input, err := p.inputValue(benchInput(b))
	if err != nil {
		b.Fatal(err)
	}
	q := prepareExperiment(b, "patch = data.flowforge.experiments.coarse.patch", p.data, map[string]string{
		"coarse.rego":   coarseModule,
		"quantity.rego": string(quantity),
	})
	// One container: 3 job, 3 pod, 2 pod metadata, 2 finalizer entries,
	// 3 container entries, 2 mounts and the volumes.
	if n := evalSetSize(b, q, input); n != 15 {
		b.Fatalf("the coarse document has %d entries, want 15", n)
	}
	benchEval(b, q, input)
}

const coarseModule = `package flowforge.experiments.coarse

import data.flowforge.config
import data.flowforge.lib.quantity

obj := input.request.object

applies if {
	input.request.kind.kind == "Job"
	obj.metadata.labels[config.selector.label] == config.selector.value
	input.request.operation == "CREATE"
}

pod := object.get(obj, ["spec", "template", "spec"], {})

annotations := object.get(obj, ["metadata", "annotations"], {})

labels := object.get(obj, ["metadata", "labels"], {})

nsl := object.get(input, ["namespace", "labels"], {})

requested_profile := object.get(annotations, config.annotations.profile, config.resources.defaultProfile)

profile_name := requested_profile if config.resources.profiles[requested_profile]

profile_name := config.resources.defaultProfile if not config.resources.profiles[requested_profile]

profile := config.resources.profiles[profile_name]

seccomp_overrides := [o.profile |
	some o in config.seccomp.namespaceOverrides
	every key, value in o.namespaceSelector {
		nsl[key] == value
	}
]

seccomp_profile := seccomp_overrides[0] if count(seccomp_overrides) > 0

seccomp_profile := config.seccomp.default if count(seccomp_overrides) == 0

timeout_seconds := to_number(raw) if {
	raw := annotations[config.annotations.timeout]
	regex.match("^[0-9]+$", raw)
}

timeout_seconds := round(time.parse_duration_ns(raw) / 1000000000) if {
	raw := annotations[config.annotations.timeout]
	not regex.match("^[0-9]+$", raw)
}

deadline := {"activeDeadlineSeconds": config.job.activeDeadlineSeconds.default} if not timeout_seconds

else := {}

deadline_set := {"activeDeadlineSeconds": timeout_seconds} if timeout_seconds > 0

else := {}

job_defaults := object.union(deadline, {
	"ttlSecondsAfterFinished": config.job.ttlSecondsAfterFinished.default,
	"podFailurePolicy": {"rules": [
		{"action": "FailJob", "onExitCodes": {"operator": "In", "values": config.job.podFailurePolicy.failJobOnExitCodes}},
		{"action": "Ignore", "onPodConditions": [{"type": "DisruptionTarget", "status": "True"}]},
	]},
})

ttl_clamp := {"ttlSecondsAfterFinished": config.job.ttlSecondsAfterFinished.max} if {
	obj.spec.ttlSecondsAfterFinished > config.job.ttlSecondsAfterFinished.max
} else := {}

warn contains sprintf("spec.ttlSecondsAfterFinished: %d is above the maximum and was set to %d", [obj.spec.ttlSecondsAfterFinished, config.job.ttlSecondsAfterFinished.max]) if {
	applies
	obj.spec.ttlSecondsAfterFinished > config.job.ttlSecondsAfterFinished.max
}

backoff := {"backoffLimit": config.job.backoffLimit.default} if {
	object.get(obj, ["spec", "backoffLimit"], 6) == 6
} else := {}

patch contains {"setting": "job", "op": "defaults", "path": ["spec"], "value": job_defaults} if applies

patch contains {"setting": "job", "op": "merge", "path": ["spec"], "value": object.union_n([deadline_set, backoff, ttl_clamp, {"podReplacementPolicy": "Failed"}])} if applies

patch contains {"setting": "pod", "op": "defaults", "path": ["spec", "template", "spec"], "value": {
	"runtimeClassName": config.runtimeClass.default,
	"securityContext": object.union(config.podSecurityContext, {"runAsNonRoot": true}),
}} if applies

pod_sc := object.get(pod, "securityContext", {})

unconfined(p) if p.type == "Unconfined"

legacy_apparmor if {
	some key, _ in object.get(obj, ["spec", "template", "metadata", "annotations"], {})
	startswith(key, "container.apparmor.security.beta.kubernetes.io/")
}

profiles := {"seccompProfile": seccomp_profile, "appArmorProfile": config.appArmor} if not legacy_apparmor

else := {"seccompProfile": seccomp_profile}

sc_set := {k: v |
	some k, v in profiles
	not unconfined(object.get(pod_sc, k, {}))
}

patch contains {"setting": "pod", "op": "merge", "path": ["spec", "template", "spec"], "value": {
	"automountServiceAccountToken": false,
	"enableServiceLinks": false,
	"priorityClassName": config.priorityClassName,
	"restartPolicy": "Never",
	"securityContext": sc_set,
	"nodeSelector": config.scheduling.nodeSelector,
}} if applies

patch contains {"setting": "tolerations", "op": "union", "path": ["spec", "template", "spec", "tolerations"], "value": config.scheduling.tolerations} if applies

patch contains {"setting": "podMeta", "op": "merge", "path": ["spec", "template", "metadata"], "value": {
	"labels": {k: v | some k in config.propagatedLabels; v := labels[k]},
	"annotations": {config.annotations.profile: profile_name, config.annotations.policyRevision: input.policy.revision},
}} if applies

patch contains {"setting": "meta", "op": "merge", "path": ["metadata"], "value": {"annotations": {config.annotations.policyRevision: input.policy.revision}}} if applies

patch contains {"setting": "finalizers", "op": "union", "path": ["metadata", "finalizers"], "value": [config.export.jobFinalizer]} if applies

patch contains {"setting": "podFinalizers", "op": "union", "path": ["spec", "template", "metadata", "finalizers"], "value": [config.export.podFinalizer]} if applies

ctr_sc_defaults(c) := {"privileged": false, "runAsNonRoot": true} if c.securityContext.privileged == true

else := {"privileged": false, "allowPrivilegeEscalation": false, "runAsNonRoot": true}

resource_names := ["cpu", "memory", "ephemeral-storage"]

limit_ok(c, res) if not c.resources.requests[res]

limit_ok(c, res) if units.parse(c.resources.requests[res]) <= units.parse(profile.limits[res])

req_default(c, res) := quantity.min(profile.requests[res], c.resources.limits[res])

req_default(c, res) := profile.requests[res] if not c.resources.limits[res]

patch contains {"setting": "container", "op": "defaults", "path": ["spec", "template", "spec", kind, i], "value": {
	"securityContext": ctr_sc_defaults(c),
	"resources": {
		"limits": {res: profile.limits[res] | some res in resource_names; limit_ok(c, res)},
		"requests": {res: req_default(c, res) | some res in resource_names},
	},
}} if {
	applies
	some kind in ["initContainers", "containers"]
	some i, c in object.get(pod, kind, [])
}

ctr_profiles(csc) := {k: v |
	some k, v in profiles
	p := csc[k]
	not unconfined(p)
}

patch contains {"setting": "container", "op": "merge", "path": ["spec", "template", "spec", kind, i, "securityContext"], "value": object.union({"readOnlyRootFilesystem": true}, ctr_profiles(object.get(c, "securityContext", {})))} if {
	applies
	some kind in ["initContainers", "containers"]
	some i, c in object.get(pod, kind, [])
}

patch contains {"setting": "container.capabilities.drop", "op": "union", "path": ["spec", "template", "spec", kind, i, "securityContext", "capabilities", "drop"], "value": ["ALL"]} if {
	applies
	some kind in ["initContainers", "containers"]
	some i, _ in object.get(pod, kind, [])
}

missing := [[kind, i, v] |
	some kind in ["initContainers", "containers"]
	some i, c in object.get(pod, kind, [])
	some v in config.volumes
	not has_mount(c, v.mountPath)
]

has_mount(c, p) if {
	some m in object.get(c, "volumeMounts", [])
	m.mountPath == p
}

patch contains {"setting": "volumeMounts", "op": "add", "path": ["spec", "template", "spec", m[0], m[1], "volumeMounts"], "key": "mountPath", "value": [{"name": m[2].name, "mountPath": m[2].mountPath}]} if {
	applies
	some m in missing
}

patch contains {"setting": "volumes", "op": "add", "path": ["spec", "template", "spec", "volumes"], "key": "name", "value": [{"name": v.name, "emptyDir": {"sizeLimit": v.sizeLimit}} | some m in missing; v := m[2]]} if {
	applies
	count(missing) > 0
}

patch contains {"setting": "volume.sizeLimit", "op": "defaults", "path": ["spec", "template", "spec", "volumes", j, "emptyDir"], "value": {"sizeLimit": v.sizeLimit}} if {
	applies
	some kind in ["initContainers", "containers"]
	some c in object.get(pod, kind, [])
	some m in object.get(c, "volumeMounts", [])
	some v in config.volumes
	m.mountPath == v.mountPath
	some j, vol in object.get(pod, "volumes", [])
	vol.name == m.name
	is_object(vol.emptyDir)
}
`
