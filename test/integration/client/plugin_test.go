package client

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/creack/pty"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/flowforge/flowforge/contract"
	historystore "github.com/flowforge/flowforge/history/store"
	"github.com/flowforge/flowforge/test/framework"
	"github.com/flowforge/flowforge/test/localcluster"
)

// The kubectl plugin, built once from this tree as kubectl-flowforge
// (with kubectl_complete-flowforge, as `make build` writes it), in a
// directory of its own that goes first on PATH.
var (
	pluginOnce sync.Once
	pluginDir  string
	pluginErr  error
)

func buildPlugin(t *testing.T) string {
	t.Helper()
	pluginOnce.Do(func() {
		dir, err := os.MkdirTemp("", "flowforge-plugin-")
		if err != nil {
			pluginErr = err
			return
		}
		cmd := exec.Command("go", "build", "-o", filepath.Join(dir, "kubectl-flowforge"), "github.com/flowforge/flowforge/cmd/flowforge")
		if out, err := cmd.CombinedOutput(); err != nil {
			pluginErr = fmt.Errorf("go build: %w\n%s", err, out)
			return
		}
		script := "#!/bin/sh\nexec kubectl-flowforge __complete \"$@\"\n"
		if err := os.WriteFile(filepath.Join(dir, "kubectl_complete-flowforge"), []byte(script), 0o755); err != nil {
			pluginErr = err
			return
		}
		pluginDir = dir
	})
	require.NoError(t, pluginErr)
	return pluginDir
}

// kubectlCmd is `kubectl flowforge args...` with the pinned kubectl of
// bin/, the plugin on PATH and the test cluster's kubeconfig in
// $KUBECONFIG (kubectl passes the environment on to the plugin).
func kubectlCmd(t *testing.T, ctx context.Context, args ...string) *exec.Cmd {
	t.Helper()
	dir := buildPlugin(t)
	binDir, err := localcluster.DefaultBinDir()
	require.NoError(t, err)
	kubectl := filepath.Join(binDir, "kubectl")
	_, err = os.Stat(kubectl)
	require.NoError(t, err, "the pinned kubectl is missing from bin/: run `make tools`")
	cmd := exec.CommandContext(ctx, kubectl, append([]string{"flowforge"}, args...)...)
	cmd.Env = append(os.Environ(),
		"PATH="+dir+string(os.PathListSeparator)+binDir+string(os.PathListSeparator)+os.Getenv("PATH"),
		"KUBECONFIG="+testCluster.KubeconfigPath,
		"HOME="+t.TempDir(),
		"TERM=xterm-256color",
	)
	return cmd
}

type cliResult struct {
	code     int
	out, err string
}

// kubectlFlowforge runs `kubectl flowforge args...` with pipes (no
// terminal), as CI would.
func kubectlFlowforge(t *testing.T, ctx context.Context, args ...string) cliResult {
	t.Helper()
	cmd := kubectlCmd(t, ctx, args...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	var exit *exec.ExitError
	if errors.As(err, &exit) {
		code = exit.ExitCode()
	} else {
		require.NoError(t, err)
	}
	return cliResult{code: code, out: out.String(), err: errb.String()}
}

func submitArgs(ns, id, duration string, extra ...string) []string {
	return append([]string{"-n", ns, "submit", "--id", id, "--user", "u-42", "--repository", "acme/widgets",
		"--repository-url", "https://github.com/acme/widgets.git", "--branch", "feature/" + id,
		"--task", "Fix the login redirect.", "--pod-annotation", localcluster.AnnotationDuration + "=" + duration}, extra...)
}

// pinnedByTag is the API server's warning for the worker template's image
// (policies/validate/images: a tag, not a digest).
var pinnedByTag = regexp.MustCompile(`spec\.template\.spec\.containers\[0\]\.image: image "[^"]+" is pinned by tag: a digest \(@sha256:\.\.\.\) pins its content`)

// onATerminal runs `kubectl flowforge args...` under a pseudo-terminal of
// 40x200 (stdin, stdout and stderr) and returns what the terminal showed.
func onATerminal(t *testing.T, ctx context.Context, args ...string) string {
	t.Helper()
	cmd := kubectlCmd(t, ctx, args...)
	ptmx, err := pty.StartWithSize(cmd, &pty.Winsize{Rows: 40, Cols: 200})
	require.NoError(t, err)
	defer ptmx.Close() //nolint:errcheck // test cleanup
	var screen bytes.Buffer
	_, err = io.Copy(&screen, ptmx)
	// Linux ends a pty's output with EIO once the program has exited.
	if err != nil && !errors.Is(err, syscall.EIO) {
		require.NoError(t, err)
	}
	require.NoError(t, cmd.Wait(), "exit code of a succeeded job: %q", screen.String())
	t.Logf("the terminal showed: %q", screen.String())
	return screen.String()
}

// liveSegment is what the terminal showed between the line that starts
// with from and the line that starts with to.
func liveSegment(t *testing.T, out, from, to string) string {
	t.Helper()
	start := strings.Index(out, from)
	require.GreaterOrEqual(t, start, 0, out)
	start += strings.Index(out[start:], "\r\n") + 2
	end := strings.Index(out, to)
	require.Greater(t, end, start, out)
	return out[start:end]
}

// TestPluginSubmitWaitOnATerminal drives `kubectl flowforge submit --wait`
// under a pseudo-terminal, as a person at a terminal runs it: the API
// server's warning prints once as kubectl prints it (coloured, since
// stderr is a terminal), and between "created" and the outcome there is a
// single status line redrawn in place.
func TestPluginSubmitWaitOnATerminal(t *testing.T) {
	ns := framework.Namespace(t, clientset, "plugin", nil)
	ctx := testContext(t, 2*time.Minute)
	out := onATerminal(t, ctx, submitArgs(ns, "tty", "5s", "--wait")...)

	// The warning: "Warning: ..." in kubectl's colours, once, no klog line.
	warning := regexp.MustCompile(`\x1b\[33;1mWarning:\x1b\[0m ` + pinnedByTag.String() + `\r\n`)
	assert.Len(t, warning.FindAllString(out, -1), 1, "the warning, once, kubectl style")
	assert.Equal(t, 1, strings.Count(out, "Warning:"))
	assert.NotContains(t, out, "warnings.go", "no klog line")

	// The single updating line.
	live := liveSegment(t, out, "job tty created: Job "+ns+"/claude-job-tty, policy revision ", "job tty Succeeded")
	assert.NotContains(t, live, "\n", "one line, redrawn in place")
	assert.GreaterOrEqual(t, strings.Count(live, "\r\x1b[K"), 4, "redrawn while the 5 s job ran (every second): %q", live)
	assert.True(t, strings.HasSuffix(live, "\r\x1b[K"), "cleared before the outcome")
	assert.Regexp(t, `tty  Running    attempts 1  active 1  \d+s`, live)
	// The latest event of the Job or its pod (which one depends on timing).
	assert.Regexp(t, `attempts 1  active 1  \d+s  (SuccessfulCreate|Scheduled|Pulling|Pulled|Created|Started|Completed): \S`, live, "the latest event")
	for _, frame := range strings.Split(live, "\r\x1b[K") {
		assert.LessOrEqual(t, len([]rune(frame)), 199, "never wider than the terminal: %q", frame)
	}
	assert.True(t, strings.HasSuffix(out, "job tty Succeeded: Reached expected number of succeeded pods\r\n"), out)
}

// TestPluginWatchLogsOnATerminal: with --logs the job's log lines scroll
// above the status line, which stays the last line.
func TestPluginWatchLogsOnATerminal(t *testing.T) {
	ns := framework.Namespace(t, clientset, "plugin", nil)
	ctx := testContext(t, 2*time.Minute)
	res := kubectlFlowforge(t, ctx, submitArgs(ns, "tlogs", "6s",
		"--pod-annotation", localcluster.AnnotationLogs+"=cloning acme/widgets\nrunning the tests\nall green",
		"--pod-annotation", localcluster.AnnotationLogInterval+"=1s")...)
	require.Equal(t, 0, res.code, res.err)
	out := onATerminal(t, ctx, "-n", ns, "watch", "tlogs", "--logs")
	live := out[:strings.Index(out, "job tlogs Succeeded")]
	for _, line := range []string{"cloning acme/widgets", "running the tests", "all green"} {
		// Each log line replaces the status line (cleared), then the
		// status line is drawn again below it.
		assert.Regexp(t, `\r\x1b\[K`+line+`\r\n\r\x1b\[K\S+ tlogs  \w+ +attempts`, live, line)
	}
	withoutLogs := regexp.MustCompile(`(cloning acme/widgets|running the tests|all green)\r\n`).ReplaceAllString(live, "")
	assert.NotContains(t, withoutLogs, "\n", "apart from the log lines, one line redrawn in place")
}

// TestPluginThroughKubectl runs every command as `kubectl flowforge`,
// with pipes: plain output, -o json, kubectl's global flags, completion
// through kubectl, and the errors.
func TestPluginThroughKubectl(t *testing.T) {
	ns := framework.Namespace(t, clientset, "plugin", nil)
	ctx := testContext(t, 3*time.Minute)

	// A real history API (empty) behind the API server, for the errors
	// that name it.
	store, err := historystore.OpenSQLite(ctx, ":memory:")
	require.NoError(t, err)
	t.Cleanup(func() { _ = store.Close() })
	stopHistory, err := framework.ServeHistoryAPI(ctx, testCluster, store)
	require.NoError(t, err)
	t.Cleanup(stopHistory)

	t.Run("submit -o json, warnings on stderr", func(t *testing.T) {
		res := kubectlFlowforge(t, ctx, submitArgs(ns, "p1", "3s", "-o", "json",
			"--pod-annotation", localcluster.AnnotationLogs+"=hello from p1")...)
		require.Equal(t, 0, res.code, res.err)
		var st contract.Status
		require.NoError(t, json.Unmarshal([]byte(res.out), &st), res.out)
		assert.Equal(t, "p1", st.ID)
		assert.NotEmpty(t, st.PolicyRevision)
		assert.Regexp(t, `(?m)^Warning: `+pinnedByTag.String()+`$`, res.err, "plain: stderr is a pipe")
		assert.Equal(t, 1, strings.Count(res.err, "Warning:"))
		assert.NotContains(t, res.err, "\x1b[")
		assert.NotContains(t, res.err, "warnings.go")
	})
	t.Run("watch: plain lines, the outcome as exit code", func(t *testing.T) {
		res := kubectlFlowforge(t, ctx, "-n", ns, "watch", "p1")
		require.Equal(t, 0, res.code, res.err)
		assert.NotContains(t, res.out, "\r")
		assert.Regexp(t, `(?m)^\d\d:\d\d:\d\d  p1  Succeeded  attempts 1  active 0  \d+s$`, res.out)
		assert.True(t, strings.HasSuffix(res.out, "job p1 Succeeded: Reached expected number of succeeded pods\n"), res.out)
	})
	t.Run("status -o json", func(t *testing.T) {
		res := kubectlFlowforge(t, ctx, "-n", ns, "status", "p1", "-o", "json")
		require.Equal(t, 0, res.code, res.err)
		var st contract.Status
		require.NoError(t, json.Unmarshal([]byte(res.out), &st), res.out)
		assert.Equal(t, contract.PhaseSucceeded, st.Phase)
		assert.Equal(t, "claude-job-p1", st.Name)
		assert.Equal(t, ns, st.Namespace)
	})
	t.Run("list -o yaml", func(t *testing.T) {
		res := kubectlFlowforge(t, ctx, "--namespace", ns, "list", "-o", "yaml")
		require.Equal(t, 0, res.code, res.err)
		assert.Contains(t, res.out, "id: p1\n")
	})
	t.Run("logs", func(t *testing.T) {
		res := kubectlFlowforge(t, ctx, "-n", ns, "logs", "p1")
		require.Equal(t, 0, res.code, res.err)
		assert.Equal(t, "hello from p1\n", res.out)
		res = kubectlFlowforge(t, ctx, "-n", ns, "logs", "p1", "-o", "json")
		require.Equal(t, 0, res.code, res.err)
		assert.JSONEq(t, `{"id": "p1", "source": "cluster", "logs": "hello from p1\n"}`, res.out)
	})
	t.Run("version -o json", func(t *testing.T) {
		job, err := clientset.BatchV1().Jobs(ns).Get(ctx, "claude-job-p1", metav1.GetOptions{})
		require.NoError(t, err)
		res := kubectlFlowforge(t, ctx, "-n", ns, "version", "-o", "json")
		require.Equal(t, 0, res.code, res.err)
		var v struct {
			Client struct{ Version string }
			Policy struct{ Revision, Job string }
			Server struct{ GitVersion string }
		}
		require.NoError(t, json.Unmarshal([]byte(res.out), &v), res.out)
		assert.NotEmpty(t, v.Client.Version)
		assert.Equal(t, job.Annotations[contract.AnnotationPolicyRevision], v.Policy.Revision)
		assert.Equal(t, ns+"/claude-job-p1", v.Policy.Job)
		assert.True(t, strings.HasPrefix(v.Server.GitVersion, "v1.37."), v.Server.GitVersion)
	})
	t.Run("cancel -o json", func(t *testing.T) {
		res := kubectlFlowforge(t, ctx, submitArgs(ns, "p2", "10m")...)
		require.Equal(t, 0, res.code, res.err)
		res = kubectlFlowforge(t, ctx, "-n", ns, "cancel", "p2", "--reason", "wrong branch", "-o", "json")
		require.Equal(t, 0, res.code, res.err)
		var st contract.Status
		require.NoError(t, json.Unmarshal([]byte(res.out), &st), res.out)
		assert.Equal(t, contract.PhaseCancelling, st.Phase)
		assert.NotEmpty(t, st.CancelRequestedBy)
	})
	t.Run("--as impersonates, as kubectl does", func(t *testing.T) {
		res := kubectlFlowforge(t, ctx, "--as", "nobody@example.com", "--as-group", "nobodies", "-n", ns, "list")
		assert.Equal(t, 1, res.code)
		assert.Contains(t, res.err, `User "nobody@example.com" cannot list resource "jobs"`)
		assert.Contains(t, res.err, `in the namespace "`+ns+`"`)
	})
	t.Run("--context, --kubeconfig", func(t *testing.T) {
		res := kubectlFlowforge(t, ctx, "--kubeconfig", testCluster.KubeconfigPath, "--context", "nope", "-n", ns, "list")
		assert.Equal(t, 1, res.code)
		assert.Equal(t, "Error: kubeconfig: context \"nope\" does not exist\n", res.err)
	})
	t.Run("a job in neither the cluster nor the history", func(t *testing.T) {
		res := kubectlFlowforge(t, ctx, "-n", ns, "status", "nosuch")
		assert.Equal(t, 1, res.code)
		assert.Equal(t, `Error: job "nosuch" not found in namespace `+ns+" or in the history; "+
			"`kubectl flowforge list` and `kubectl flowforge history` show the jobs there are, -n another namespace\n", res.err)
		assert.Empty(t, res.out)
	})
	t.Run("completion of job ids through kubectl", func(t *testing.T) {
		res := kubectlFlowforge(t, ctx, "-n", ns, "__complete", "status", "p")
		require.Equal(t, 0, res.code, res.err)
		assert.Equal(t, "p1\np2\n:4\n", res.out)
		// kubectl itself asks kubectl_complete-flowforge.
		kubectl := kubectlCmd(t, ctx)
		cmd := exec.CommandContext(ctx, kubectl.Path, "__complete", "flowforge", "-n", ns, "cancel", "p")
		cmd.Env = kubectl.Env
		out, err := cmd.Output()
		require.NoError(t, err)
		assert.Contains(t, string(out), "p1\np2\n")
	})
	t.Run("completion of namespaces", func(t *testing.T) {
		res := kubectlFlowforge(t, ctx, "__complete", "list", "-n", ns[:len(ns)-2])
		require.Equal(t, 0, res.code, res.err)
		assert.Contains(t, res.out, ns+"\n")
	})
	t.Run("completion scripts", func(t *testing.T) {
		for _, shell := range []string{"bash", "zsh", "fish"} {
			res := kubectlFlowforge(t, ctx, "completion", shell)
			require.Equal(t, 0, res.code, res.err)
			assert.Contains(t, res.out, "__complete", shell)
		}
	})
}
