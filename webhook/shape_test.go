package webhook

import (
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"sigs.k8s.io/yaml"

	"github.com/flowforge/flowforge/policies"
)

// servedLimits are the limits of the embedded policy (policies/data.yaml).
func servedLimits(t *testing.T) policies.Limits {
	t.Helper()
	e, err := loadEngine()
	require.NoError(t, err)
	return e.Current().Limits()
}

func entries(n int64, entry func(i int64) any) []any {
	out := make([]any, n)
	for i := range out {
		out[i] = entry(int64(i))
	}
	return out
}

func container(i int64) map[string]any {
	return map[string]any{"name": fmt.Sprintf("c%d", i), "image": "ghcr.io/flowforge/claude-worker:1.4.0"}
}

func anyContainer(i int64) any { return container(i) }

func envVar(i int64) any { return map[string]any{"name": fmt.Sprintf("E%d", i), "value": "v"} }

func stringMap(n int64, prefix string) map[string]any {
	m := map[string]any{}
	for i := range n {
		m[fmt.Sprintf("%s%d", prefix, i)] = "v"
	}
	return m
}

// job builds a labelled Job whose pod spec and metadata edit changes.
func job(edit func(meta, pod map[string]any)) map[string]any {
	meta := map[string]any{"name": "j", "labels": map[string]any{"app": "flowforge", "job-id": "a", "user-id": "u"}}
	pod := map[string]any{"containers": []any{container(0)}}
	edit(meta, pod)
	return map[string]any{"apiVersion": "batch/v1", "kind": "Job", "metadata": meta,
		"spec": map[string]any{"template": map[string]any{"spec": pod}}}
}

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	require.NoError(t, err)
	return b
}

// padTo pads the Job (in a field no limit counts) to exactly n bytes.
func padTo(t *testing.T, n int64) []byte {
	t.Helper()
	base := len(mustJSON(t, job(func(_, pod map[string]any) { pod["hostname"] = "" })))
	return mustJSON(t, job(func(_, pod map[string]any) { pod["hostname"] = strings.Repeat("x", int(n)-base) }))
}

type limitCase struct {
	name  string
	limit func(l *policies.Limits) *int64
	// build returns an object with n of what the limit counts.
	build func(t *testing.T, n int64) []byte
	field string
	unit  string
}

func limitCases() []limitCase {
	containerJob := func(edit func(c map[string]any, n int64)) func(t *testing.T, n int64) []byte {
		return func(t *testing.T, n int64) []byte {
			return mustJSON(t, job(func(_, pod map[string]any) {
				c := container(0)
				edit(c, n)
				pod["containers"] = []any{c}
			}))
		}
	}
	podList := func(key string) func(t *testing.T, n int64) []byte {
		return func(t *testing.T, n int64) []byte {
			return mustJSON(t, job(func(_, pod map[string]any) {
				pod[key] = entries(n, func(i int64) any { return map[string]any{"name": fmt.Sprintf("x%d", i)} })
			}))
		}
	}
	const spec = "object.spec.template.spec"
	return []limitCase{
		{name: "containers with init and ephemeral", limit: func(l *policies.Limits) *int64 { return &l.Containers }, unit: "entries",
			field: spec + ".containers, initContainers and ephemeralContainers",
			build: func(t *testing.T, n int64) []byte {
				return mustJSON(t, job(func(_, pod map[string]any) {
					pod["containers"] = entries(n-2, anyContainer)
					pod["initContainers"] = entries(1, anyContainer)
					pod["ephemeralContainers"] = entries(1, anyContainer)
				}))
			}},
		{name: "env of one container", limit: func(l *policies.Limits) *int64 { return &l.EnvPerContainer }, unit: "entries",
			field: spec + ".containers[0].env", build: containerJob(func(c map[string]any, n int64) { c["env"] = entries(n, envVar) })},
		{name: "env of an init container", limit: func(l *policies.Limits) *int64 { return &l.EnvPerContainer }, unit: "entries",
			field: spec + ".initContainers[0].env", build: func(t *testing.T, n int64) []byte {
				return mustJSON(t, job(func(_, pod map[string]any) {
					c := container(1)
					c["env"] = entries(n, envVar)
					pod["initContainers"] = []any{c}
				}))
			}},
		{name: "env of all containers", limit: func(l *policies.Limits) *int64 { return &l.EnvTotal }, unit: "entries",
			field: spec + " env of all containers", build: func(t *testing.T, n int64) []byte {
				return mustJSON(t, job(func(_, pod map[string]any) {
					// 256 a container: under envPerContainer, over envTotal.
					var cs []any
					for i := int64(0); n > 0; i++ {
						c := container(i)
						c["env"] = entries(min(n, 256), envVar)
						n -= min(n, 256)
						cs = append(cs, c)
					}
					pod["containers"] = cs
				}))
			}},
		{name: "envFrom", limit: func(l *policies.Limits) *int64 { return &l.EnvFromPerContainer }, unit: "entries", field: spec + ".containers[0].envFrom",
			build: containerJob(func(c map[string]any, n int64) {
				c["envFrom"] = entries(n, func(i int64) any { return map[string]any{"secretRef": map[string]any{"name": fmt.Sprint(i)}} })
			})},
		{name: "volumes", limit: func(l *policies.Limits) *int64 { return &l.Volumes }, unit: "entries", field: spec + ".volumes", build: podList("volumes")},
		{name: "volume mounts and devices", limit: func(l *policies.Limits) *int64 { return &l.VolumeMountsPerContainer }, unit: "entries",
			field: spec + ".containers[0].volumeMounts and volumeDevices", build: containerJob(func(c map[string]any, n int64) {
				c["volumeMounts"] = entries(n-1, func(i int64) any { return map[string]any{"name": "v", "mountPath": fmt.Sprintf("/m%d", i)} })
				c["volumeDevices"] = entries(1, func(int64) any { return map[string]any{"name": "d", "devicePath": "/dev/x"} })
			})},
		{name: "ports", limit: func(l *policies.Limits) *int64 { return &l.PortsPerContainer }, unit: "entries", field: spec + ".containers[0].ports",
			build: containerJob(func(c map[string]any, n int64) {
				c["ports"] = entries(n, func(i int64) any { return map[string]any{"containerPort": 1000 + i} })
			})},
		{name: "command and args entries", limit: func(l *policies.Limits) *int64 { return &l.ArgsPerContainer }, unit: "entries",
			field: spec + ".containers[0].command and args", build: containerJob(func(c map[string]any, n int64) {
				c["command"] = []any{"claude"}
				c["args"] = entries(n-1, func(int64) any { return "a" })
			})},
		{name: "command and args bytes", limit: func(l *policies.Limits) *int64 { return &l.ArgsBytesPerContainer }, unit: "bytes",
			field: spec + ".containers[0].command and args", build: containerJob(func(c map[string]any, n int64) {
				c["command"] = []any{"sh"}                         // 4 bytes of JSON
				c["args"] = []any{strings.Repeat("a", int(n)-4-2)} // n-4 with its quotes
			})},
		{name: "tolerations", limit: func(l *policies.Limits) *int64 { return &l.ListEntries }, unit: "entries", field: spec + ".tolerations", build: podList("tolerations")},
		{name: "host aliases", limit: func(l *policies.Limits) *int64 { return &l.ListEntries }, unit: "entries", field: spec + ".hostAliases", build: podList("hostAliases")},
		{name: "labels of the Job", limit: func(l *policies.Limits) *int64 { return &l.Labels }, unit: "entries", field: "object.metadata.labels",
			build: func(t *testing.T, n int64) []byte {
				return mustJSON(t, job(func(meta, _ map[string]any) {
					labels := stringMap(n-1, "l")
					labels["app"] = "flowforge"
					meta["labels"] = labels
				}))
			}},
		{name: "annotations of the template", limit: func(l *policies.Limits) *int64 { return &l.Annotations }, unit: "entries", field: spec[:len(spec)-5] + ".metadata.annotations",
			build: func(t *testing.T, n int64) []byte {
				j := job(func(_, _ map[string]any) {})
				j["spec"].(map[string]any)["template"].(map[string]any)["metadata"] = map[string]any{"annotations": stringMap(n, "a")}
				return mustJSON(t, j)
			}},
		{name: "size of labels and annotations", limit: func(l *policies.Limits) *int64 { return &l.MetadataBytes }, unit: "bytes",
			field: "object.metadata.labels and annotations", build: func(t *testing.T, n int64) []byte {
				return mustJSON(t, job(func(meta, _ map[string]any) {
					meta["labels"] = map[string]any{"app": "flowforge"}                         // 19 bytes
					meta["annotations"] = map[string]any{"a": strings.Repeat("x", int(n)-19-8)} // {"a":"…"}
				}))
			}},
		{name: "size of the object", limit: func(l *policies.Limits) *int64 { return &l.ObjectBytes }, unit: "bytes", field: "object", build: padTo},
		{name: "a Pod's containers", limit: func(l *policies.Limits) *int64 { return &l.Containers }, unit: "entries",
			field: "object.spec.containers, initContainers and ephemeralContainers", build: func(t *testing.T, n int64) []byte {
				return mustJSON(t, map[string]any{"apiVersion": "v1", "kind": "Pod", "metadata": map[string]any{"name": "p"},
					"spec": map[string]any{"containers": entries(n, anyContainer)}})
			}},
		{name: "a CronJob's env", limit: func(l *policies.Limits) *int64 { return &l.EnvPerContainer }, unit: "entries",
			field: "object.spec.jobTemplate.spec.template.spec.containers[0].env", build: func(t *testing.T, n int64) []byte {
				c := container(0)
				c["env"] = entries(n, envVar)
				return mustJSON(t, map[string]any{"apiVersion": "batch/v1", "kind": "CronJob", "metadata": map[string]any{"name": "cj"},
					"spec": map[string]any{"schedule": "* * * * *", "jobTemplate": map[string]any{"spec": map[string]any{"template": map[string]any{"spec": map[string]any{"containers": []any{c}}}}}}})
			}},
		{name: "a CronJob's Job labels", limit: func(l *policies.Limits) *int64 { return &l.Labels }, unit: "entries",
			field: "object.spec.jobTemplate.metadata.labels", build: func(t *testing.T, n int64) []byte {
				return mustJSON(t, map[string]any{"apiVersion": "batch/v1", "kind": "CronJob", "metadata": map[string]any{"name": "cj"},
					"spec": map[string]any{"jobTemplate": map[string]any{"metadata": map[string]any{"labels": stringMap(n, "l")}}}})
			}},
		{name: "a Namespace's labels", limit: func(l *policies.Limits) *int64 { return &l.Labels }, unit: "entries", field: "object.metadata.labels",
			build: func(t *testing.T, n int64) []byte {
				return mustJSON(t, map[string]any{"apiVersion": "v1", "kind": "Namespace", "metadata": map[string]any{"name": "ns", "labels": stringMap(n, "l")}})
			}},
		{name: "a pods/exec command", limit: func(l *policies.Limits) *int64 { return &l.ArgsPerContainer }, unit: "entries", field: "object.command",
			build: func(t *testing.T, n int64) []byte {
				return mustJSON(t, map[string]any{"apiVersion": "v1", "kind": "PodExecOptions", "command": entries(n, func(int64) any { return "sh" })})
			}},
	}
}

// TestCheckShapeLimits: for every limit, an object exactly at the served
// policy's limit passes and one just over it is refused, naming the field
// and the limit.
func TestCheckShapeLimits(t *testing.T) {
	for _, tc := range limitCases() {
		t.Run(tc.name, func(t *testing.T) {
			limits := servedLimits(t)
			limit := tc.limit(&limits)
			name := policies.LimitName(&limits, limit)
			max := *limit
			require.NoError(t, CheckShape(tc.build(t, max), limits), "at the limit")

			err := CheckShape(tc.build(t, max+1), limits)
			var limitErr *LimitError
			require.ErrorAs(t, err, &limitErr, "one over the limit")
			require.Equal(t, LimitError{Field: tc.field, Limit: name, Value: max + 1, Max: max, Unit: tc.unit}, *limitErr)
			require.ErrorContains(t, err, fmt.Sprintf("%s has %d %s, over the limit of %d (limits.%s in FlowForge's policy data)", tc.field, max+1, tc.unit, max, name))

			lowered := limits
			*tc.limit(&lowered) = max - 1
			require.ErrorAs(t, CheckShape(tc.build(t, max), lowered), &limitErr, "a policy that lowers the limit")
		})
	}
}

// TestLegitimateJobsAreWithinTheLimits: every Job of the legitimate table
// (validate/testdata/legitimate-jobs.yaml) is within the served limits,
// with room to spare.
func TestLegitimateJobsAreWithinTheLimits(t *testing.T) {
	data, err := os.ReadFile("../validate/testdata/legitimate-jobs.yaml")
	require.NoError(t, err)
	var jobs []struct {
		Name string          `json:"name"`
		Job  json.RawMessage `json:"job"`
	}
	require.NoError(t, yaml.Unmarshal(data, &jobs))
	require.NotEmpty(t, jobs)
	limits := servedLimits(t)
	halved := policies.Limits{}
	for _, f := range []func(*policies.Limits) *int64{
		func(l *policies.Limits) *int64 { return &l.ObjectBytes }, func(l *policies.Limits) *int64 { return &l.Containers },
		func(l *policies.Limits) *int64 { return &l.EnvPerContainer }, func(l *policies.Limits) *int64 { return &l.EnvTotal },
		func(l *policies.Limits) *int64 { return &l.EnvFromPerContainer }, func(l *policies.Limits) *int64 { return &l.Volumes },
		func(l *policies.Limits) *int64 { return &l.VolumeMountsPerContainer }, func(l *policies.Limits) *int64 { return &l.PortsPerContainer },
		func(l *policies.Limits) *int64 { return &l.ArgsPerContainer }, func(l *policies.Limits) *int64 { return &l.ArgsBytesPerContainer },
		func(l *policies.Limits) *int64 { return &l.ListEntries }, func(l *policies.Limits) *int64 { return &l.Labels },
		func(l *policies.Limits) *int64 { return &l.Annotations }, func(l *policies.Limits) *int64 { return &l.MetadataBytes },
	} {
		*f(&halved) = *f(&limits) / 2
	}
	for _, j := range jobs {
		t.Run(j.Name, func(t *testing.T) {
			require.NoError(t, CheckShape(j.Job, halved), "within half of every limit")
		})
	}
}

func TestCheckShapeMalformed(t *testing.T) {
	limits := servedLimits(t)
	tests := []struct{ name, raw, want string }{
		{"not JSON", `{`, "unexpected end of JSON input"},
		{"containers not a list", `{"spec":{"containers":{"a":1}}}`, "cannot unmarshal object into Go struct field"},
		{"labels not an object", `{"metadata":{"labels":[1]}}`, "expected a JSON object"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			require.ErrorContains(t, CheckShape([]byte(tc.raw), limits), tc.want)
		})
	}
	require.NoError(t, CheckShape([]byte(`null`), limits), "no object (a DELETE's)")
	require.NoError(t, CheckShape([]byte(`{"metadata":{"labels":null,"annotations":{"a:b":"{\"x\":[1,\"}\"]}"}}}`), limits), "colons and brackets in strings")
}

func TestCountObjectKeys(t *testing.T) {
	for raw, want := range map[string]int64{
		`{}`: 0, ` {"a":"b"}`: 1, `{"a":"b","c":{"d":"e"}}`: 2, `{"a\"b:":"c:d","e":["f:g",{"h":1}]}`: 2, `null`: 0,
	} {
		got, err := countObjectKeys([]byte(raw))
		require.NoError(t, err, raw)
		require.Equal(t, want, got, raw)
	}
	_, err := countObjectKeys([]byte(`"x"`))
	require.ErrorContains(t, err, "expected a JSON object")
}
