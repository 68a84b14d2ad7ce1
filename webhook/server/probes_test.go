package server

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"

	"github.com/go-logr/logr"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"sigs.k8s.io/controller-runtime/pkg/healthz"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	"github.com/flowforge/flowforge/policies"
	"github.com/flowforge/flowforge/policies/engine"
)

type fakeServer struct{ err error }

func (f fakeServer) StartedChecker() healthz.Checker {
	return func(*http.Request) error { return f.err }
}

type fakeCache struct{ synced bool }

func (f fakeCache) WaitForCacheSync(context.Context) bool { return f.synced }

func TestReadyzShowsThePolicyAndRefusedReloads(t *testing.T) {
	dir := t.TempDir()
	require.NoError(t, os.CopyFS(dir, policies.Embedded()))
	eng, err := engine.New(context.Background(), engine.Options{Dir: dir, Log: logr.Discard()})
	require.NoError(t, err)
	p := &probeServer{eng: eng, server: fakeServer{}, cache: fakeCache{synced: true}}

	get := func(h http.HandlerFunc, url string) (int, string) {
		rec := httptest.NewRecorder()
		h(rec, httptest.NewRequest(http.MethodGet, url, nil))
		return rec.Code, rec.Body.String()
	}
	code, body := get(p.readyz, "/readyz")
	assert.Equal(t, http.StatusOK, code)
	assert.Equal(t, "ok", body)
	code, body = get(p.readyz, "/readyz?verbose")
	assert.Equal(t, http.StatusOK, code)
	assert.Contains(t, body, "[+]policy ok: revision "+eng.Current().Revision)
	assert.Contains(t, body, "readyz check passed")

	require.NoError(t, os.WriteFile(filepath.Join(dir, "broken.rego"), []byte("package x\nbroken := {"), 0o644))
	require.Error(t, eng.Reload(context.Background()))
	code, body = get(p.readyz, "/readyz?verbose")
	assert.Equal(t, http.StatusOK, code, "the previous policy keeps serving, so the server stays ready")
	assert.Contains(t, body, "last reload refused at")
	assert.Contains(t, body, "rego_parse_error")

	code, body = get(p.policyStatus, "/readyz/policy")
	assert.Equal(t, http.StatusOK, code)
	var st policies.Status
	require.NoError(t, json.Unmarshal([]byte(body), &st))
	assert.Contains(t, st.LastError, "rego_parse_error")

	p.server = fakeServer{err: errors.New("webhook server has not been started yet")}
	p.cache = fakeCache{}
	code, body = get(p.readyz, "/readyz")
	assert.Equal(t, http.StatusServiceUnavailable, code)
	assert.Contains(t, body, "[-]webhook failed: webhook server has not been started yet")
	assert.Contains(t, body, "[-]namespace-cache failed")
}

func TestLogConstructorNamesTheRequestNotTheObject(t *testing.T) {
	sink := &recordingSink{}
	base := logr.New(sink)
	l := logConstructor(base)(logr.Discard(), &admission.Request{})
	l.Info("x")
	assert.Contains(t, sink.keys, "uid")
	assert.NotContains(t, sink.keys, "object")
	assert.Equal(t, base, logConstructor(base)(logr.Discard(), nil))
}

type recordingSink struct {
	keys []string
}

func (s *recordingSink) Init(logr.RuntimeInfo)       {}
func (s *recordingSink) Enabled(int) bool            { return true }
func (s *recordingSink) Error(error, string, ...any) {}
func (s *recordingSink) Info(_ int, _ string, kv ...any) {
	for i := 0; i < len(kv); i += 2 {
		s.keys = append(s.keys, kv[i].(string))
	}
}
func (s *recordingSink) WithValues(kv ...any) logr.LogSink {
	for i := 0; i < len(kv); i += 2 {
		s.keys = append(s.keys, kv[i].(string))
	}
	return s
}
func (s *recordingSink) WithName(string) logr.LogSink { return s }
