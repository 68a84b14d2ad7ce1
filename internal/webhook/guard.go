package webhook

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"runtime"

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

// DefaultMaxInFlight is the default cap of admissions in flight: enough to
// keep every CPU busy while some requests wait on the namespace cache, few
// enough that as many requests for objects at the limits fit in the
// webhook's memory (docs/performance.md).
func DefaultMaxInFlight() int { return 4 * runtime.GOMAXPROCS(0) }

// InFlight caps the admission requests being served at once, across every
// webhook path of a server. A request beyond the cap is refused at once
// (HTTP 429), never queued.
type InFlight struct {
	slots chan struct{}
}

// NewInFlight returns a cap of n requests (at least 1).
func NewInFlight(n int) *InFlight {
	return &InFlight{slots: make(chan struct{}, max(n, 1))}
}

// Cap is the number of requests that may be in flight.
func (f *InFlight) Cap() int { return cap(f.slots) }

// tryAcquire takes a slot if one is free.
func (f *InFlight) tryAcquire() bool {
	select {
	case f.slots <- struct{}{}:
		metrics.AdmissionsInFlight.Inc()
		return true
	default:
		return false
	}
}

func (f *InFlight) release() {
	<-f.slots
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
//   - that fewer than the cap of requests are in flight: beyond it the
//     answer is an HTTP 429 at once, without reading the body. The API
//     server counts it as a failed call: with failurePolicy Fail the
//     object is refused, with a message that says why;
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
			if !opts.InFlight.tryAcquire() {
				metrics.AdmissionRejections.WithLabelValues(opts.Path, metrics.RejectInFlight).Inc()
				writeStatus(w, http.StatusTooManyRequests, metav1.StatusReasonTooManyRequests,
					fmt.Sprintf("FlowForge's webhook is answering its cap of %d admission requests at once; this one is refused rather than queued: retry", opts.InFlight.Cap()))
				return
			}
			defer opts.InFlight.release()
		}
		body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBytes))
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
