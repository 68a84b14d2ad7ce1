package webhook

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	admissionv1 "k8s.io/api/admission/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/flowforge/flowforge/internal/metrics"
	"github.com/flowforge/flowforge/policies"
)

func reviewOf(object, oldObject string) string {
	return fmt.Sprintf(`{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"u-1","kind":{"group":"batch","version":"v1","kind":"Job"},"operation":"UPDATE","object":%s,"oldObject":%s}}`, object, oldObject)
}

func post(h http.Handler, body string) *httptest.ResponseRecorder {
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/", strings.NewReader(body)))
	return rec
}

// TestGuardRefusesObjectsOverTheLimits: an object or oldObject over a
// limit is denied in an AdmissionReview naming the field and the limit;
// the handler behind never sees it.
func TestGuardRefusesObjectsOverTheLimits(t *testing.T) {
	limits := servedLimits(t)
	small := `{"apiVersion":"batch/v1","kind":"Job","metadata":{"name":"j"}}`
	c := container(0)
	c["env"] = entries(limits.EnvPerContainer+1, envVar)
	big := string(mustJSON(t, job(func(_, pod map[string]any) { pod["containers"] = []any{c} })))
	const path = "/test-guard-limits"
	tests := []struct {
		name, body string
		reached    bool
		code       int32
		msg        string
		reason     string
	}{
		{name: "within the limits", body: reviewOf(small, small), reached: true},
		{name: "no object (a DELETE)", body: reviewOf("null", small), reached: true},
		{name: "object over a limit", body: reviewOf(big, small), code: http.StatusUnprocessableEntity, reason: metrics.RejectLimit,
			msg: fmt.Sprintf("FlowForge refuses this object: object.spec.template.spec.containers[0].env has %d entries, over the limit of %d (limits.envPerContainer", limits.EnvPerContainer+1, limits.EnvPerContainer)},
		{name: "oldObject over a limit", body: reviewOf(small, big), code: http.StatusUnprocessableEntity, reason: metrics.RejectLimit,
			msg: "oldObject.spec.template.spec.containers[0].env has"},
		{name: "a malformed object", body: reviewOf(`{"spec":{"template":{"spec":{"containers":"x"}}}}`, small), code: http.StatusBadRequest, reason: metrics.RejectMalformed,
			msg: "the request's object is malformed"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			reached := false
			h := NewGuard(GuardOptions{Limits: func() policies.Limits { return limits }, Path: path}, http.HandlerFunc(func(http.ResponseWriter, *http.Request) { reached = true }))
			var before float64
			if tc.reason != "" {
				before = testutil.ToFloat64(metrics.AdmissionRejections.WithLabelValues(path, tc.reason))
			}
			rec := post(h, tc.body)
			require.Equal(t, tc.reached, reached)
			if tc.reached {
				return
			}
			require.Equal(t, http.StatusOK, rec.Code)
			var out admissionv1.AdmissionReview
			require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &out))
			require.Equal(t, "AdmissionReview", out.Kind)
			require.Equal(t, "admission.k8s.io/v1", out.APIVersion)
			require.NotNil(t, out.Response)
			require.EqualValues(t, "u-1", out.Response.UID)
			require.False(t, out.Response.Allowed)
			require.Equal(t, tc.code, out.Response.Result.Code)
			require.Contains(t, out.Response.Result.Message, tc.msg)
			require.Equal(t, before+1, testutil.ToFloat64(metrics.AdmissionRejections.WithLabelValues(path, tc.reason)))
		})
	}
}

// TestGuardCapsRequestsInFlight: the budget counts request bytes (at
// least minRequestWeight each). With it full and no wait, one more request
// is refused at once with HTTP 429 and a message; with a wait, it enters as
// soon as one is answered. No clocks: the handler is held by a channel, and
// the wait is far longer than the test.
func TestGuardCapsRequestsInFlight(t *testing.T) {
	const held = 3
	const path = "/test-guard-in-flight"
	entered, release := make(chan struct{}), make(chan struct{})
	handler := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		entered <- struct{}{}
		<-release
		w.WriteHeader(http.StatusOK)
	})
	refusing := NewInFlight(held*minRequestWeight, 0)
	require.EqualValues(t, held*minRequestWeight, refusing.Cap())
	h := NewGuard(GuardOptions{InFlight: refusing, Path: path}, handler)
	body := reviewOf("null", "null")
	gauge := testutil.ToFloat64(metrics.AdmissionsInFlight)
	var wg sync.WaitGroup
	codes := make(chan int, held+1)
	for range held {
		wg.Add(1)
		go func() {
			defer wg.Done()
			codes <- post(h, body).Code
		}()
		<-entered
	}
	require.Equal(t, gauge+held, testutil.ToFloat64(metrics.AdmissionsInFlight))

	rejected := testutil.ToFloat64(metrics.AdmissionRejections.WithLabelValues(path, metrics.RejectInFlight))
	rec := post(h, body) // returns without entering the handler, or the test would block
	require.Equal(t, http.StatusTooManyRequests, rec.Code)
	require.Empty(t, rec.Header().Get("Retry-After"), "the API server's client would retry within the webhook's timeout")
	var status metav1.Status
	require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &status))
	require.Equal(t, metav1.StatusReasonTooManyRequests, status.Reason)
	require.EqualValues(t, http.StatusTooManyRequests, status.Code)
	require.Contains(t, status.Message, "budget of 196608 request bytes at once and had no room for this one")
	require.Equal(t, rejected+1, testutil.ToFloat64(metrics.AdmissionRejections.WithLabelValues(path, metrics.RejectInFlight)))

	release <- struct{}{}
	require.Equal(t, http.StatusOK, <-codes)
	wg.Add(1)
	go func() {
		defer wg.Done()
		codes <- post(h, body).Code
	}()
	<-entered // room was free again
	close(release)
	wg.Wait()
	for range held {
		require.Equal(t, http.StatusOK, <-codes)
	}
	require.Equal(t, gauge, testutil.ToFloat64(metrics.AdmissionsInFlight), "every request released its room")
}

// TestGuardQueuesWithinTheWait: a request that finds the budget full waits
// for room rather than failing a burst.
func TestGuardQueuesWithinTheWait(t *testing.T) {
	entered, release := make(chan struct{}), make(chan struct{})
	h := NewGuard(GuardOptions{InFlight: NewInFlight(minRequestWeight, time.Hour), Path: "/test-guard-queue"}, http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		entered <- struct{}{}
		<-release
		w.WriteHeader(http.StatusOK)
	}))
	body := reviewOf("null", "null")
	codes := make(chan int, 2)
	go func() { codes <- post(h, body).Code }()
	<-entered
	go func() { codes <- post(h, body).Code }() // waits: the budget holds one
	release <- struct{}{}
	require.Equal(t, http.StatusOK, <-codes)
	<-entered // the waiting one got the room
	release <- struct{}{}
	require.Equal(t, http.StatusOK, <-codes)
}

func TestInFlightWeights(t *testing.T) {
	f := NewInFlight(1<<20, 0)
	assert.EqualValues(t, minRequestWeight, f.weight(10, 7<<20), "a small body counts for the minimum")
	assert.EqualValues(t, 300<<10, f.weight(300<<10, 7<<20), "a larger one for its size")
	assert.EqualValues(t, 1<<20, f.weight(-1, 7<<20), "an unknown length for the largest allowed, within the budget")
	assert.EqualValues(t, minRequestWeight, NewInFlight(0, 0).Cap(), "room for one request at least")
}
