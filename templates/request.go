package templates

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/url"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"gopkg.in/yaml.v3"
	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/flowforge/flowforge/contract"
)

// Request is one job request: an agent working on one task in one
// repository and branch. It can be read from YAML or JSON with ParseRequest;
// Timeout is then written as a Go duration ("30m", "1h30m").
type Request struct {
	// ID identifies the job; the Job is named claude-job-<ID>.
	ID string `json:"id" yaml:"id"`
	// UserID is the user the job runs for (label user-id).
	UserID string `json:"userID" yaml:"userID"`
	// Repository is a human name of the repository ("acme/widgets").
	Repository string `json:"repository" yaml:"repository"`
	// RepositoryURL is the https:// or ssh git URL the worker clones.
	RepositoryURL string `json:"repositoryURL" yaml:"repositoryURL"`
	// Branch is the git branch the agent works on.
	Branch string `json:"branch" yaml:"branch"`
	// Task is the instruction for the agent. It reaches the worker as data
	// (an environment variable or a file), never through a shell.
	Task string `json:"task" yaml:"task"`
	// Timeout bounds the run; zero means the template's default.
	Timeout time.Duration `json:"timeout,omitempty" yaml:"timeout,omitempty"`
	// Profile is the resource profile; empty means the template's default.
	Profile string `json:"profile,omitempty" yaml:"profile,omitempty"`
	// NodeSelector is merged into the pod's node selector.
	NodeSelector map[string]string `json:"nodeSelector,omitempty" yaml:"nodeSelector,omitempty"`
	// Env is extra environment for the worker; it may override a
	// template's env but not the reserved names (see ReservedEnv).
	Env map[string]string `json:"env,omitempty" yaml:"env,omitempty"`
	// Template names the worker template; empty means the default.
	Template string `json:"template,omitempty" yaml:"template,omitempty"`
	// PodAnnotations are added to the pod template (for example the local
	// cluster's simulation annotations). Keys under flowforge.io/ are
	// reserved.
	PodAnnotations map[string]string `json:"podAnnotations,omitempty" yaml:"podAnnotations,omitempty"`
}

// ParseRequest reads a Request from YAML or JSON (JSON is YAML). Unknown
// fields are an error, so that a typo does not go unnoticed.
func ParseRequest(data []byte) (Request, error) {
	var req Request
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&req); err != nil {
		if errors.Is(err, io.EOF) {
			return Request{}, errors.New("parse job request: the document is empty")
		}
		return Request{}, fmt.Errorf("parse job request: %w", err)
	}
	return req, nil
}

// MarshalJSON writes Timeout as a Go duration ("30m0s"), as ParseRequest
// and UnmarshalJSON read it.
func (r Request) MarshalJSON() ([]byte, error) {
	type plain Request
	out := struct {
		plain
		Timeout string `json:"timeout,omitempty"`
	}{plain: plain(r)}
	if r.Timeout != 0 {
		out.Timeout = r.Timeout.String()
	}
	return json.Marshal(out)
}

// UnmarshalJSON reads Timeout as a Go duration ("30m").
func (r *Request) UnmarshalJSON(data []byte) error {
	type plain Request
	in := struct {
		*plain
		Timeout string `json:"timeout,omitempty"`
	}{plain: (*plain)(r)}
	if err := json.Unmarshal(data, &in); err != nil {
		return err
	}
	r.Timeout = 0
	if in.Timeout != "" {
		d, err := time.ParseDuration(in.Timeout)
		if err != nil {
			return fmt.Errorf("timeout: %w", err)
		}
		r.Timeout = d
	}
	return nil
}

// ErrInvalidRequest is wrapped by every *ValidationError.
var ErrInvalidRequest = errors.New("invalid job request")

// FieldError is one problem with one field of a request. Field uses the
// request's YAML names ("repositoryURL", "env[FOO]", "nodeSelector[zone]").
// Messages never repeat the task, env values or the repository URL, which
// may be large or secret.
type FieldError struct {
	Field   string
	Message string
}

func (e FieldError) Error() string { return e.Field + ": " + e.Message }

// ValidationError lists every problem found in a request.
type ValidationError struct {
	Errors []FieldError
}

func (e *ValidationError) Error() string {
	parts := make([]string, len(e.Errors))
	for i, fe := range e.Errors {
		parts[i] = fe.Error()
	}
	return fmt.Sprintf("%s: %s", ErrInvalidRequest, strings.Join(parts, "; "))
}

// Unwrap makes errors.Is(err, ErrInvalidRequest) true.
func (e *ValidationError) Unwrap() error { return ErrInvalidRequest }

// Fields returns the names of the fields in error, in order.
func (e *ValidationError) Fields() []string {
	out := make([]string, len(e.Errors))
	for i, fe := range e.Errors {
		out[i] = fe.Field
	}
	return out
}

type errorList []FieldError

func (l *errorList) add(field, format string, args ...any) {
	*l = append(*l, FieldError{Field: field, Message: fmt.Sprintf(format, args...)})
}

func (l errorList) err() error {
	if len(l) == 0 {
		return nil
	}
	return &ValidationError{Errors: l}
}

// maxIDLength keeps claude-job-<id> a DNS label (63 characters).
const maxIDLength = validation.DNS1123LabelMaxLength - len(contract.JobNamePrefix)

const (
	maxRepositoryLength = 256
	maxURLLength        = 2048
	maxBranchLength     = 255
	maxAnnotationsBytes = 256 * 1024
	reservedPrefix      = "flowforge.io/"
)

func (r *Renderer) validate(req Request) error {
	var errs errorList
	validateID(&errs, req.ID)
	switch {
	case req.UserID == "":
		errs.add("userID", "is required")
	case len(validation.IsValidLabelValue(req.UserID)) > 0:
		errs.add("userID", "%q is not a valid label value: at most 63 letters, digits, '-', '_' or '.', starting and ending with a letter or digit", truncate(req.UserID))
	}
	switch {
	case strings.TrimSpace(req.Repository) == "":
		errs.add("repository", "is required")
	case len(req.Repository) > maxRepositoryLength:
		errs.add("repository", "is longer than %d bytes", maxRepositoryLength)
	case hasControl(req.Repository):
		errs.add("repository", "must not contain control characters")
	}
	if msg := checkRepositoryURL(req.RepositoryURL); msg != "" {
		errs.add("repositoryURL", "%s", msg)
	}
	if msg := checkBranch(req.Branch); msg != "" {
		errs.add("branch", "%s", msg)
	}
	r.validateTask(&errs, req.Task)
	if req.Timeout != 0 {
		if msg := r.checkTimeout(req.Timeout); msg != "" {
			errs.add("timeout", "%s", msg)
		}
	}
	if req.Template != "" {
		if _, ok := r.templates[req.Template]; !ok {
			errs.add("template", "unknown template %q (known: %s)", truncate(req.Template), strings.Join(r.Templates(), ", "))
		}
	}
	if req.Profile != "" && !slices.Contains(r.profiles, req.Profile) {
		errs.add("profile", "unknown profile %q (known: %s)", truncate(req.Profile), strings.Join(r.profiles, ", "))
	}
	for _, k := range sortedKeys(req.NodeSelector) {
		field := fmt.Sprintf("nodeSelector[%s]", k)
		if msgs := validation.IsQualifiedName(k); len(msgs) > 0 {
			errs.add(field, "key is not a valid label key: %s", strings.Join(msgs, "; "))
		}
		if msgs := validation.IsValidLabelValue(req.NodeSelector[k]); len(msgs) > 0 {
			errs.add(field, "value %q is not a valid label value: %s", truncate(req.NodeSelector[k]), strings.Join(msgs, "; "))
		}
	}
	for _, k := range sortedKeys(req.Env) {
		checkEnv(&errs, fmt.Sprintf("env[%s]", k), k, req.Env[k])
	}
	checkAnnotations(&errs, "podAnnotations", req.PodAnnotations)
	return errs.err()
}

func validateID(errs *errorList, id string) {
	switch {
	case id == "":
		errs.add("id", "is required")
	case len(id) > maxIDLength:
		errs.add("id", "is %d characters long; at most %d fit in the Job name %s<id>", len(id), maxIDLength, contract.JobNamePrefix)
	case len(validation.IsDNS1123Label(contract.JobName(id))) > 0:
		errs.add("id", "%q must consist of lower-case letters, digits and '-', and end with a letter or digit (the Job name %s<id> is a DNS label)", truncate(id), contract.JobNamePrefix)
	}
}

func (r *Renderer) validateTask(errs *errorList, task string) {
	switch {
	case strings.TrimSpace(task) == "":
		errs.add("task", "is required")
	case len(task) > r.maxTaskBytes:
		errs.add("task", "is %d bytes; the maximum is %d", len(task), r.maxTaskBytes)
	case !utf8.ValidString(task):
		errs.add("task", "must be valid UTF-8 text")
	case strings.ContainsRune(task, 0):
		errs.add("task", "must not contain NUL characters")
	}
}

func (r *Renderer) checkTimeout(d time.Duration) string {
	switch {
	case d%time.Second != 0:
		return fmt.Sprintf("%s is not a whole number of seconds", d)
	case d < r.minTimeout:
		return fmt.Sprintf("%s is below the minimum of %s", d, r.minTimeout)
	case d > r.maxTimeout:
		return fmt.Sprintf("%s is above the maximum of %s", d, r.maxTimeout)
	}
	return ""
}

func checkEnv(errs *errorList, field, name, value string) {
	switch {
	case len(validation.IsCIdentifier(name)) > 0:
		errs.add(field, "name must be a C identifier (letters, digits and '_', not starting with a digit)")
	case contract.IsReservedEnv(name):
		errs.add(field, "%s is set by FlowForge and cannot be overridden", name)
	}
	switch {
	case !utf8.ValidString(value):
		errs.add(field, "value must be valid UTF-8")
	case strings.ContainsRune(value, 0):
		errs.add(field, "value must not contain NUL characters")
	}
}

func checkAnnotations(errs *errorList, prefix string, annotations map[string]string) {
	total := 0
	for _, k := range sortedKeys(annotations) {
		field := fmt.Sprintf("%s[%s]", prefix, k)
		total += len(k) + len(annotations[k])
		if msgs := validation.IsQualifiedName(k); len(msgs) > 0 {
			errs.add(field, "key is not a valid annotation key: %s", strings.Join(msgs, "; "))
			continue
		}
		if strings.HasPrefix(k, reservedPrefix) {
			errs.add(field, "keys under %s are reserved for FlowForge", reservedPrefix)
		}
	}
	if total > maxAnnotationsBytes {
		errs.add(prefix, "total size %d bytes is above the limit of %d", total, maxAnnotationsBytes)
	}
}

// checkRepositoryURL accepts https://host/path, ssh://[user@]host[:port]/path
// and git's scp-like user@host:path. It refuses credentials in the URL
// (they come from the git-credentials Secret) and never echoes the URL.
func checkRepositoryURL(raw string) string {
	switch {
	case raw == "":
		return "is required"
	case len(raw) > maxURLLength:
		return fmt.Sprintf("is longer than %d bytes", maxURLLength)
	case hasControl(raw) || strings.ContainsAny(raw, " \t"):
		return "must not contain spaces or control characters"
	}
	if host, path, ok := splitSCPLike(raw); ok {
		switch {
		case strings.HasPrefix(host, "-") || strings.HasPrefix(path, "-"):
			return "host and path must not start with '-'"
		case strings.Trim(path, "/") == "":
			return "has no repository path"
		}
		return ""
	}
	u, err := url.Parse(raw)
	if err != nil {
		return "is not a valid URL (use https://host/org/repo.git or ssh://git@host/org/repo.git)"
	}
	switch u.Scheme {
	case "https":
		if u.User != nil {
			return "must not embed credentials; the worker reads them from the git-credentials Secret"
		}
	case "ssh":
		if _, hasPassword := u.User.Password(); hasPassword {
			return "must not embed a password; the worker reads credentials from the git-credentials Secret"
		}
	default:
		return fmt.Sprintf("scheme %q is not allowed (use https:// or ssh://, or git@host:org/repo.git)", u.Scheme)
	}
	switch {
	case u.Hostname() == "":
		return "has no host"
	case strings.HasPrefix(u.Hostname(), "-"):
		return "host must not start with '-'"
	case strings.Trim(u.Path, "/") == "":
		return "has no repository path"
	case u.RawQuery != "" || u.Fragment != "":
		return "must not have a query or fragment"
	}
	return ""
}

// splitSCPLike splits git's scp-like ssh syntax, user@host:path.
func splitSCPLike(raw string) (host, path string, ok bool) {
	if strings.Contains(raw, "://") {
		return "", "", false
	}
	user, rest, found := strings.Cut(raw, "@")
	if !found || user == "" || !isSimple(user, "._-") {
		return "", "", false
	}
	host, path, found = strings.Cut(rest, ":")
	if !found || host == "" || path == "" || !isSimple(host, ".-") {
		return "", "", false
	}
	return host, path, true
}

// isSimple reports whether s has only ASCII letters, digits and extra.
func isSimple(s, extra string) bool {
	return !strings.ContainsFunc(s, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune(extra, r))
	})
}

// checkBranch applies git check-ref-format's rules to refs/heads/<branch>,
// and refuses a leading '-' so that a branch is never read as an option.
func checkBranch(b string) string {
	switch {
	case b == "":
		return "is required"
	case len(b) > maxBranchLength:
		return fmt.Sprintf("is longer than %d bytes", maxBranchLength)
	case hasControl(b):
		return "must not contain control characters"
	case !utf8.ValidString(b):
		return "must be valid UTF-8"
	}
	q := truncate(b)
	switch {
	case strings.ContainsAny(b, " ~^:?*[\\"):
		return fmt.Sprintf("%q must not contain spaces or any of ~ ^ : ? * [ \\", q)
	case strings.Contains(b, ".."):
		return fmt.Sprintf("%q must not contain \"..\"", q)
	case strings.Contains(b, "@{"):
		return fmt.Sprintf("%q must not contain \"@{\"", q)
	case b == "@":
		return "\"@\" is not a branch name"
	case strings.HasPrefix(b, "-"):
		return fmt.Sprintf("%q must not start with '-'", q)
	case strings.HasPrefix(b, "/") || strings.HasSuffix(b, "/") || strings.Contains(b, "//"):
		return fmt.Sprintf("%q must not start or end with '/' or contain \"//\"", q)
	case strings.HasSuffix(b, "."):
		return fmt.Sprintf("%q must not end with '.'", q)
	}
	for _, part := range strings.Split(b, "/") {
		if strings.HasPrefix(part, ".") || strings.HasSuffix(part, ".lock") {
			return fmt.Sprintf("%q: no path component may start with '.' or end with \".lock\"", q)
		}
	}
	return ""
}

func hasControl(s string) bool {
	return strings.ContainsFunc(s, func(r rune) bool { return r < 0x20 || r == 0x7f })
}

// truncate shortens a value quoted in an error message.
func truncate(s string) string {
	const max = 64
	if len(s) <= max {
		return s
	}
	cut := max
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "..."
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
