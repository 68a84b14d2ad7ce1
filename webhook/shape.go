package webhook

import (
	"encoding/json"
	"errors"
	"fmt"

	"github.com/flowforge/flowforge/policies"
)

// size is a JSON value of which only the size is kept: decoding one
// allocates nothing (encoding/json hands UnmarshalJSON a slice of its
// input).
type size int64

func (s *size) UnmarshalJSON(b []byte) error {
	*s = size(len(b))
	return nil
}

// count is a JSON object of which only the number of keys and their size
// (keys and values) are kept, without allocating per key.
type count struct {
	n     int64
	bytes int64
}

func (c *count) UnmarshalJSON(b []byte) error {
	*c = count{}
	n, err := countObjectKeys(b)
	if err != nil {
		return err
	}
	c.n, c.bytes = n, int64(len(b))
	return nil
}

// shapeMeta is the part of an object's metadata that the limits bound.
type shapeMeta struct {
	Labels      count `json:"labels"`
	Annotations count `json:"annotations"`
}

type shapeContainer struct {
	Env           []size `json:"env"`
	EnvFrom       []size `json:"envFrom"`
	VolumeMounts  []size `json:"volumeMounts"`
	VolumeDevices []size `json:"volumeDevices"`
	Ports         []size `json:"ports"`
	Command       []size `json:"command"`
	Args          []size `json:"args"`
}

type shapePodSpec struct {
	Containers                []shapeContainer `json:"containers"`
	InitContainers            []shapeContainer `json:"initContainers"`
	EphemeralContainers       []shapeContainer `json:"ephemeralContainers"`
	Volumes                   []size           `json:"volumes"`
	Tolerations               []size           `json:"tolerations"`
	HostAliases               []size           `json:"hostAliases"`
	ImagePullSecrets          []size           `json:"imagePullSecrets"`
	TopologySpreadConstraints []size           `json:"topologySpreadConstraints"`
	ReadinessGates            []size           `json:"readinessGates"`
	SchedulingGates           []size           `json:"schedulingGates"`
	ResourceClaims            []size           `json:"resourceClaims"`
}

type shapeTemplate struct {
	Metadata shapeMeta    `json:"metadata"`
	Spec     shapePodSpec `json:"spec"`
}

// shapeObject covers every kind the webhooks receive: a Pod (spec is a pod
// spec), a Job (spec.template), a CronJob (spec.jobTemplate), a Namespace
// (metadata only) and the options of pods/exec (command).
type shapeObject struct {
	present  bool
	bytes    int64
	err      error     // why the object is malformed
	Metadata shapeMeta `json:"metadata"`
	Spec     struct {
		shapePodSpec
		Template    *shapeTemplate `json:"template"`
		JobTemplate *struct {
			Metadata shapeMeta `json:"metadata"`
			Spec     struct {
				Template *shapeTemplate `json:"template"`
			} `json:"spec"`
		} `json:"jobTemplate"`
	} `json:"spec"`
	Command []size `json:"command"`
}

// UnmarshalJSON records the object's size, then decodes its shape. It
// never fails, so that the review around it decodes: a malformed object
// is kept in err.
func (o *shapeObject) UnmarshalJSON(b []byte) error {
	type plain shapeObject
	var p plain
	if string(b) == "null" {
		*o = shapeObject{}
		return nil
	}
	err := jsonUnmarshal(b, &p)
	*o = shapeObject(p)
	o.present, o.bytes, o.err = true, int64(len(b)), err
	return nil
}

// LimitError is an object over one of the policy's limits.
type LimitError struct {
	// Field is the path of what is over the limit, Limit the limit's name
	// in data.flowforge.config.limits.
	Field string
	Limit string
	Value int64
	Max   int64
	// Unit is "entries" or "bytes".
	Unit string
}

func (e *LimitError) Error() string {
	return fmt.Sprintf("%s has %d %s, over the limit of %d (limits.%s in FlowForge's policy data): no real Job or Pod needs this many, so it is refused before any policy evaluation", e.Field, e.Value, e.Unit, e.Max, e.Limit)
}

// shapeChecker walks a decoded shape against the limits.
type shapeChecker struct {
	limits policies.Limits
	err    *LimitError
}

func (c *shapeChecker) over(field string, value int64, limit *int64, unit string) bool {
	if c.err != nil {
		return true
	}
	if value > *limit {
		c.err = &LimitError{Field: field, Limit: policies.LimitName(&c.limits, limit), Value: value, Max: *limit, Unit: unit}
		return true
	}
	return false
}

func (c *shapeChecker) object(prefix string, o *shapeObject) {
	if !o.present {
		return
	}
	l := &c.limits
	c.over(prefix, o.bytes, &l.ObjectBytes, "bytes")
	c.meta(prefix+".metadata", &o.Metadata)
	c.podSpec(prefix+".spec", &o.Spec.shapePodSpec)
	if t := o.Spec.Template; t != nil {
		c.template(prefix+".spec.template", t)
	}
	if jt := o.Spec.JobTemplate; jt != nil {
		c.meta(prefix+".spec.jobTemplate.metadata", &jt.Metadata)
		if t := jt.Spec.Template; t != nil {
			c.template(prefix+".spec.jobTemplate.spec.template", t)
		}
	}
	c.args(prefix+".command", o.Command, nil)
}

func (c *shapeChecker) template(prefix string, t *shapeTemplate) {
	c.meta(prefix+".metadata", &t.Metadata)
	c.podSpec(prefix+".spec", &t.Spec)
}

func (c *shapeChecker) meta(prefix string, m *shapeMeta) {
	l := &c.limits
	c.over(prefix+".labels", m.Labels.n, &l.Labels, "entries")
	c.over(prefix+".annotations", m.Annotations.n, &l.Annotations, "entries")
	c.over(prefix+".labels and annotations", m.Labels.bytes+m.Annotations.bytes, &l.MetadataBytes, "bytes")
}

func (c *shapeChecker) podSpec(prefix string, s *shapePodSpec) {
	l := &c.limits
	c.over(prefix+".containers, initContainers and ephemeralContainers", int64(len(s.Containers)+len(s.InitContainers)+len(s.EphemeralContainers)), &l.Containers, "entries")
	c.over(prefix+".volumes", int64(len(s.Volumes)), &l.Volumes, "entries")
	for _, list := range []struct {
		name string
		n    int
	}{
		{"tolerations", len(s.Tolerations)}, {"hostAliases", len(s.HostAliases)}, {"imagePullSecrets", len(s.ImagePullSecrets)},
		{"topologySpreadConstraints", len(s.TopologySpreadConstraints)}, {"readinessGates", len(s.ReadinessGates)},
		{"schedulingGates", len(s.SchedulingGates)}, {"resourceClaims", len(s.ResourceClaims)},
	} {
		c.over(prefix+"."+list.name, int64(list.n), &l.ListEntries, "entries")
	}
	var env int64
	for _, group := range []struct {
		name string
		list []shapeContainer
	}{{"containers", s.Containers}, {"initContainers", s.InitContainers}, {"ephemeralContainers", s.EphemeralContainers}} {
		for i := range group.list {
			ct := &group.list[i]
			at := fmt.Sprintf("%s.%s[%d]", prefix, group.name, i)
			if c.err != nil {
				return
			}
			env += int64(len(ct.Env))
			c.over(at+".env", int64(len(ct.Env)), &l.EnvPerContainer, "entries")
			c.over(at+".envFrom", int64(len(ct.EnvFrom)), &l.EnvFromPerContainer, "entries")
			c.over(at+".volumeMounts and volumeDevices", int64(len(ct.VolumeMounts)+len(ct.VolumeDevices)), &l.VolumeMountsPerContainer, "entries")
			c.over(at+".ports", int64(len(ct.Ports)), &l.PortsPerContainer, "entries")
			c.args(at+".command and args", ct.Command, ct.Args)
		}
	}
	c.over(prefix+" env of all containers", env, &l.EnvTotal, "entries")
}

func (c *shapeChecker) args(field string, command, args []size) {
	l := &c.limits
	c.over(field, int64(len(command)+len(args)), &l.ArgsPerContainer, "entries")
	var n int64
	for _, s := range command {
		n += int64(s)
	}
	for _, s := range args {
		n += int64(s)
	}
	c.over(field, n, &l.ArgsBytesPerContainer, "bytes")
}

// CheckShape checks raw, the JSON of an object a webhook receives (a Job,
// Pod, CronJob, Namespace or pods/exec options), against limits. It
// returns a *LimitError naming the field and the limit when the object is
// over one, or an error when raw is not a JSON object. It allocates in
// proportion to the number of containers, not to the object's size.
func CheckShape(raw []byte, limits policies.Limits) error {
	var o shapeObject
	if err := json.Unmarshal(raw, &o); err != nil {
		return err
	}
	if o.err != nil {
		return o.err
	}
	return checkShape("object", &o, limits)
}

func checkShape(prefix string, o *shapeObject, limits policies.Limits) error {
	c := &shapeChecker{limits: limits}
	c.object(prefix, o)
	if c.err != nil {
		return c.err
	}
	return nil
}

func jsonUnmarshal(b []byte, into any) error { return json.Unmarshal(b, into) }

// countObjectKeys counts the keys of b, a valid JSON object (or null),
// without allocating: each key is followed by one colon at depth 1
// outside strings.
func countObjectKeys(b []byte) (int64, error) {
	i := 0
	for i < len(b) && isSpace(b[i]) {
		i++
	}
	if i < len(b) && b[i] == 'n' {
		return 0, nil
	}
	if i >= len(b) || b[i] != '{' {
		return 0, errors.New("expected a JSON object")
	}
	var n int64
	depth, inString, escaped := 0, false, false
	for ; i < len(b); i++ {
		ch := b[i]
		switch {
		case inString:
			switch {
			case escaped:
				escaped = false
			case ch == '\\':
				escaped = true
			case ch == '"':
				inString = false
			}
		case ch == '"':
			inString = true
		case ch == '{' || ch == '[':
			depth++
		case ch == '}' || ch == ']':
			depth--
		case ch == ':' && depth == 1:
			n++
		}
	}
	return n, nil
}

func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }
