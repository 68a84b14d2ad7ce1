package templates

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/flowforge/flowforge/contract"
	"github.com/flowforge/flowforge/policies"
)

// Defaults of RendererOptions that are the renderer's own. The others
// (profiles, the default profile, the timeout bounds and the allowed
// registries) come from the policy data (see RendererOptions.Policy), so
// that a rendered Job is one the webhook admits.
const (
	DefaultMinTimeout        = time.Minute
	DefaultMaxInlineTaskSize = 32 * 1024
	DefaultMaxTaskSize       = 512 * 1024
)

// RendererOptions configure a Renderer. The zero value is usable.
type RendererOptions struct {
	// Dir holds more templates, one <name>.yaml per template, for platform
	// teams. A template there replaces the embedded one of the same name.
	Dir string
	// DefaultTemplate is used when a request names none. Default
	// DefaultTemplate ("claude-code").
	DefaultTemplate string
	// Profiles are the resource profile names a request may use. Default
	// the policy's resource profiles.
	Profiles []string
	// DefaultProfile applies when neither the request nor its template
	// names a profile. Default: the policy's resources.defaultProfile.
	DefaultProfile string
	// MinTimeout and MaxTimeout bound a request's timeout. Defaults 1m and
	// the policy's job.activeDeadlineSeconds.max.
	MinTimeout, MaxTimeout time.Duration
	// DefaultTimeout applies when neither the request nor its template
	// gives one. Default: the policy's job.activeDeadlineSeconds.default.
	DefaultTimeout time.Duration
	// MaxInlineTaskSize is the largest task, in bytes, passed in the TASK
	// environment variable; a larger one goes into a ConfigMap. Default
	// 32 KiB.
	MaxInlineTaskSize int
	// MaxTaskSize is the largest task accepted at all. Default 512 KiB.
	MaxTaskSize int
	// AllowedRegistries are the image prefixes a template may use.
	// Default: the policy's images.allowedRepositories.
	AllowedRegistries []string
	// Policy is the policy configuration whose defaults apply to every
	// option left unset: resources.profiles and resources.defaultProfile,
	// job.activeDeadlineSeconds (default and max), and
	// images.allowedRepositories. Default: the embedded policies'
	// (policies.EmbeddedConfig).
	Policy *policies.Config
}

// Renderer turns job requests into plain labelled Jobs. It is safe for
// concurrent use: it is not changed after NewRenderer.
type Renderer struct {
	templates         map[string]*Template
	defaultTemplate   string
	profiles          []string
	defaultProfile    string
	minTimeout        time.Duration
	maxTimeout        time.Duration
	defaultTimeout    time.Duration
	maxInlineTask     int
	maxTaskBytes      int
	allowedRegistries []string
}

// NewRenderer loads the embedded templates, then those in opts.Dir, and
// checks every one of them.
func NewRenderer(opts RendererOptions) (*Renderer, error) {
	r := &Renderer{
		defaultTemplate:   opts.DefaultTemplate,
		profiles:          slices.Clone(opts.Profiles),
		defaultProfile:    opts.DefaultProfile,
		minTimeout:        opts.MinTimeout,
		maxTimeout:        opts.MaxTimeout,
		defaultTimeout:    opts.DefaultTimeout,
		maxInlineTask:     opts.MaxInlineTaskSize,
		maxTaskBytes:      opts.MaxTaskSize,
		allowedRegistries: slices.Clone(opts.AllowedRegistries),
	}
	cfg := opts.Policy
	if cfg == nil {
		var err error
		if cfg, err = policies.EmbeddedConfig(); err != nil {
			return nil, fmt.Errorf("renderer: %w", err)
		}
	}
	if r.defaultTemplate == "" {
		r.defaultTemplate = DefaultTemplate
	}
	if len(r.profiles) == 0 {
		r.profiles = cfg.Resources.ProfileNames()
	}
	if r.defaultProfile == "" {
		r.defaultProfile = cfg.Resources.DefaultProfile
	}
	if r.minTimeout <= 0 {
		r.minTimeout = DefaultMinTimeout
	}
	if r.maxTimeout <= 0 && cfg.Job.ActiveDeadlineSeconds.Max != nil {
		r.maxTimeout = time.Duration(*cfg.Job.ActiveDeadlineSeconds.Max) * time.Second
	}
	if r.defaultTimeout <= 0 && cfg.Job.ActiveDeadlineSeconds.Default != nil {
		r.defaultTimeout = time.Duration(*cfg.Job.ActiveDeadlineSeconds.Default) * time.Second
	}
	if r.maxInlineTask <= 0 {
		r.maxInlineTask = DefaultMaxInlineTaskSize
	}
	if r.maxTaskBytes <= 0 {
		r.maxTaskBytes = DefaultMaxTaskSize
	}
	if len(r.allowedRegistries) == 0 {
		for _, repo := range cfg.Images.AllowedRepositories {
			r.allowedRegistries = append(r.allowedRegistries, repo.Prefix())
		}
	}
	if r.minTimeout > r.maxTimeout {
		return nil, fmt.Errorf("renderer: minimum timeout %s is above the maximum %s", r.minTimeout, r.maxTimeout)
	}
	if msg := r.checkTimeout(r.defaultTimeout); msg != "" {
		return nil, fmt.Errorf("renderer: default timeout %s", msg)
	}
	if !slices.Contains(r.profiles, r.defaultProfile) {
		return nil, fmt.Errorf("renderer: default profile %q is not one of the profiles (%s)", r.defaultProfile, strings.Join(r.profiles, ", "))
	}
	var err error
	if r.templates, err = loadTemplates(EmbeddedTemplates(), "embedded"); err != nil {
		return nil, err
	}
	if opts.Dir != "" {
		if info, err := os.Stat(opts.Dir); err != nil {
			return nil, fmt.Errorf("renderer: template directory: %w", err)
		} else if !info.IsDir() {
			return nil, fmt.Errorf("renderer: template directory %s is not a directory", opts.Dir)
		}
		extra, err := loadTemplates(os.DirFS(opts.Dir), opts.Dir)
		if err != nil {
			return nil, err
		}
		maps.Copy(r.templates, extra)
	}
	for _, name := range r.Templates() {
		if err := r.checkTemplate(r.templates[name]); err != nil {
			return nil, err
		}
	}
	if _, ok := r.templates[r.defaultTemplate]; !ok {
		return nil, fmt.Errorf("renderer: default template %q is not defined (known: %s)", r.defaultTemplate, strings.Join(r.Templates(), ", "))
	}
	return r, nil
}

// Templates returns the names of the known templates, sorted.
func (r *Renderer) Templates() []string {
	return slices.Sorted(maps.Keys(r.templates))
}

// Template returns a copy of the named template; "" names the default.
func (r *Renderer) Template(name string) (Template, error) {
	if name == "" {
		name = r.defaultTemplate
	}
	t, ok := r.templates[name]
	if !ok {
		return Template{}, fmt.Errorf("unknown template %q (known: %s)", name, strings.Join(r.Templates(), ", "))
	}
	out := *t
	out.Container.Command = slices.Clone(t.Container.Command)
	out.Container.Args = slices.Clone(t.Container.Args)
	out.Container.Env = slices.Clone(t.Container.Env)
	out.PodAnnotations = maps.Clone(t.PodAnnotations)
	return out, nil
}

// Validate checks a request and returns a *ValidationError that lists
// every problem, or nil.
func (r *Renderer) Validate(req Request) error { return r.validate(req) }

// Normalize validates a request and fills in its defaults: the template,
// then the profile and timeout from the template or the renderer. Empty
// maps become nil. Two requests that normalize to the same value render
// the same Job.
func (r *Renderer) Normalize(req Request) (Request, error) {
	if err := r.validate(req); err != nil {
		return Request{}, err
	}
	if req.Template == "" {
		req.Template = r.defaultTemplate
	}
	t := r.templates[req.Template]
	if req.Profile == "" {
		req.Profile = t.DefaultProfile
	}
	if req.Profile == "" {
		req.Profile = r.defaultProfile
	}
	if req.Timeout == 0 {
		req.Timeout = t.DefaultTimeout
	}
	if req.Timeout == 0 {
		req.Timeout = r.defaultTimeout
	}
	req.NodeSelector = cloneOrNil(req.NodeSelector)
	req.Env = cloneOrNil(req.Env)
	req.PodAnnotations = cloneOrNil(req.PodAnnotations)
	return req, nil
}

// HashRequest returns the hex SHA-256 of a normalized request's canonical
// JSON form. It is recorded in AnnotationRequestHash.
func HashRequest(req Request) string {
	canonical := struct {
		Version        int               `json:"v"`
		ID             string            `json:"id"`
		UserID         string            `json:"userID"`
		Repository     string            `json:"repository"`
		RepositoryURL  string            `json:"repositoryURL"`
		Branch         string            `json:"branch"`
		Task           string            `json:"task"`
		TimeoutSeconds int64             `json:"timeoutSeconds"`
		Profile        string            `json:"profile"`
		Template       string            `json:"template"`
		NodeSelector   map[string]string `json:"nodeSelector"`
		Env            map[string]string `json:"env"`
		PodAnnotations map[string]string `json:"podAnnotations"`
	}{1, req.ID, req.UserID, req.Repository, req.RepositoryURL, req.Branch, req.Task,
		int64(req.Timeout / time.Second), req.Profile, req.Template,
		cloneOrNil(req.NodeSelector), cloneOrNil(req.Env), cloneOrNil(req.PodAnnotations)}
	// Marshalling strings and string maps cannot fail; map keys are sorted.
	data, _ := json.Marshal(canonical)
	sum := sha256.Sum256(data)
	return hex.EncodeToString(sum[:])
}

// Rendered is what a request turns into.
type Rendered struct {
	// Request is the normalized request.
	Request Request
	// Hash is HashRequest(Request).
	Hash string
	// Job is the plain labelled Job, without a namespace. The webhook
	// hardens it on admission.
	Job *batchv1.Job
	// TaskConfigMap holds a task too large for an environment variable;
	// nil otherwise. Create it with the Job, and make the Job its owner.
	TaskConfigMap *corev1.ConfigMap
}

// Render validates and normalizes a request and renders its Job, and the
// task ConfigMap when the task is larger than the inline limit.
func (r *Renderer) Render(req Request) (*Rendered, error) {
	req, err := r.Normalize(req)
	if err != nil {
		return nil, err
	}
	t := r.templates[req.Template]
	hash := HashRequest(req)
	name := contract.JobName(req.ID)

	env := []corev1.EnvVar{
		{Name: contract.EnvJobID, Value: req.ID},
		{Name: contract.EnvRepositoryURL, Value: literal(req.RepositoryURL)},
		{Name: contract.EnvBranch, Value: literal(req.Branch)},
	}
	var cm *corev1.ConfigMap
	var volumes []corev1.Volume
	var mounts []corev1.VolumeMount
	if len(req.Task) <= r.maxInlineTask {
		env = append(env, corev1.EnvVar{Name: contract.EnvTask, Value: literal(req.Task)})
	} else {
		cm = &corev1.ConfigMap{
			TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "ConfigMap"},
			ObjectMeta: metav1.ObjectMeta{
				Name:        contract.TaskConfigMapName(req.ID),
				Labels:      labels(req),
				Annotations: map[string]string{contract.AnnotationRequestHash: hash},
			},
			Immutable: ptr.To(true),
			Data:      map[string]string{contract.TaskConfigMapKey: req.Task},
		}
		env = append(env, corev1.EnvVar{Name: contract.EnvTaskFile, Value: contract.TaskFilePath})
		volumes = append(volumes, corev1.Volume{
			Name: contract.TaskVolumeName,
			VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{
				LocalObjectReference: corev1.LocalObjectReference{Name: cm.Name},
				DefaultMode:          ptr.To[int32](0o444),
			}},
		})
		mounts = append(mounts, corev1.VolumeMount{Name: contract.TaskVolumeName, MountPath: contract.TaskMountPath, ReadOnly: true})
	}
	env = append(env,
		secretEnv(contract.EnvAPIKey, contract.APIKeySecret, contract.APIKeySecretKey),
		secretEnv(contract.EnvGitCredentials, contract.GitCredentialsSecretName(req.ID), contract.GitCredentialsSecretKey),
	)
	// The template's env, with the request's values for the names it
	// shares, then the request's other names, sorted.
	for _, e := range t.Container.Env {
		value := e.Value
		if v, ok := req.Env[e.Name]; ok {
			value = v
		}
		env = append(env, corev1.EnvVar{Name: e.Name, Value: literal(value)})
	}
	for _, k := range sortedKeys(req.Env) {
		if !slices.ContainsFunc(t.Container.Env, func(e EnvVar) bool { return e.Name == k }) {
			env = append(env, corev1.EnvVar{Name: k, Value: literal(req.Env[k])})
		}
	}

	podAnnotations := maps.Clone(t.PodAnnotations)
	if len(req.PodAnnotations) > 0 {
		if podAnnotations == nil {
			podAnnotations = map[string]string{}
		}
		maps.Copy(podAnnotations, req.PodAnnotations)
	}
	job := &batchv1.Job{
		TypeMeta: metav1.TypeMeta{APIVersion: "batch/v1", Kind: "Job"},
		ObjectMeta: metav1.ObjectMeta{
			Name:   name,
			Labels: labels(req),
			Annotations: map[string]string{
				contract.AnnotationRepository:  req.Repository,
				contract.AnnotationBranch:      req.Branch,
				contract.AnnotationProfile:     req.Profile,
				contract.AnnotationTimeout:     strconv.FormatInt(int64(req.Timeout/time.Second), 10),
				contract.AnnotationTemplate:    req.Template,
				contract.AnnotationRequestHash: hash,
			},
		},
		Spec: batchv1.JobSpec{
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels(req), Annotations: podAnnotations},
				Spec: corev1.PodSpec{
					RestartPolicy: corev1.RestartPolicyNever,
					NodeSelector:  cloneOrNil(req.NodeSelector),
					Containers: []corev1.Container{{
						Name:         t.Container.Name,
						Image:        t.Container.Image,
						Command:      slices.Clone(t.Container.Command),
						Args:         slices.Clone(t.Container.Args),
						WorkingDir:   t.Container.WorkingDir,
						Env:          env,
						VolumeMounts: mounts,
					}},
					Volumes: volumes,
				},
			},
		},
	}
	return &Rendered{Request: req, Hash: hash, Job: job, TaskConfigMap: cm}, nil
}

func labels(req Request) map[string]string {
	return map[string]string{
		contract.LabelApp:       contract.AppName,
		contract.LabelComponent: contract.ComponentWorker,
		contract.LabelJobID:     req.ID,
		contract.LabelUserID:    req.UserID,
	}
}

func secretEnv(name, secret, key string) corev1.EnvVar {
	return corev1.EnvVar{Name: name, ValueFrom: &corev1.EnvVarSource{SecretKeyRef: &corev1.SecretKeySelector{
		LocalObjectReference: corev1.LocalObjectReference{Name: secret},
		Key:                  key,
	}}}
}

// literal escapes a value for an environment variable: the kubelet expands
// $(NAME) references in env values and turns "$$" into "$", so every "$"
// is doubled and the worker sees exactly the text of the request.
func literal(s string) string { return strings.ReplaceAll(s, "$", "$$") }

func cloneOrNil(m map[string]string) map[string]string {
	if len(m) == 0 {
		return nil
	}
	return maps.Clone(m)
}
