package chaos

import (
	"errors"
	"io"
	"net"
	"strings"
	"syscall"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	utilnet "k8s.io/apimachinery/pkg/util/net"
)

// Class is what a create's answer means for the fault run.
type Class int

const (
	// Admitted: the Job was created (or an earlier attempt of the same
	// create had created it: AlreadyExists on a retry).
	Admitted Class = iota
	// PolicyDenied: a FlowForge webhook answered, and said no.
	PolicyDenied
	// AdmissionFailed: the API server could not get an answer from a
	// webhook (connection refused or reset, TLS failure, timeout, a
	// refusal for load); with failurePolicy Fail the Job is refused. This
	// is what the fault run must never see.
	AdmissionFailed
	// APIUnavailable: the request did not reach admission (the API server
	// is down or shutting down, a connection was lost); the stream
	// retries it with the same name.
	APIUnavailable
	// Exists: AlreadyExists on a first attempt (a stale name: a bug).
	Exists
	// Other: anything else, final.
	Other
)

var classNames = [...]string{"admitted", "policy-denied", "admission-failed", "apiserver-unavailable", "exists", "other"}

func (c Class) String() string {
	if int(c) < len(classNames) {
		return classNames[c]
	}
	return "unknown"
}

// Classify sorts a create's error. The webhook cases come first: the API
// server reports a failed webhook call as an internal error (500), which
// must not be mistaken for the API server's own trouble.
func Classify(err error) Class {
	if err == nil {
		return Admitted
	}
	msg := err.Error()
	switch {
	case strings.Contains(msg, "admission webhook \"") && strings.Contains(msg, "denied the request"):
		return PolicyDenied
	case strings.Contains(msg, "failed calling webhook"), strings.Contains(msg, "failed to call webhook"):
		return AdmissionFailed
	case apierrors.IsAlreadyExists(err):
		return Exists
	case apiUnavailable(err):
		return APIUnavailable
	}
	return Other
}

func apiUnavailable(err error) bool {
	if apierrors.IsServiceUnavailable(err) || apierrors.IsServerTimeout(err) || apierrors.IsTimeout(err) || apierrors.IsTooManyRequests(err) {
		return true
	}
	if errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.ECONNRESET) || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return true
	}
	if utilnet.IsConnectionRefused(err) || utilnet.IsConnectionReset(err) || utilnet.IsProbableEOF(err) || utilnet.IsHTTP2ConnectionLost(err) {
		return true
	}
	var opErr *net.OpError
	if errors.As(err, &opErr) {
		return true
	}
	msg := err.Error()
	for _, s := range []string{"apiserver is shutting down", "connection refused", "http2: server sent GOAWAY", "TLS handshake timeout", "client connection lost"} {
		if strings.Contains(msg, s) {
			return true
		}
	}
	return false
}
