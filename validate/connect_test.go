package validate

import (
	"context"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	admissionv1 "k8s.io/api/admission/v1"
	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/utils/clock"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	"github.com/flowforge/flowforge/internal/metrics"
	"github.com/flowforge/flowforge/policies"
	"github.com/flowforge/flowforge/policies/engine"
)

func connectRequest(sub, name string, groups ...string) admission.Request {
	kinds := map[string]string{"exec": "PodExecOptions", "attach": "PodAttachOptions", "portforward": "PodPortForwardOptions", "proxy": "PodProxyOptions"}
	return admission.Request{AdmissionRequest: admissionv1.AdmissionRequest{
		UID:         "uid",
		Kind:        metav1.GroupVersionKind{Version: "v1", Kind: kinds[sub]},
		Resource:    metav1.GroupVersionResource{Version: "v1", Resource: "pods"},
		SubResource: sub,
		Name:        name,
		Namespace:   "agents",
		Operation:   admissionv1.Connect,
		UserInfo:    authenticationv1.UserInfo{Username: "mallory", Groups: groups},
		Object:      runtime.RawExtension{Raw: []byte(`{"kind":"` + kinds[sub] + `","apiVersion":"v1","stdin":true,"tty":true,"command":["sh"]}`)},
	}}
}

// pods is a pod lookup over a fixed set of pods' labels.
func pods(labels map[string]map[string]string) PodMetadata {
	return func(_ context.Context, namespace, name string) (*metav1.ObjectMeta, error) {
		l, ok := labels[name]
		if !ok {
			return nil, apierrors.NewNotFound(schema.GroupResource{Resource: "pods"}, name)
		}
		return &metav1.ObjectMeta{Name: name, Namespace: namespace, Labels: l}, nil
	}
}

func TestConnectDecisions(t *testing.T) {
	eng := sharedEngine(t)
	lookup := pods(map[string]map[string]string{
		"agent": {"app": "flowforge", "job-id": "a", "user-id": "u"},
		"other": {"app": "web"},
	})
	h := &ConnectHandler{Policy: eng, Namespaces: noLabels, Pods: lookup, Clock: clock.RealClock{}}
	tests := []struct {
		name        string
		handler     *ConnectHandler
		req         admission.Request
		allowed     bool
		code        int32
		msgContains []string
	}{
		{name: "exec into a labelled pod is denied", req: connectRequest("exec", "agent"), code: http.StatusForbidden,
			msgContains: []string{"FlowForge", "pods/exec", `exec into FlowForge pod "agent" is not allowed`, "interactiveAccess.exec"}},
		{name: "attach to a labelled pod is denied", req: connectRequest("attach", "agent"), code: http.StatusForbidden,
			msgContains: []string{"pods/attach", `attach to FlowForge pod "agent"`}},
		{name: "port-forward to a labelled pod is denied", req: connectRequest("portforward", "agent"), code: http.StatusForbidden,
			msgContains: []string{"pods/portforward"}},
		{name: "proxy to a labelled pod is denied", req: connectRequest("proxy", "agent"), code: http.StatusForbidden,
			msgContains: []string{"pods/proxy"}},
		{name: "exec into an unlabelled pod is not ours", req: connectRequest("exec", "other"), allowed: true},
		{name: "a pod that cannot be found fails closed", req: connectRequest("exec", "gone"), code: http.StatusInternalServerError,
			msgContains: []string{"could not check this pods/exec request, so it is denied", "not found"}},
		{name: "no pod lookup fails closed", handler: &ConnectHandler{Policy: eng, Namespaces: noLabels, Clock: clock.RealClock{}},
			req: connectRequest("exec", "agent"), code: http.StatusInternalServerError, msgContains: []string{"no pod lookup"}},
		{name: "namespace lookup fails closed", handler: &ConnectHandler{Policy: eng, Pods: lookup, Clock: clock.RealClock{},
			Namespaces: func(context.Context, string) (map[string]string, error) { return nil, errors.New("cache gone") }},
			req: connectRequest("exec", "agent"), code: http.StatusInternalServerError, msgContains: []string{"cache gone"}},
		{name: "evaluation error fails closed", handler: &ConnectHandler{Policy: brokenPolicy{eng}, Namespaces: noLabels, Pods: lookup, Clock: clock.RealClock{}},
			req: connectRequest("exec", "agent"), code: http.StatusInternalServerError, msgContains: []string{"eval timeout"}},
		{name: "create is not this webhook's", req: func() admission.Request {
			r := connectRequest("exec", "agent")
			r.Operation = admissionv1.Create
			return r
		}(), allowed: true},
		{name: "unknown operation", req: func() admission.Request {
			r := connectRequest("exec", "agent")
			r.Operation = "PROBE"
			return r
		}(), code: http.StatusBadRequest, msgContains: []string{"unsupported operation"}},
		{name: "connect to something other than a pod", req: func() admission.Request {
			r := connectRequest("proxy", "agent")
			r.Resource.Resource = "services"
			return r
		}(), code: http.StatusBadRequest, msgContains: []string{`"services/proxy"`}},
		{name: "connect without a subresource", req: connectRequest("", "agent"), code: http.StatusBadRequest, msgContains: []string{`got "pods"`}},
		{name: "connect naming no pod", req: connectRequest("exec", ""), code: http.StatusBadRequest, msgContains: []string{"names no pod"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			handler := h
			if tc.handler != nil {
				handler = tc.handler
			}
			resp := handler.Handle(context.Background(), tc.req)
			assert.Equal(t, tc.allowed, resp.Allowed)
			if tc.code != 0 {
				require.NotNil(t, resp.Result)
				assert.Equal(t, tc.code, resp.Result.Code)
				for _, m := range tc.msgContains {
					assert.Contains(t, resp.Result.Message, m)
				}
			}
		})
	}
}

func TestConnectBreakGlassGroupComesFromPolicyData(t *testing.T) {
	dir := policyDirWith(t, "    interactiveAccess:\n      exec: deny\n      attach: deny\n      portforward: deny\n      proxy: deny\n      allowedGroups: [flowforge:sre]\n")
	eng, err := engine.New(context.Background(), engine.Options{Dir: dir})
	require.NoError(t, err)
	h := &ConnectHandler{Policy: eng, Namespaces: noLabels, Clock: clock.RealClock{},
		Pods: pods(map[string]map[string]string{"agent": {"app": "flowforge"}})}
	assert.True(t, h.Handle(context.Background(), connectRequest("exec", "agent", "flowforge:sre")).Allowed, "the break-glass group may exec")
	assert.False(t, h.Handle(context.Background(), connectRequest("exec", "agent", "developers")).Allowed)
	assert.True(t, h.Handle(context.Background(), connectRequest("portforward", "agent", "system:authenticated", "flowforge:sre")).Allowed)
	assert.False(t, h.Handle(context.Background(), connectRequest("attach", "agent")).Allowed)
}

func TestConnectDenialsAreCountedButNotDryRuns(t *testing.T) {
	h := &ConnectHandler{Policy: sharedEngine(t), Namespaces: noLabels, Clock: clock.RealClock{},
		Pods: pods(map[string]map[string]string{"agent": {"app": "flowforge"}})}
	counter := metrics.Denials.WithLabelValues(ConnectName)
	before := testutil.ToFloat64(counter)
	req := connectRequest("exec", "agent")
	req.DryRun = ptr.To(true)
	assert.False(t, h.Handle(context.Background(), req).Allowed)
	assert.Equal(t, before, testutil.ToFloat64(counter))
	assert.False(t, h.Handle(context.Background(), connectRequest("exec", "agent")).Allowed)
	assert.Equal(t, before+1, testutil.ToFloat64(counter))
}

func TestClientPodMetadata(t *testing.T) {
	c := fake.NewClientBuilder().WithObjects(&corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "agent", Namespace: "agents", Labels: map[string]string{"app": "flowforge"}}}).Build()
	lookup := ClientPodMetadata(c)
	meta, err := lookup(context.Background(), "agents", "agent")
	require.NoError(t, err)
	assert.Equal(t, "flowforge", meta.Labels["app"])
	_, err = lookup(context.Background(), "agents", "gone")
	require.Error(t, err)
	assert.True(t, apierrors.IsNotFound(errors.Unwrap(err)), "%v", err)
}

// policyDirWith copies the embedded policies into a temporary directory,
// replacing data.yaml's interactiveAccess block with block.
func policyDirWith(t *testing.T, block string) string {
	t.Helper()
	dir := t.TempDir()
	require.NoError(t, os.CopyFS(dir, policies.Embedded()))
	path := filepath.Join(dir, "data.yaml")
	data, err := os.ReadFile(path)
	require.NoError(t, err)
	re := regexp.MustCompile(`(?m)^    interactiveAccess:\n(      .*\n)+`)
	require.True(t, re.Match(data), "data.yaml has an interactiveAccess block")
	require.NoError(t, os.WriteFile(path, re.ReplaceAll(data, []byte(block)), 0o644))
	return dir
}
