package webhook

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"

	"golang.org/x/sync/semaphore"
	admissionv1 "k8s.io/api/admission/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/flowforge/flowforge/internal/metrics"
	"github.com/flowforge/flowforge/policies"
)

// DefaultMaxRequestBytes caps an admission request body. An AdmissionReview
// holds at most two objects (object and oldObject) of the API server's
// 3 MiB each, plus a little.
const DefaultMaxRequestBytes = 7 << 20

// DefaultInFlightBytes is the default budget of request bytes being
// served at once: 8 requests for objects at the default limits
// (limits.objectBytes, 512 KiB), which the measured worst case keeps under
// the webhook's 256 Mi (docs/performance.md), or 64 ordinary requests.
const DefaultInFlightBytes = 4 << 20

// DefaultInFlightWait is how long a request waits for room in the budget
// before it is refused: well under the webhooks' timeoutSeconds (10), so a
// burst of Jobs queues briefly instead of failing.
const DefaultInFlightWait = 2 * time.Second

// minRequestWeight is what a request counts for at least: a small body
// still costs its decode, the policy's input and its evaluation.
const minRequestWeight = 64 << 10

// InFlight bounds the admission work being served at once, across every
// webhook path of a server, by the bytes of the request bodies: the memory
// a request costs grows with its size (decode, policy input, patch). A
// request waits, first come first served, up to the wait for room; after
// it, it is refused (HTTP 429) rather than queued without bound.
type InFlight struct {
	budget int64
	wait   time.Duration
	sem    *semaphore.Weighted
}

// NewInFlight returns a budget of budget bytes (at least one request's
// minimum weight) and a wait (0: refuse at once when it is full).
func NewInFlight(budget int64, wait time.Duration) *InFlight {
	budget = max(budget, minRequestWeight)
	return &InFlight{budget: budget, wait: wait, sem: semaphore.NewWeighted(budget)}
}

// Cap is the budget in bytes.
func (f *InFlight) Cap() int64 { return f.budget }

// weight is what a request of contentLength bytes counts for (the largest
// body allowed when its length is unknown).
func (f *InFlight) weight(contentLength, maxBytes int64) int64 {
	if contentLength <= 0 {
		contentLength = maxBytes
	}
	return min(max(contentLength, minRequestWeight), f.budget)
}

// acquire takes room for n bytes, waiting up to the wait.
func (f *InFlight) acquire(ctx context.Context, n int64) bool {
	if !f.sem.TryAcquire(n) {
		if f.wait <= 0 {
			return false
		}
		ctx, cancel := context.WithTimeout(ctx, f.wait)
		defer cancel()
		if f.sem.Acquire(ctx, n) != nil {
			return false
		}
	}
	metrics.AdmissionsInFlight.Inc()
	return true
}

func (f *InFlight) release(n int64) {
	f.sem.Release(n)
	metrics.AdmissionsInFlight.Dec()
}

// GuardOptions configure NewGuard.
type GuardOptions struct {
	// MaxBytes caps the request body (DefaultMaxRequestBytes if 0).
	MaxBytes int64
	// InFlight, shared by the guards of a server, caps the requests in
	// flight; nil is no cap.
	InFlight *InFlight
	// Limits returns the limits of the policy being served; nil checks no
	// shape.
	Limits func() policies.Limits
	// Path labels the rejection metrics.
	Path string
}

// Guard is NewGuard with only a cap of the body's size.
func Guard(maxBytes int64, next http.Handler) http.Handler {
	return NewGuard(GuardOptions{MaxBytes: maxBytes}, next)
}

// NewGuard checks what controller-runtime's webhook does not, in this
// order, each before anything costlier:
//   - that the request fits in the in-flight budget (bytes of the bodies
//     being served), waiting briefly for room: after the wait the answer
//     is an HTTP 429, without reading the body. The API server counts it
//     as a failed call: with failurePolicy Fail the object is refused,
//     with a message that says why;
//   - that the body is an admission.k8s.io/v1 AdmissionReview, within the
//     size cap. Anything else gets an HTTP 400 (or 413) with a message that
//     says what is wrong, before any decoding into Kubernetes types;
//   - that its object and oldObject are within the policy's limits
//     (CheckShape), counted in one pass over the body that allocates in
//     proportion to the number of containers. An object over a limit is
//     denied (an AdmissionReview with allowed false, code 422) naming the
//     field and the limit, before it is decoded and long before the policy
//     sees it.
func NewGuard(opts GuardOptions, next http.Handler) http.Handler {
	maxBytes := opts.MaxBytes
	if maxBytes == 0 {
		maxBytes = DefaultMaxRequestBytes
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost {
			http.Error(w, "admission requests are POSTed", http.StatusMethodNotAllowed)
			return
		}
		if opts.InFlight != nil {
			n := opts.InFlight.weight(r.ContentLength, maxBytes)
			if !opts.InFlight.acquire(r.Context(), n) {
				metrics.AdmissionRejections.WithLabelValues(opts.Path, metrics.RejectInFlight).Inc()
				writeStatus(w, http.StatusTooManyRequests, metav1.StatusReasonTooManyRequests,
					fmt.Sprintf("FlowForge's webhook is serving its budget of %d request bytes at once and had no room for this one within %s: retry", opts.InFlight.Cap(), opts.InFlight.wait))
				return
			}
			defer opts.InFlight.release(n)
		}
		body, err := readBody(w, r, maxBytes)
		if err != nil {
			var tooLarge *http.MaxBytesError
			if errors.As(err, &tooLarge) {
				metrics.AdmissionRejections.WithLabelValues(opts.Path, metrics.RejectTooLarge).Inc()
				http.Error(w, fmt.Sprintf("request entity is too large; limit is %d bytes", maxBytes), http.StatusRequestEntityTooLarge)
				return
			}
			http.Error(w, "unable to read the request body: "+err.Error(), http.StatusBadRequest)
			return
		}
		if len(body) == 0 {
			http.Error(w, "request body is empty", http.StatusBadRequest)
			return
		}
		var review struct {
			APIVersion string `json:"apiVersion"`
			Kind       string `json:"kind"`
			Request    *struct {
				UID       types.UID   `json:"uid"`
				Object    shapeObject `json:"object"`
				OldObject shapeObject `json:"oldObject"`
			} `json:"request"`
		}
		if err := json.Unmarshal(body, &review); err != nil {
			var typeErr *json.UnmarshalTypeError
			if !errors.As(err, &typeErr) {
				http.Error(w, "the body is not JSON: "+err.Error(), http.StatusBadRequest)
				return
			}
			// A field of the review of the wrong type: controller-runtime's
			// decoding answers it.
			review.Request = nil
		}
		if review.Kind != "AdmissionReview" || review.APIVersion != "admission.k8s.io/v1" {
			http.Error(w, fmt.Sprintf("expected an admission.k8s.io/v1 AdmissionReview, got %q %q", review.APIVersion, review.Kind), http.StatusBadRequest)
			return
		}
		if req := review.Request; req != nil && opts.Limits != nil {
			limits := opts.Limits()
			for _, o := range []struct {
				name string
				obj  *shapeObject
			}{{"object", &req.Object}, {"oldObject", &req.OldObject}} {
				if o.obj.err != nil {
					metrics.AdmissionRejections.WithLabelValues(opts.Path, metrics.RejectMalformed).Inc()
					writeReview(w, req.UID, http.StatusBadRequest, metav1.StatusReasonBadRequest, fmt.Sprintf("the request's %s is malformed: %v", o.name, o.obj.err))
					return
				}
				if err := checkShape(o.name, o.obj, limits); err != nil {
					metrics.AdmissionRejections.WithLabelValues(opts.Path, metrics.RejectLimit).Inc()
					writeReview(w, req.UID, http.StatusUnprocessableEntity, metav1.StatusReasonInvalid, "FlowForge refuses this object: "+err.Error())
					return
				}
			}
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
		next.ServeHTTP(w, r)
	})
}

// readBody reads the request body, at most maxBytes, into a buffer of
// the size the request announces (io.ReadAll's growth would allocate about
// twice the body).
func readBody(w http.ResponseWriter, r *http.Request, maxBytes int64) ([]byte, error) {
	body := http.MaxBytesReader(w, r.Body, maxBytes)
	if r.ContentLength <= 0 || r.ContentLength > maxBytes {
		return io.ReadAll(body)
	}
	buf := make([]byte, r.ContentLength)
	if _, err := io.ReadFull(body, buf); err != nil {
		return nil, err
	}
	return buf, nil
}

// writeStatus answers with an HTTP error whose body is a metav1.Status, as
// the API server's client reads it: the message reaches the user.
func writeStatus(w http.ResponseWriter, code int, reason metav1.StatusReason, msg string) {
	status := metav1.Status{
		TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Status"},
		Status:   metav1.StatusFailure, Code: int32(code), Reason: reason, Message: msg,
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(status)
}

// writeReview answers with an AdmissionReview that refuses the request.
func writeReview(w http.ResponseWriter, uid types.UID, code int32, reason metav1.StatusReason, msg string) {
	out := admissionv1.AdmissionReview{
		TypeMeta: metav1.TypeMeta{APIVersion: "admission.k8s.io/v1", Kind: "AdmissionReview"},
		Response: &admissionv1.AdmissionResponse{
			UID:     uid,
			Allowed: false,
			Result:  &metav1.Status{Status: metav1.StatusFailure, Code: code, Reason: reason, Message: msg},
		},
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(out)
}
