package worstcase

import (
	"encoding/json"
	"fmt"
	"strings"

	"github.com/flowforge/flowforge/policies"
)

func meta(name string) map[string]any {
	return map[string]any{"name": name, "namespace": "agents", "labels": map[string]any{"app": "flowforge", "job-id": name, "user-id": "u1"}}
}

func container(i int) map[string]any {
	return map[string]any{"name": fmt.Sprintf("c%d", i), "image": "ghcr.io/flowforge/claude-worker:1.4.0"}
}

func job(name string, metadata map[string]any, containers []any, pod map[string]any) map[string]any {
	if pod == nil {
		pod = map[string]any{}
	}
	pod["containers"] = containers
	pod["restartPolicy"] = "Never"
	return map[string]any{"apiVersion": "batch/v1", "kind": "Job", "metadata": metadata,
		"spec": map[string]any{"template": map[string]any{"spec": pod}}}
}

func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err) // maps of strings, numbers and lists always encode
	}
	return b
}

// EnvFlood is a Job with one container of n env entries (the issue's
// 100,000, 2.9 MB).
func EnvFlood(n int) []byte {
	c := container(0)
	env := make([]any, n)
	for i := range env {
		env[i] = map[string]any{"name": fmt.Sprintf("V%d", i), "value": "v"}
	}
	c["env"] = env
	return mustJSON(job("env-flood", meta("env-flood"), []any{c}, nil))
}

// ManyContainers is a Job with n containers (the 5,000, 263 KB).
func ManyContainers(n int) []byte {
	cs := make([]any, n)
	for i := range cs {
		cs[i] = container(i)
	}
	return mustJSON(job("many-containers", meta("many-containers"), cs, nil))
}

// AtLimits is a Job exactly at the limits l that cost the most: as many
// containers as allowed, each with as many env entries (up to envTotal),
// envFrom, volume mounts, ports and args as allowed, the most volumes,
// tolerations, labels and annotations, and env values that pad the object
// to just under objectBytes. Every count is at its limit, so one more
// entry anywhere is refused.
func AtLimits(l policies.Limits) []byte {
	n := int(l.Containers)
	envLeft := int(l.EnvTotal)
	cs := make([]any, n)
	var envVars []map[string]any
	for i := range cs {
		c := container(i)
		env := make([]any, 0, l.EnvPerContainer)
		for j := 0; j < int(l.EnvPerContainer) && envLeft > 0; j++ {
			v := map[string]any{"name": fmt.Sprintf("V%d_%d", i, j), "value": ""}
			env, envLeft = append(env, v), envLeft-1
			envVars = append(envVars, v)
		}
		c["env"] = env
		c["envFrom"] = list(int(l.EnvFromPerContainer), func(j int) any {
			return map[string]any{"configMapRef": map[string]any{"name": fmt.Sprintf("cm%d", j)}}
		})
		c["volumeMounts"] = list(int(l.VolumeMountsPerContainer), func(j int) any {
			return map[string]any{"name": fmt.Sprintf("v%d", j%int(l.Volumes)), "mountPath": fmt.Sprintf("/m/%d", j)}
		})
		c["ports"] = list(int(l.PortsPerContainer), func(j int) any { return map[string]any{"containerPort": 1024 + j} })
		c["args"] = list(int(l.ArgsPerContainer), func(int) any { return "a" })
		cs[i] = c
	}
	m := meta("at-limits")
	labels := m["labels"].(map[string]any)
	for i := len(labels); i < int(l.Labels); i++ {
		labels[fmt.Sprintf("l%d", i)] = "v"
	}
	annotations := map[string]any{}
	for i := 0; i < int(l.Annotations); i++ {
		annotations[fmt.Sprintf("a%d", i)] = "v"
	}
	m["annotations"] = annotations
	pod := map[string]any{
		"volumes":     list(int(l.Volumes), func(j int) any { return map[string]any{"name": fmt.Sprintf("v%d", j), "emptyDir": map[string]any{}} }),
		"tolerations": list(int(l.ListEntries), func(j int) any { return map[string]any{"key": fmt.Sprintf("k%d", j), "operator": "Exists"} }),
	}
	obj := job("at-limits", m, cs, pod)
	// Pad the env values to just under objectBytes.
	room := int(l.ObjectBytes) - len(mustJSON(obj)) - 64
	if room > 0 && len(envVars) > 0 {
		each := room / len(envVars)
		for i, v := range envVars {
			extra := 0
			if i == 0 {
				extra = room - each*len(envVars)
			}
			v["value"] = strings.Repeat("x", each+extra)
		}
	}
	return mustJSON(obj)
}

func list(n int, item func(int) any) []any {
	out := make([]any, n)
	for i := range out {
		out[i] = item(i)
	}
	return out
}

// Review wraps a Job in an AdmissionReview for the Job webhooks, as the API
// server sends it on CREATE.
func Review(uid string, object []byte) []byte {
	return mustJSON(map[string]any{
		"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
		"request": map[string]any{
			"uid":       uid,
			"kind":      map[string]any{"group": "batch", "version": "v1", "kind": "Job"},
			"resource":  map[string]any{"group": "batch", "version": "v1", "resource": "jobs"},
			"namespace": "agents", "operation": "CREATE",
			"userInfo": map[string]any{"username": "alice"},
			"object":   json.RawMessage(object),
		},
	})
}
