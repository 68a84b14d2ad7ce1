package templates

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// requireFields asserts that err is a *ValidationError naming exactly the
// given fields.
func requireFields(t *testing.T, err error, fields ...string) *ValidationError {
	t.Helper()
	require.Error(t, err)
	require.ErrorIs(t, err, ErrInvalidRequest)
	var verr *ValidationError
	require.True(t, errors.As(err, &verr), "want a *ValidationError, got %T: %v", err, err)
	assert.Equal(t, fields, verr.Fields(), "fields in error: %v", err)
	return verr
}

func TestValidateRejects(t *testing.T) {
	r := newRenderer(t, RendererOptions{})
	for _, tc := range []struct {
		name   string
		change func(*Request)
		field  string
		msg    string
	}{
		{"missing id", func(r *Request) { r.ID = "" }, "id", "required"},
		{"upper-case id", func(r *Request) { r.ID = "ABC" }, "id", "lower-case"},
		{"id with underscore", func(r *Request) { r.ID = "a_b" }, "id", "lower-case"},
		{"id ending in a dash", func(r *Request) { r.ID = "abc-" }, "id", "end with a letter or digit"},
		{"id too long for the Job name", func(r *Request) { r.ID = strings.Repeat("a", 53) }, "id", "at most 52"},
		{"missing user", func(r *Request) { r.UserID = "" }, "userID", "required"},
		{"user not a label value", func(r *Request) { r.UserID = "alice@example.com" }, "userID", "label value"},
		{"missing repository", func(r *Request) { r.Repository = " " }, "repository", "required"},
		{"repository with a newline", func(r *Request) { r.Repository = "acme\nwidgets" }, "repository", "control"},
		{"missing repository URL", func(r *Request) { r.RepositoryURL = "" }, "repositoryURL", "required"},
		{"plain http", func(r *Request) { r.RepositoryURL = "http://github.com/acme/w.git" }, "repositoryURL", `scheme "http"`},
		{"file URL", func(r *Request) { r.RepositoryURL = "file:///etc/passwd" }, "repositoryURL", `scheme "file"`},
		{"credentials in the URL", func(r *Request) { r.RepositoryURL = "https://user:hunter2@github.com/acme/w.git" }, "repositoryURL", "credentials"},
		{"token as user", func(r *Request) { r.RepositoryURL = "https://ghp_token@github.com/acme/w.git" }, "repositoryURL", "credentials"},
		{"ssh password", func(r *Request) { r.RepositoryURL = "ssh://git:pw@github.com/acme/w.git" }, "repositoryURL", "password"},
		{"no repository path", func(r *Request) { r.RepositoryURL = "https://github.com/" }, "repositoryURL", "no repository path"},
		{"option-like host", func(r *Request) { r.RepositoryURL = "git@-evil.example.com:acme/w.git" }, "repositoryURL", "'-'"},
		{"not a URL", func(r *Request) { r.RepositoryURL = "https://github.com/acme/%zz" }, "repositoryURL", "not a valid URL"},
		{"URL with a space", func(r *Request) { r.RepositoryURL = "https://github.com/acme/w x.git" }, "repositoryURL", "spaces"},
		{"URL with a query", func(r *Request) { r.RepositoryURL = "https://github.com/acme/w.git?x=1" }, "repositoryURL", "query"},
		{"missing branch", func(r *Request) { r.Branch = "" }, "branch", "required"},
		{"branch with a space", func(r *Request) { r.Branch = "my branch" }, "branch", "spaces"},
		{"branch with ..", func(r *Request) { r.Branch = "a..b" }, "branch", `".."`},
		{"branch with a control char", func(r *Request) { r.Branch = "a\x07b" }, "branch", "control"},
		{"branch like an option", func(r *Request) { r.Branch = "--upload-pack=evil" }, "branch", "'-'"},
		{"branch ending in .lock", func(r *Request) { r.Branch = "feature/x.lock" }, "branch", ".lock"},
		{"branch with @{", func(r *Request) { r.Branch = "a@{1}" }, "branch", "@{"},
		{"branch ending in a slash", func(r *Request) { r.Branch = "feature/" }, "branch", "'/'"},
		{"branch ending in a dot", func(r *Request) { r.Branch = "v1." }, "branch", "end with '.'"},
		{"hidden component", func(r *Request) { r.Branch = "a/.b" }, "branch", "start with '.'"},
		{"missing task", func(r *Request) { r.Task = "\n\t " }, "task", "required"},
		{"task not UTF-8", func(r *Request) { r.Task = "\xff\xfe" }, "task", "UTF-8"},
		{"task with NUL", func(r *Request) { r.Task = "a\x00b" }, "task", "NUL"},
		{"timeout too short", func(r *Request) { r.Timeout = 30 * time.Second }, "timeout", "below the minimum"},
		{"timeout too long", func(r *Request) { r.Timeout = 5 * time.Hour }, "timeout", "above the maximum of 4h0m0s"},
		{"negative timeout", func(r *Request) { r.Timeout = -time.Hour }, "timeout", "below the minimum"},
		{"fractional timeout", func(r *Request) { r.Timeout = 90*time.Second + time.Millisecond }, "timeout", "whole number of seconds"},
		{"unknown profile", func(r *Request) { r.Profile = "huge" }, "profile", "known: large, medium, small"},
		{"unknown template", func(r *Request) { r.Template = "gpt" }, "template", "known: claude-code, claude-code-review"},
		{"env not an identifier", func(r *Request) { r.Env = map[string]string{"MY-VAR": "x"} }, "env[MY-VAR]", "C identifier"},
		{"env overriding the task", func(r *Request) { r.Env = map[string]string{"TASK": "x"} }, "env[TASK]", "cannot be overridden"},
		{"env overriding the API key", func(r *Request) { r.Env = map[string]string{"ANTHROPIC_API_KEY": "x"} }, "env[ANTHROPIC_API_KEY]", "cannot be overridden"},
		{"env value with NUL", func(r *Request) { r.Env = map[string]string{"A": "x\x00"} }, "env[A]", "NUL"},
		{"node selector key", func(r *Request) { r.NodeSelector = map[string]string{"bad key": "x"} }, "nodeSelector[bad key]", "label key"},
		{"node selector value", func(r *Request) { r.NodeSelector = map[string]string{"zone": "a b"} }, "nodeSelector[zone]", "label value"},
		{"pod annotation key", func(r *Request) { r.PodAnnotations = map[string]string{"bad key": "x"} }, "podAnnotations[bad key]", "annotation key"},
		{"reserved pod annotation", func(r *Request) { r.PodAnnotations = map[string]string{"flowforge.io/profile": "large"} }, "podAnnotations[flowforge.io/profile]", "reserved"},
		{"huge pod annotations", func(r *Request) { r.PodAnnotations = map[string]string{"a": strings.Repeat("x", 300*1024)} }, "podAnnotations", "total size"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req := minimalRequest()
			tc.change(&req)
			verr := requireFields(t, r.Validate(req), tc.field)
			assert.Contains(t, verr.Errors[0].Message, tc.msg)
			assert.Contains(t, verr.Error(), tc.field+": ")
		})
	}
}

func TestValidateAccepts(t *testing.T) {
	r := newRenderer(t, RendererOptions{})
	for _, tc := range []struct {
		name   string
		change func(*Request)
	}{
		{"minimal", func(*Request) {}},
		{"id at the length limit", func(r *Request) { r.ID = strings.Repeat("a", 52) }},
		{"numeric id", func(r *Request) { r.ID = "12345" }},
		{"ssh URL", func(r *Request) { r.RepositoryURL = "ssh://git@github.com:22/acme/widgets.git" }},
		{"scp-like URL", func(r *Request) { r.RepositoryURL = "git@github.com:acme/widgets.git" }},
		{"https with a port", func(r *Request) { r.RepositoryURL = "https://git.example.com:8443/acme/widgets" }},
		{"nested branch", func(r *Request) { r.Branch = "feature/JIRA-12_login.v2" }},
		{"unicode branch", func(r *Request) { r.Branch = "fix/überall" }},
		{"timeout at the minimum", func(r *Request) { r.Timeout = time.Minute }},
		{"timeout at the maximum", func(r *Request) { r.Timeout = 4 * time.Hour }},
		{"env", func(r *Request) { r.Env = map[string]string{"_PRIVATE": "", "LOG_LEVEL": "debug"} }},
		{"node selector", func(r *Request) { r.NodeSelector = map[string]string{"example.com/pool": "agents"} }},
		{"simulation annotations", func(r *Request) { r.PodAnnotations = map[string]string{"sim.flowforge.io/duration": "1s"} }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req := minimalRequest()
			tc.change(&req)
			assert.NoError(t, r.Validate(req))
		})
	}
}

func TestValidateListsEveryProblem(t *testing.T) {
	r := newRenderer(t, RendererOptions{})
	verr := requireFields(t, r.Validate(Request{
		ID:            "Bad_ID",
		RepositoryURL: "https://user:supersecret@github.com/acme/w.git",
		Timeout:       time.Second,
		Env:           map[string]string{"TASK": "sneaky"},
	}), "id", "userID", "repository", "repositoryURL", "branch", "task", "timeout", "env[TASK]")
	assert.NotContains(t, verr.Error(), "supersecret", "credentials are never echoed")
	assert.NotContains(t, verr.Error(), "sneaky", "env values are never echoed")
}

func TestValidateLongValuesAreTruncatedInMessages(t *testing.T) {
	r := newRenderer(t, RendererOptions{})
	req := minimalRequest()
	req.Branch = "ü" + strings.Repeat("b", 100) + " x"
	verr := requireFields(t, r.Validate(req), "branch")
	assert.Contains(t, verr.Error(), "...")
	assert.Less(t, len(verr.Error()), 200)
}

func TestRendererTimeoutBoundsAreConfigurable(t *testing.T) {
	r := newRenderer(t, RendererOptions{MinTimeout: 5 * time.Minute, MaxTimeout: 2 * time.Hour, DefaultTimeout: 10 * time.Minute, Profiles: []string{"small", "medium", "gpu"}, DefaultProfile: "gpu"})
	req := minimalRequest()
	req.Timeout = 3 * time.Hour
	requireFields(t, r.Validate(req), "timeout")
	req.Timeout = 2 * time.Minute
	requireFields(t, r.Validate(req), "timeout")
	req.Timeout = 0
	req.Profile = "large"
	requireFields(t, r.Validate(req), "profile")
	req.Profile = "gpu"
	n, err := r.Normalize(req)
	require.NoError(t, err)
	assert.Equal(t, time.Hour, n.Timeout, "the template's default wins over the renderer's")
}
