package cli

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/spf13/cobra"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	batchv1 "k8s.io/api/batch/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/flowforge/flowforge/contract"
	"github.com/flowforge/flowforge/templates"
)

// execute runs the real command tree (real dependencies) as main does.
func execute(t *testing.T, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var out, errb bytes.Buffer
	code := Execute(ctx, args, Streams{In: strings.NewReader(""), Out: &out, Err: &errb})
	return result{code: code, out: out.String(), err: errb.String()}
}

func TestExecute(t *testing.T) {
	t.Setenv("FLOWFORGE_HISTORY_URL", "")
	t.Run("help", func(t *testing.T) {
		res := execute(t, "--help")
		require.Equal(t, ExitOK, res.code, res.err)
		for _, cmd := range []string{"submit", "status", "watch", "list", "logs", "cancel", "history", "policy"} {
			assert.Regexp(t, `(?m)^  `+cmd+` `, res.out)
		}
	})
	t.Run("an unknown command", func(t *testing.T) {
		res := execute(t, "frobnicate")
		assert.Equal(t, ExitError, res.code)
		assert.Equal(t, "Error: unknown command \"frobnicate\" for \"flowforge\"\n", res.err)
		assert.Empty(t, res.out, "usage is not printed on errors")
	})
	t.Run("an unknown flag", func(t *testing.T) {
		res := execute(t, "list", "--frobnicate")
		assert.Equal(t, ExitError, res.code)
		assert.Equal(t, "Error: unknown flag: --frobnicate\n", res.err)
	})
	t.Run("an unknown output format", func(t *testing.T) {
		res := execute(t, "history", "-o", "xml")
		assert.Equal(t, ExitUsage, res.code)
		assert.Equal(t, "Error: unknown output format \"xml\": use table, json or yaml\n", res.err)
	})
	t.Run("a kubeconfig that does not exist", func(t *testing.T) {
		missing := filepath.Join(t.TempDir(), "missing")
		for _, args := range [][]string{{"status", "x"}, {"history"}} {
			res := execute(t, append([]string{"--kubeconfig", missing}, args...)...)
			assert.Equal(t, ExitError, res.code, args)
			assert.Equal(t, "Error: kubeconfig "+missing+": "+missing+" does not exist\n", res.err, args)
		}
	})
}

// fakeAPIServer answers the few requests the CLI makes when a job is no
// longer in the cluster: the Job is not found, and history.flowforge.io
// is proxied to the history API at historyURL, as the aggregation layer
// does.
func fakeAPIServer(t *testing.T, historyURL string) (kubeconfig string, requests func() []string) {
	t.Helper()
	var mu sync.Mutex
	var seen []string
	target, err := url.Parse(historyURL)
	require.NoError(t, err)
	aggregated := httputil.NewSingleHostReverseProxy(target)
	// TLS: client-go sends a kubeconfig's credentials to https servers only.
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		seen = append(seen, r.Method+" "+r.URL.Path)
		mu.Unlock()
		if strings.HasPrefix(r.URL.Path, "/apis/history.flowforge.io/") {
			aggregated.ServeHTTP(w, r)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		if strings.HasSuffix(r.URL.Path, "/jobs") { // no Job has the id
			_ = json.NewEncoder(w).Encode(&batchv1.JobList{TypeMeta: metav1.TypeMeta{APIVersion: "batch/v1", Kind: "JobList"}})
			return
		}
		w.WriteHeader(http.StatusNotFound)
		_ = json.NewEncoder(w).Encode(&metav1.Status{
			TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Status"},
			Status:   metav1.StatusFailure, Reason: metav1.StatusReasonNotFound, Code: http.StatusNotFound,
			Message: r.URL.Path + " not found",
		})
	}))
	t.Cleanup(srv.Close)
	kubeconfig = filepath.Join(t.TempDir(), "kubeconfig")
	require.NoError(t, os.WriteFile(kubeconfig, fmt.Appendf(nil, `apiVersion: v1
kind: Config
clusters:
- name: test
  cluster: {server: %q, certificate-authority-data: %s}
contexts:
- name: test
  context: {cluster: test, user: test}
current-context: test
users:
- name: test
  user: {token: test-token}
`, srv.URL, base64.StdEncoding.EncodeToString(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}))), 0o600))
	return kubeconfig, func() []string {
		mu.Lock()
		defer mu.Unlock()
		return append([]string(nil), seen...)
	}
}

func TestExecuteWithARealClient(t *testing.T) {
	hist := newHistoryServer(t)
	seedHistory(t, hist)
	kubeconfig, requests := fakeAPIServer(t, hist.URL)

	res := execute(t, "--kubeconfig", kubeconfig, "status", "gone-1", "-o", "json")
	require.Equal(t, ExitOK, res.code, res.err)
	assert.Contains(t, res.out, `"uid": "uid-gone-1"`)
	assert.Equal(t, []string{
		"GET /apis/batch/v1/namespaces/flowforge-jobs/jobs",
		"GET /apis/history.flowforge.io/v1alpha1/namespaces/flowforge-jobs/executions/gone-1",
	}, requests())
	auth, _ := hist.requests()
	assert.Equal(t, []string{"Bearer test-token"}, auth, "the kubeconfig's credentials reach the history API")
}

func TestRunMapsErrorsToExitCodes(t *testing.T) {
	invalid := &templates.ValidationError{Errors: []templates.FieldError{{Field: "branch", Message: "is required"}}}
	tests := []struct {
		name string
		err  error
		code int
		msg  string
	}{
		{"success", nil, ExitOK, ""},
		{"a plain error", errors.New("boom"), ExitError, "Error: boom\n"},
		{"an invalid request", invalid, ExitUsage, "Error: invalid job request: branch: is required\n"},
		{"a wrapped invalid request", fmt.Errorf("submit: %w", invalid), ExitUsage, "Error: submit: invalid job request: branch: is required\n"},
		{"a code with an error", withCode(ExitFailed, errors.New("job failed")), ExitFailed, "Error: job failed\n"},
		{"a wrapped code", fmt.Errorf("context: %w", withCode(ExitTimedOut, errors.New("late"))), ExitTimedOut, "Error: late\n"},
		{"a code already explained", withCode(ExitDenied, nil), ExitDenied, ""},
		{"cancelled", withCode(ExitCancelled, nil), ExitCancelled, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out, errb bytes.Buffer
			streams := Streams{Out: &out, Err: &errb}
			root := &cobra.Command{Use: "test", SilenceErrors: true, SilenceUsage: true,
				RunE: func(*cobra.Command, []string) error { return tt.err }}
			assert.Equal(t, tt.code, run(context.Background(), root, nil, streams))
			assert.Equal(t, tt.msg, errb.String())
			assert.Empty(t, out.String())
		})
	}
}

func TestExitError(t *testing.T) {
	bare := withCode(ExitDenied, nil)
	assert.Equal(t, "exit code 6", bare.Error())
	assert.NoError(t, errors.Unwrap(bare))

	cause := errors.New("cause")
	wrapped := withCode(ExitUsage, cause)
	assert.Equal(t, "cause", wrapped.Error())
	assert.ErrorIs(t, wrapped, cause)
}

func TestPhaseExit(t *testing.T) {
	for phase, code := range map[contract.Phase]int{
		contract.PhaseSucceeded:  ExitOK,
		contract.PhaseFailed:     ExitFailed,
		contract.PhaseTimedOut:   ExitTimedOut,
		contract.PhaseCancelled:  ExitCancelled,
		contract.PhaseRunning:    ExitOK,
		contract.PhasePending:    ExitOK,
		contract.PhaseCancelling: ExitOK,
	} {
		assert.Equal(t, code, phaseExit(phase), phase)
	}
}

func TestDefaultDeps(t *testing.T) {
	d := defaultDeps()
	require.NotNil(t, d.newClient)
	require.NotNil(t, d.clientset)
	require.NotNil(t, d.now)
	before := time.Now()
	assert.False(t, d.now().Before(before), "the real clock")
}

func TestHuman(t *testing.T) {
	tests := []struct {
		d    time.Duration
		want string
	}{
		{-time.Second, "0s"},
		{0, "0s"},
		{1500 * time.Millisecond, "1s"},
		{59 * time.Second, "59s"},
		{time.Minute, "1m0s"},
		{61 * time.Second, "1m1s"},
		{59*time.Minute + 59*time.Second, "59m59s"},
		{time.Hour, "1h0m"},
		{90 * time.Minute, "1h30m"},
		{47*time.Hour + 59*time.Minute, "47h59m"},
		{48 * time.Hour, "2d"},
		{100 * time.Hour, "4d"},
		{400 * 24 * time.Hour, "400d"},
	}
	for _, tt := range tests {
		assert.Equal(t, tt.want, human(tt.d), tt.d.String())
	}
}

func TestSince(t *testing.T) {
	assert.Equal(t, "-", since(t0, nil))
	assert.Equal(t, "-", since(t0, &time.Time{}))
	assert.Equal(t, "1m30s", since(t0, at(-90*time.Second)))
	assert.Equal(t, "0s", since(t0, at(time.Minute)), "a clock skewed into the future")
}

func TestSpan(t *testing.T) {
	assert.Equal(t, "-", span(nil, nil, t0))
	assert.Equal(t, "-", span(nil, at(0), t0), "no start, no duration")
	assert.Equal(t, "5m0s", span(at(-5*time.Minute), nil, t0), "running: until now")
	assert.Equal(t, "2m0s", span(at(-5*time.Minute), at(-3*time.Minute), t0))
}

func TestOrDash(t *testing.T) {
	assert.Equal(t, "-", orDash(""))
	assert.Equal(t, "x", orDash("x"))
	assert.Equal(t, " ", orDash(" "))
}

func TestTable(t *testing.T) {
	var b bytes.Buffer
	require.NoError(t, table(&b, []string{"ID", "PHASE"}, [][]string{{"a-long-id", "Running"}, {"b", "-"}}))
	assert.Equal(t, "ID          PHASE\na-long-id   Running\nb           -\n", b.String())

	b.Reset()
	require.NoError(t, table(&b, []string{"ID", "PHASE"}, nil))
	assert.Equal(t, "ID   PHASE\n", b.String(), "an empty table is its header")
}

type failingWriter struct{}

func (failingWriter) Write([]byte) (int, error) { return 0, errors.New("disk full") }

func TestPrintStructured(t *testing.T) {
	v := map[string]any{"id": "a", "attempts": 2}
	tests := []struct {
		format string
		done   bool
		out    string
	}{
		{"json", true, "{\n  \"attempts\": 2,\n  \"id\": \"a\"\n}\n"},
		{"yaml", true, "attempts: 2\nid: a\n"},
		{"table", false, ""},
		{"", false, ""},
	}
	for _, tt := range tests {
		t.Run(tt.format, func(t *testing.T) {
			var b bytes.Buffer
			done, err := printStructured(&b, tt.format, v)
			require.NoError(t, err)
			assert.Equal(t, tt.done, done)
			assert.Equal(t, tt.out, b.String())
		})
	}
	t.Run("unknown", func(t *testing.T) {
		var b bytes.Buffer
		done, err := printStructured(&b, "JSON", v)
		assert.True(t, done)
		var ee *exitError
		require.ErrorAs(t, err, &ee)
		assert.Equal(t, ExitUsage, ee.code)
		assert.EqualError(t, err, `unknown output format "JSON": use table, json or yaml`)
		assert.Empty(t, b.String())
	})
	t.Run("unencodable", func(t *testing.T) {
		for _, format := range []string{"json", "yaml"} {
			done, err := printStructured(&bytes.Buffer{}, format, map[string]any{"f": func() {}})
			assert.True(t, done)
			assert.Error(t, err, format)
		}
	})
	t.Run("a failing writer", func(t *testing.T) {
		for _, format := range []string{"json", "yaml"} {
			done, err := printStructured(failingWriter{}, format, v)
			assert.True(t, done)
			assert.ErrorContains(t, err, "disk full", format)
		}
	})
}

func TestProgress(t *testing.T) {
	clock := t0
	now := func() time.Time { return clock }
	st := func(phase contract.Phase, attempts, active, ready int32) contract.Status {
		return contract.Status{ID: "p1", Phase: phase, Attempts: attempts, Active: active, Ready: ready}
	}

	t.Run("a line per change", func(t *testing.T) {
		clock = t0
		var b bytes.Buffer
		p := newProgress(Streams{Out: &b}, now)
		p.update(st(contract.PhasePending, 0, 0, 0))
		clock = t0.Add(3 * time.Second)
		p.update(st(contract.PhasePending, 0, 0, 0)) // no change
		p.update(st(contract.PhaseRunning, 1, 1, 0))
		clock = t0.Add(4*time.Second + 600*time.Millisecond)
		p.update(st(contract.PhaseRunning, 1, 1, 1)) // readiness is not shown
		clock = t0.Add(2*time.Minute + 5*time.Second)
		p.update(st(contract.PhaseRunning, 2, 1, 1)) // a retry
		p.update(st(contract.PhaseSucceeded, 2, 0, 0))
		p.done()
		assert.Equal(t, "12:00:00  p1  Pending    attempts 0  active 0  0s\n"+
			"12:00:03  p1  Running    attempts 1  active 1  3s\n"+
			"12:02:05  p1  Running    attempts 2  active 1  2m5s\n"+
			"12:02:05  p1  Succeeded  attempts 2  active 0  2m5s\n", b.String())
	})
	t.Run("one line rewritten on a terminal", func(t *testing.T) {
		clock = t0
		var b bytes.Buffer
		p := newProgress(Streams{Out: &b, IsTerminal: true}, now)
		for i := range 11 {
			clock = t0.Add(time.Duration(i) * time.Second)
			p.update(st(contract.PhaseRunning, 1, 1, 1))
		}
		p.done()
		out := b.String()
		assert.Equal(t, 12, strings.Count(out, "\r\033[K"), "every update redraws, and done clears")
		assert.True(t, strings.HasPrefix(out, "\r\033[K⠙ p1  Running    attempts 1  active 1  0s\r\033[K⠹ "), out)
		assert.True(t, strings.HasSuffix(out, "\r\033[K⠙ p1  Running    attempts 1  active 1  10s\r\033[K"), "the spinner wraps around: %q", out)
		assert.NotContains(t, out, "\n")
	})
	t.Run("nothing to clear when nothing was shown", func(t *testing.T) {
		var b bytes.Buffer
		newProgress(Streams{Out: &b, IsTerminal: true}, now).done()
		assert.Empty(t, b.String())
	})
}

func TestMergeRequest(t *testing.T) {
	file := templates.Request{ID: "f", UserID: "u", Repository: "r", RepositoryURL: "https://x/r.git", Branch: "b",
		Task: "t", Timeout: time.Hour, Profile: "small", Template: "claude-code",
		Env: map[string]string{"A": "1"}, NodeSelector: map[string]string{"z": "1"}, PodAnnotations: map[string]string{"p": "1"}}
	assert.Equal(t, file, mergeRequest(file, templates.Request{}), "empty flags change nothing")

	flags := templates.Request{ID: "F", UserID: "U", Repository: "R", RepositoryURL: "https://y/R.git", Branch: "B",
		Task: "T", Timeout: time.Minute, Profile: "large", Template: "claude-code-review"}
	want := flags
	want.Env, want.NodeSelector, want.PodAnnotations = file.Env, file.NodeSelector, file.PodAnnotations
	assert.Equal(t, want, mergeRequest(file, flags), "every flag wins; maps come from the file (flags merge into them later)")
}

func TestMergePairs(t *testing.T) {
	got, err := mergePairs(nil, nil, "--env")
	require.NoError(t, err)
	assert.Nil(t, got, "no pairs, no map")

	got, err = mergePairs(map[string]string{"a": "1", "b": "2"}, []string{"b=3", "c=", "d=x=y"}, "--env")
	require.NoError(t, err)
	assert.Equal(t, map[string]string{"a": "1", "b": "3", "c": "", "d": "x=y"}, got)

	for _, bad := range []string{"novalue", "=v", ""} {
		_, err := mergePairs(nil, []string{bad}, "--node-selector")
		var ee *exitError
		require.ErrorAs(t, err, &ee, bad)
		assert.Equal(t, ExitUsage, ee.code)
		assert.EqualError(t, err, fmt.Sprintf("--node-selector %q: want key=value", bad))
	}
}

type failingReader struct{}

func (failingReader) Read([]byte) (int, error) { return 0, errors.New("stdin closed") }

func TestReadInput(t *testing.T) {
	o := &options{streams: Streams{In: strings.NewReader("from stdin")}}
	data, err := readInput("-", o)
	require.NoError(t, err)
	assert.Equal(t, "from stdin", string(data))

	o.streams.In = failingReader{}
	_, err = readInput("-", o)
	assert.EqualError(t, err, "read stdin: stdin closed")

	path := filepath.Join(t.TempDir(), "f")
	require.NoError(t, os.WriteFile(path, []byte("from a file"), 0o600))
	data, err = readInput(path, o)
	require.NoError(t, err)
	assert.Equal(t, "from a file", string(data))
}
