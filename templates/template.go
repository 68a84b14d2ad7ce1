package templates

import (
	"bytes"
	"embed"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path"
	"slices"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/flowforge/flowforge/contract"
)

// DefaultTemplate is the template used when a request names none.
const DefaultTemplate = "claude-code"

// DefaultContainerName is the worker container's name when a template
// gives none.
const DefaultContainerName = "worker"

//go:embed workers/*.yaml
var embeddedWorkers embed.FS

// EmbeddedTemplates returns the templates built into the binary, one
// <name>.yaml file per template at the root of the returned file system.
func EmbeddedTemplates() fs.FS {
	sub, err := fs.Sub(embeddedWorkers, "workers")
	if err != nil { // fs.Sub fails only on an invalid path, and this one is constant.
		return embeddedWorkers
	}
	return sub
}

// Template describes a kind of worker: the container that runs the agent
// and the defaults of a request. See the package documentation for the
// YAML schema.
type Template struct {
	// Name selects the template; it equals the file name without .yaml.
	Name string `yaml:"name"`
	// Description is shown to people choosing a template.
	Description string `yaml:"description,omitempty"`
	// Container is the worker container.
	Container Container `yaml:"container"`
	// DefaultProfile is the resource profile of a request that names none.
	DefaultProfile string `yaml:"defaultProfile,omitempty"`
	// DefaultTimeout is the timeout of a request that gives none.
	DefaultTimeout time.Duration `yaml:"defaultTimeout,omitempty"`
	// PodAnnotations are added to the pod template.
	PodAnnotations map[string]string `yaml:"podAnnotations,omitempty"`
}

// Container is the worker container of a template. Command and Args are
// exec form: no shell runs them, and nothing from a request is put in them.
type Container struct {
	Name       string   `yaml:"name,omitempty"`
	Image      string   `yaml:"image"`
	Command    []string `yaml:"command"`
	Args       []string `yaml:"args,omitempty"`
	WorkingDir string   `yaml:"workingDir,omitempty"`
	Env        []EnvVar `yaml:"env,omitempty"`
}

// EnvVar is a literal environment variable of a template.
type EnvVar struct {
	Name  string `yaml:"name"`
	Value string `yaml:"value"`
}

// ParseTemplate reads one template from YAML. Unknown fields are an error.
// The result is checked against a renderer's settings when it is loaded.
func ParseTemplate(data []byte) (*Template, error) {
	var t Template
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&t); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, errors.New("the document is empty")
		}
		return nil, err
	}
	if t.Container.Name == "" {
		t.Container.Name = DefaultContainerName
	}
	return &t, nil
}

// loadTemplates reads every *.yaml file at the root of fsys.
func loadTemplates(fsys fs.FS, source string) (map[string]*Template, error) {
	files, err := fs.Glob(fsys, "*.yaml")
	if err != nil {
		return nil, fmt.Errorf("list templates in %s: %w", source, err)
	}
	out := map[string]*Template{}
	for _, file := range files {
		data, err := fs.ReadFile(fsys, file)
		if err != nil {
			return nil, fmt.Errorf("read template %s/%s: %w", source, file, err)
		}
		t, err := ParseTemplate(data)
		if err != nil {
			return nil, fmt.Errorf("template %s/%s: %w", source, file, err)
		}
		if want := strings.TrimSuffix(path.Base(file), ".yaml"); t.Name != want {
			return nil, fmt.Errorf("template %s/%s: name %q must equal the file name %q", source, file, t.Name, want)
		}
		out[t.Name] = t
	}
	return out, nil
}

// isShell reports whether a program would run a "-c" argument as a script.
func isShell(program string) bool {
	switch path.Base(program) {
	case "sh", "bash", "dash", "ash", "ksh", "zsh", "busybox":
		return true
	}
	return false
}

// check validates a template against the renderer's settings.
func (r *Renderer) checkTemplate(t *Template) error {
	var errs []string
	add := func(format string, args ...any) { errs = append(errs, fmt.Sprintf(format, args...)) }
	if msgs := validation.IsDNS1123Label(t.Name); len(msgs) > 0 {
		add("name %q: %s", t.Name, strings.Join(msgs, "; "))
	}
	c := t.Container
	if msgs := validation.IsDNS1123Label(c.Name); len(msgs) > 0 {
		add("container.name %q: %s", c.Name, strings.Join(msgs, "; "))
	}
	if msg := r.checkImage(c.Image); msg != "" {
		add("container.image: %s", msg)
	}
	if len(c.Command) == 0 || c.Command[0] == "" {
		add("container.command is required (exec form, for example [/usr/local/bin/flowforge-worker])")
	}
	argv := append(slices.Clone(c.Command), c.Args...)
	if len(argv) > 0 && isShell(argv[0]) {
		for _, a := range argv[1:] {
			if len(a) > 1 && a[0] == '-' && a[1] != '-' && strings.Contains(a, "c") {
				add("container.command runs %s with %s: use exec form, no shell script", path.Base(argv[0]), a)
				break
			}
		}
	}
	for _, a := range argv {
		for _, name := range []string{contract.EnvTask, contract.EnvAPIKey, contract.EnvGitCredentials} {
			if strings.Contains(a, "$("+name+")") {
				add("container command/args must not reference $(%s): it would end up on the command line", name)
			}
		}
	}
	seen := map[string]bool{}
	for i, e := range c.Env {
		switch {
		case len(validation.IsCIdentifier(e.Name)) > 0:
			add("container.env[%d]: name %q must be a C identifier", i, e.Name)
		case contract.IsReservedEnv(e.Name):
			add("container.env[%d]: %s is set by FlowForge", i, e.Name)
		case seen[e.Name]:
			add("container.env[%d]: %s is set twice", i, e.Name)
		}
		seen[e.Name] = true
	}
	if t.DefaultProfile != "" && !slices.Contains(r.profiles, t.DefaultProfile) {
		add("defaultProfile %q is not a known profile (%s)", t.DefaultProfile, strings.Join(r.profiles, ", "))
	}
	if t.DefaultTimeout != 0 {
		if msg := r.checkTimeout(t.DefaultTimeout); msg != "" {
			add("defaultTimeout: %s", msg)
		}
	}
	var annErrs errorList
	checkAnnotations(&annErrs, "podAnnotations", t.PodAnnotations)
	for _, fe := range annErrs {
		add("%s", fe.Error())
	}
	if len(errs) > 0 {
		return fmt.Errorf("template %q: %s", t.Name, strings.Join(errs, "; "))
	}
	return nil
}

// checkImage requires an image from an allowed registry, pinned by a tag
// other than "latest" or by a digest, as the validating policy does.
func (r *Renderer) checkImage(image string) string {
	if image == "" {
		return "is required"
	}
	if strings.ContainsAny(image, " \t\n") {
		return fmt.Sprintf("%q must not contain spaces", image)
	}
	allowed := false
	for _, prefix := range r.allowedRegistries {
		if strings.HasPrefix(image, prefix) {
			allowed = true
		}
	}
	if !allowed {
		return fmt.Sprintf("%q is not from an allowed registry (%s)", image, strings.Join(r.allowedRegistries, ", "))
	}
	name, digest, hasDigest := strings.Cut(image, "@")
	if hasDigest {
		if !strings.HasPrefix(digest, "sha256:") || len(digest) != len("sha256:")+64 {
			return fmt.Sprintf("%q has a malformed digest", image)
		}
		return ""
	}
	last := name[strings.LastIndex(name, "/")+1:]
	_, tag, hasTag := strings.Cut(last, ":")
	switch {
	case !hasTag || tag == "":
		return fmt.Sprintf("%q is not pinned: give a tag or a digest", image)
	case tag == "latest":
		return fmt.Sprintf("%q is not pinned: \"latest\" moves", image)
	}
	return ""
}
