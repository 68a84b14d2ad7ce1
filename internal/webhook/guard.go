package webhook

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
)

// DefaultMaxRequestBytes caps an admission request body. An AdmissionReview
// holds at most two objects (object and oldObject) of the API server's
// 3 MiB each, plus a little.
const DefaultMaxRequestBytes = 7 << 20

// Guard checks what controller-runtime's webhook does not: that the body
// is an admission.k8s.io/v1 AdmissionReview, within the size cap. Anything
// else gets an HTTP 400 (or 413) with a message that says what is wrong,
// before any decoding into Kubernetes types.
func Guard(maxBytes int64, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost {
			http.Error(w, "admission requests are POSTed", http.StatusMethodNotAllowed)
			return
		}
		body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBytes))
		if err != nil {
			var tooLarge *http.MaxBytesError
			if errors.As(err, &tooLarge) {
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
		var head struct {
			APIVersion string `json:"apiVersion"`
			Kind       string `json:"kind"`
		}
		if err := json.Unmarshal(body, &head); err != nil {
			http.Error(w, "the body is not JSON: "+err.Error(), http.StatusBadRequest)
			return
		}
		if head.Kind != "AdmissionReview" || head.APIVersion != "admission.k8s.io/v1" {
			http.Error(w, fmt.Sprintf("expected an admission.k8s.io/v1 AdmissionReview, got %q %q", head.APIVersion, head.Kind), http.StatusBadRequest)
			return
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
		next.ServeHTTP(w, r)
	})
}
