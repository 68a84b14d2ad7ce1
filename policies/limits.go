package policies

import (
	"encoding/json"
	"fmt"
	"math"
	"sort"
	"strings"
)

// Limits bound the shape of the objects the webhook evaluates: what no
// real Job or Pod needs, refused before any policy evaluation so that one
// request costs memory and CPU in proportion to a real object. The values
// come from data.flowforge.config.limits (policies/data.yaml), each at
// most its ceiling (Ceilings); a limit the data leaves out is its ceiling.
type Limits struct {
	// ObjectBytes caps the JSON of an object (the request's object and
	// oldObject, each).
	ObjectBytes int64
	// Containers caps containers + initContainers + ephemeralContainers
	// of one pod spec.
	Containers int64
	// EnvPerContainer caps the env entries of one container, EnvTotal
	// those of all containers of one pod spec.
	EnvPerContainer int64
	EnvTotal        int64
	// EnvFromPerContainer caps the envFrom entries of one container.
	EnvFromPerContainer int64
	// Volumes caps the volumes of one pod spec.
	Volumes int64
	// VolumeMountsPerContainer caps volumeMounts + volumeDevices of one
	// container.
	VolumeMountsPerContainer int64
	// PortsPerContainer caps the ports of one container.
	PortsPerContainer int64
	// ArgsPerContainer caps command + args entries of one container (or of
	// a pods/exec command); ArgsBytesPerContainer their JSON size.
	ArgsPerContainer      int64
	ArgsBytesPerContainer int64
	// ListEntries caps each other list of a pod spec: tolerations,
	// hostAliases, imagePullSecrets, topologySpreadConstraints,
	// readinessGates, schedulingGates, resourceClaims.
	ListEntries int64
	// Labels and Annotations cap the entries of one metadata (an object's
	// or a template's); MetadataBytes the size of their keys and values.
	Labels        int64
	Annotations   int64
	MetadataBytes int64
}

// limitField names a limit in the policy data and reaches its field.
type limitField struct {
	name  string
	field func(*Limits) *int64
}

// limitFields lists every limit by its name in data.flowforge.config.limits.
func limitFields() []limitField {
	return []limitField{
		{"objectBytes", func(l *Limits) *int64 { return &l.ObjectBytes }},
		{"containers", func(l *Limits) *int64 { return &l.Containers }},
		{"envPerContainer", func(l *Limits) *int64 { return &l.EnvPerContainer }},
		{"envTotal", func(l *Limits) *int64 { return &l.EnvTotal }},
		{"envFromPerContainer", func(l *Limits) *int64 { return &l.EnvFromPerContainer }},
		{"volumes", func(l *Limits) *int64 { return &l.Volumes }},
		{"volumeMountsPerContainer", func(l *Limits) *int64 { return &l.VolumeMountsPerContainer }},
		{"portsPerContainer", func(l *Limits) *int64 { return &l.PortsPerContainer }},
		{"argsPerContainer", func(l *Limits) *int64 { return &l.ArgsPerContainer }},
		{"argsBytesPerContainer", func(l *Limits) *int64 { return &l.ArgsBytesPerContainer }},
		{"listEntries", func(l *Limits) *int64 { return &l.ListEntries }},
		{"labels", func(l *Limits) *int64 { return &l.Labels }},
		{"annotations", func(l *Limits) *int64 { return &l.Annotations }},
		{"metadataBytes", func(l *Limits) *int64 { return &l.MetadataBytes }},
	}
}

// Ceilings are the hard limits compiled into the webhook: a policy may
// lower a limit, never raise it above its ceiling. They keep the
// webhook's memory for a request bounded whatever the policy data says
// (docs/performance.md).
func Ceilings() Limits {
	return Limits{
		ObjectBytes:              3 << 19, // etcd's default request limit: no larger object can be stored
		Containers:               32,
		EnvPerContainer:          512,
		EnvTotal:                 2048,
		EnvFromPerContainer:      32,
		Volumes:                  128,
		VolumeMountsPerContainer: 128,
		PortsPerContainer:        64,
		ArgsPerContainer:         512,
		ArgsBytesPerContainer:    256 << 10,
		ListEntries:              64,
		Labels:                   128,
		Annotations:              256,
		MetadataBytes:            256 << 10,
	}
}

// LimitName is the name in data.flowforge.config.limits of the limit that
// field points into l, for messages ("limits.envPerContainer").
func LimitName(l *Limits, field *int64) string {
	for _, f := range limitFields() {
		if f.field(l) == field {
			return f.name
		}
	}
	return "?"
}

// ParseLimits reads data.flowforge.config.limits: every key a known limit,
// every value a whole number from 1 to its ceiling. A missing section or
// key is the ceiling.
func ParseLimits(data map[string]any) (Limits, error) {
	out := Ceilings()
	raw := Lookup(data, "flowforge", "config", "limits")
	if raw == nil {
		return out, nil
	}
	m, ok := raw.(map[string]any)
	if !ok {
		return Limits{}, fmt.Errorf("data.flowforge.config.limits must be a map of limit name to number, not %T", raw)
	}
	ceilings := Ceilings()
	known := map[string]limitField{}
	for _, f := range limitFields() {
		known[f.name] = f
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var problems []string
	for _, k := range keys {
		f, ok := known[k]
		if !ok {
			problems = append(problems, fmt.Sprintf("limits.%s is not a known limit", k))
			continue
		}
		n, ok := wholeNumber(m[k])
		ceiling := *f.field(&ceilings)
		switch {
		case !ok || n < 1:
			problems = append(problems, fmt.Sprintf("limits.%s must be a whole number from 1 to %d, not %v", k, ceiling, m[k]))
		case n > ceiling:
			problems = append(problems, fmt.Sprintf("limits.%s is %d, above its hard ceiling of %d (a policy may lower a limit, not raise it)", k, n, ceiling))
		default:
			*f.field(&out) = n
		}
	}
	if len(problems) > 0 {
		return Limits{}, fmt.Errorf("policy data: %s", strings.Join(problems, "; "))
	}
	return out, nil
}

// wholeNumber reads a number of the policy data (a json.Number, a float64
// or an int, depending on the loader) as an int64.
func wholeNumber(v any) (int64, bool) {
	switch n := v.(type) {
	case json.Number:
		i, err := n.Int64()
		return i, err == nil
	case float64:
		if n != math.Trunc(n) || n > math.MaxInt64 || n < math.MinInt64 {
			return 0, false
		}
		return int64(n), true
	case int:
		return int64(n), true
	case int64:
		return n, true
	default:
		return 0, false
	}
}
