package webhook_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/go-logr/logr"
	admissionv1 "k8s.io/api/admission/v1"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	"github.com/flowforge/flowforge/webhook"
)

const review = `{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"1","kind":{"group":"batch","version":"v1","kind":"Job"},"resource":{"group":"batch","version":"v1","resource":"jobs"},"operation":"CREATE","object":{"metadata":{"labels":{"app":"flowforge"}}}}}`

// FuzzDecode posts arbitrary bodies to the decoding front of a webhook:
// the guard and controller-runtime's AdmissionReview decoding. The answer
// is always an HTTP error with a message or a well-formed AdmissionReview
// with a response, never a panic. The handlers behind it (object decoding
// and policy) are fuzzed in the mutate and validate packages.
func FuzzDecode(f *testing.F) {
	f.Add(review)
	f.Add(strings.Replace(review, `"CREATE"`, `"UPDATE"`, 1))
	f.Add(`{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":null}`)
	f.Add(`{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"object":"x"}}`)
	f.Add(`{"apiVersion":"admission.k8s.io/v1beta1","kind":"AdmissionReview"}`)
	f.Add(`{`)
	var seen admission.Request
	h := webhook.Guard(webhook.DefaultMaxRequestBytes, &admission.Webhook{LogConstructor: func(logr.Logger, *admission.Request) logr.Logger { return logr.Discard() }, Handler: admission.HandlerFunc(func(_ context.Context, req admission.Request) admission.Response {
		seen = req
		return admission.Allowed("")
	})})
	f.Fuzz(func(t *testing.T, body string) {
		req := httptest.NewRequest(http.MethodPost, "/", strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		switch rec.Code {
		case http.StatusBadRequest, http.StatusRequestEntityTooLarge:
			if strings.TrimSpace(rec.Body.String()) == "" {
				t.Fatal("an error without a message")
			}
		case http.StatusOK:
			var ar admissionv1.AdmissionReview
			if err := json.Unmarshal(rec.Body.Bytes(), &ar); err != nil || ar.Response == nil {
				t.Fatalf("not an AdmissionReview with a response: %v: %s", err, rec.Body.String())
			}
		default:
			t.Fatalf("unexpected status %d", rec.Code)
		}
		_ = seen
	})
}
