package policies

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"slices"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
	"k8s.io/apimachinery/pkg/util/validation"
)

// Config is the typed view of data.flowforge.config (policies/data.yaml):
// the knobs that Go code reads as well as the Rego. It is the one source of
// truth for them: the webhook's selector, the controller's cache selector
// and export settings, and the renderer's defaults all come from here.
//
// Only the fields Go reads are typed; the rest of the document is the
// policy's alone and reaches the Rego untouched. A policy whose Config does
// not decode or Validate is refused at load, like one whose tests fail.
type Config struct {
	Release               string         `json:"release"`
	Selector              Selector       `json:"selector"`
	ManagedNamespaceLabel Selector       `json:"managedNamespaceLabel"`
	NamespaceGuard        NamespaceGuard `json:"namespaceGuard"`
	RequiredLabels        []string       `json:"requiredLabels"`
	PropagatedLabels      []string       `json:"propagatedLabels"`
	Annotations           Annotations    `json:"annotations"`
	RuntimeClass          struct {
		Default string `json:"default"`
	} `json:"runtimeClass"`
	PriorityClassName string          `json:"priorityClassName"`
	Images            ImagesConfig    `json:"images"`
	Resources         ResourcesConfig `json:"resources"`
	Job               JobConfig       `json:"job"`
	Export            ExportConfig    `json:"export"`
}

// Selector is a label key and value. For selector, the label
// (app=flowforge) that makes a Job FlowForge's; for managedNamespaceLabel,
// the namespace label that makes a namespace managed (then the key is in
// Key).
type Selector struct {
	Label string `json:"label,omitempty"`
	Key   string `json:"key,omitempty"`
	Value string `json:"value"`
}

// NamespaceGuard names who may change the namespace labels FlowForge reads.
type NamespaceGuard struct {
	Users    []string `json:"users"`
	Groups   []string `json:"groups"`
	Prefixes []string `json:"prefixes"`
}

// Annotations are the annotation keys of the Job contract that the policy
// reads or writes.
type Annotations struct {
	Profile                 string `json:"profile"`
	Timeout                 string `json:"timeout"`
	PolicyRevision          string `json:"policyRevision"`
	Repository              string `json:"repository"`
	TTLSecondsAfterFinished string `json:"ttlSecondsAfterFinished"`
}

// ImagesConfig is where images may come from.
type ImagesConfig struct {
	AllowedRepositories []Repository `json:"allowedRepositories"`
	ForbiddenTags       []string     `json:"forbiddenTags"`
	Pinning             string       `json:"pinning"`
}

// Repository is a registry host and a repository path below it ("" admits
// the whole registry).
type Repository struct {
	Registry string `json:"registry"`
	Path     string `json:"path"`
}

// Prefix is the image reference prefix the repository admits, as the
// renderer checks templates: "ghcr.io/flowforge/".
func (r Repository) Prefix() string {
	if r.Path == "" {
		return r.Registry + "/"
	}
	return r.Registry + "/" + strings.Trim(r.Path, "/") + "/"
}

// ResourcesConfig holds the resource profiles. Only their names and the
// default are typed; their quantities are the policy's.
type ResourcesConfig struct {
	DefaultProfile string                     `json:"defaultProfile"`
	Profiles       map[string]json.RawMessage `json:"profiles"`
}

// ProfileNames returns the profile names, sorted.
func (r ResourcesConfig) ProfileNames() []string {
	names := make([]string, 0, len(r.Profiles))
	for n := range r.Profiles {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}

// Bound is a default and a maximum, in seconds or a count.
type Bound struct {
	Default *int64 `json:"default,omitempty"`
	Max     *int64 `json:"max,omitempty"`
}

// JobConfig holds the Job settings Go reads.
type JobConfig struct {
	ActiveDeadlineSeconds   Bound `json:"activeDeadlineSeconds"`
	TTLSecondsAfterFinished Bound `json:"ttlSecondsAfterFinished"`
}

// ExportConfig is the controller's export: finalizers and the pending
// timeout.
type ExportConfig struct {
	Enabled               bool    `json:"enabled"`
	JobFinalizer          string  `json:"jobFinalizer"`
	PodFinalizer          string  `json:"podFinalizer"`
	PendingTimeoutSeconds float64 `json:"pendingTimeoutSeconds"`
	// ExportedLabel marks a Job, and its pods, exported with every pod
	// ended; the controller's cache leaves such objects out
	// (validate/exported lets only the controller set it). Empty: the
	// controller labels nothing and caches every Job to its deletion.
	ExportedLabel string `json:"exportedLabel"`
}

// PendingTimeout is how long a Job's pods may stay Pending (0: no limit).
func (e ExportConfig) PendingTimeout() time.Duration {
	return time.Duration(e.PendingTimeoutSeconds * float64(time.Second))
}

// Validate checks what Go relies on: every error names its field.
func (c *Config) Validate() error {
	var errs []error
	label := func(field, v string) {
		if v == "" {
			errs = append(errs, fmt.Errorf("%s: required", field))
			return
		}
		for _, msg := range validation.IsQualifiedName(v) {
			errs = append(errs, fmt.Errorf("%s: %q: %s", field, v, msg))
		}
	}
	value := func(field, v string) {
		for _, msg := range validation.IsValidLabelValue(v) {
			errs = append(errs, fmt.Errorf("%s: %q: %s", field, v, msg))
		}
	}
	label("selector.label", c.Selector.Label)
	if c.Selector.Value == "" {
		errs = append(errs, errors.New("selector.value: required"))
	}
	value("selector.value", c.Selector.Value)
	label("managedNamespaceLabel.key", c.ManagedNamespaceLabel.Key)
	value("managedNamespaceLabel.value", c.ManagedNamespaceLabel.Value)
	for i, l := range c.RequiredLabels {
		label(fmt.Sprintf("requiredLabels[%d]", i), l)
	}
	for i, l := range c.PropagatedLabels {
		label(fmt.Sprintf("propagatedLabels[%d]", i), l)
	}
	if !slices.Contains(c.PropagatedLabels, c.Selector.Label) {
		errs = append(errs, fmt.Errorf("propagatedLabels: must contain the selector label %q, or pods escape the selector", c.Selector.Label))
	}
	for field, v := range map[string]string{
		"annotations.profile": c.Annotations.Profile, "annotations.timeout": c.Annotations.Timeout,
		"annotations.policyRevision": c.Annotations.PolicyRevision, "annotations.repository": c.Annotations.Repository,
		"annotations.ttlSecondsAfterFinished": c.Annotations.TTLSecondsAfterFinished,
	} {
		label(field, v)
	}
	if len(c.Images.AllowedRepositories) == 0 {
		errs = append(errs, errors.New("images.allowedRepositories: at least one repository"))
	}
	for i, r := range c.Images.AllowedRepositories {
		if r.Registry == "" || strings.ContainsAny(r.Registry, "/ ") {
			errs = append(errs, fmt.Errorf("images.allowedRepositories[%d].registry: %q is not a registry host", i, r.Registry))
		}
	}
	if c.Images.Pinning != "tag" && c.Images.Pinning != "digest" {
		errs = append(errs, fmt.Errorf("images.pinning: %q is neither \"tag\" nor \"digest\"", c.Images.Pinning))
	}
	if len(c.Resources.Profiles) == 0 {
		errs = append(errs, errors.New("resources.profiles: at least one profile"))
	} else if _, ok := c.Resources.Profiles[c.Resources.DefaultProfile]; !ok {
		errs = append(errs, fmt.Errorf("resources.defaultProfile: %q is not one of the profiles %v", c.Resources.DefaultProfile, c.Resources.ProfileNames()))
	}
	for field, b := range map[string]Bound{"job.activeDeadlineSeconds": c.Job.ActiveDeadlineSeconds, "job.ttlSecondsAfterFinished": c.Job.TTLSecondsAfterFinished} {
		switch {
		case b.Default == nil || b.Max == nil:
			errs = append(errs, fmt.Errorf("%s: default and max are required", field))
		case *b.Default < 0 || *b.Default > *b.Max:
			errs = append(errs, fmt.Errorf("%s: default %d is not within [0, max %d]", field, *b.Default, *b.Max))
		}
	}
	if c.Export.Enabled {
		label("export.jobFinalizer", c.Export.JobFinalizer)
		label("export.podFinalizer", c.Export.PodFinalizer)
		if c.Export.ExportedLabel != "" {
			label("export.exportedLabel", c.Export.ExportedLabel)
		}
	}
	if c.Export.PendingTimeoutSeconds < 0 {
		errs = append(errs, fmt.Errorf("export.pendingTimeoutSeconds: %v is negative", c.Export.PendingTimeoutSeconds))
	}
	slices.SortFunc(errs, func(a, b error) int { return strings.Compare(a.Error(), b.Error()) })
	return errors.Join(errs...)
}

// ParseConfig decodes and validates data.flowforge.config from merged
// policy data.
func ParseConfig(data map[string]any) (*Config, error) {
	raw := Lookup(data, "flowforge", "config")
	if raw == nil {
		return nil, errors.New("policy data: flowforge.config is missing")
	}
	b, err := json.Marshal(raw)
	if err != nil {
		return nil, fmt.Errorf("policy data: flowforge.config: %w", err)
	}
	var c Config
	if err := json.Unmarshal(b, &c); err != nil {
		return nil, fmt.Errorf("policy data: flowforge.config: %w", err)
	}
	if err := c.Validate(); err != nil {
		return nil, fmt.Errorf("policy data: flowforge.config: %w", err)
	}
	return &c, nil
}

// ConfigFrom reads and validates the Config of a policy directory (its
// data.yaml) without compiling the Rego: for programs that need the
// settings but never evaluate the policy, such as the renderer.
func ConfigFrom(fsys fs.FS) (*Config, error) {
	b, err := fs.ReadFile(fsys, "data.yaml")
	if err != nil {
		return nil, fmt.Errorf("policy data: %w", err)
	}
	var data map[string]any
	if err := yaml.Unmarshal(b, &data); err != nil {
		return nil, fmt.Errorf("policy data: data.yaml: %w", err)
	}
	return ParseConfig(data)
}

// EmbeddedConfig is the Config of the policies compiled into the binary.
// The embedded data is checked by the tests, so an error here is a build
// defect.
func EmbeddedConfig() (*Config, error) { return ConfigFrom(Embedded()) }
