package jobs

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"syscall"
	"testing"
	"time"

	"github.com/flowforge/flowforge/test/testjobs"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	batchv1 "k8s.io/api/batch/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"
)

var (
	jobsGR = schema.GroupResource{Group: "batch", Resource: "jobs"}
	jobsGK = schema.GroupKind{Group: "batch", Kind: "Job"}
)

type timeoutErr struct{}

func (timeoutErr) Error() string   { return "i/o timeout" }
func (timeoutErr) Timeout() bool   { return true }
func (timeoutErr) Temporary() bool { return true }

func TestIsTransient(t *testing.T) {
	refused := &url.Error{Op: "Get", URL: "https://127.0.0.1:1/api", Err: &net.OpError{Op: "dial", Net: "tcp", Err: os.NewSyscallError("connect", syscall.ECONNREFUSED)}}
	for _, tc := range []struct {
		name string
		err  error
		want bool
	}{
		{"nil", nil, false},
		{"429 too many requests", apierrors.NewTooManyRequests("slow down", 1), true},
		{"500 internal error", apierrors.NewInternalError(errors.New("etcd hiccup")), true},
		{"503 service unavailable", apierrors.NewServiceUnavailable("starting"), true},
		{"server timeout", apierrors.NewServerTimeout(jobsGR, "create", 1), true},
		{"504 gateway timeout", apierrors.NewTimeoutError("timed out", 1), true},
		{"502 from a proxy", apierrors.NewGenericServerResponse(502, "get", jobsGR, "x", "bad gateway", 0, true), true},
		{"unexpected server response", apierrors.NewGenericServerResponse(418, "get", jobsGR, "x", "<html>", 0, true), true},
		{"net timeout", &url.Error{Op: "Get", URL: "https://x", Err: timeoutErr{}}, true},
		{"deadline of one attempt", fmt.Errorf("get: %w", context.DeadlineExceeded), true},
		{"connection refused", refused, true},
		{"connection reset", fmt.Errorf("read: %w", syscall.ECONNRESET), true},
		{"EOF", fmt.Errorf("watch: %w", io.EOF), true},
		{"unexpected EOF", io.ErrUnexpectedEOF, true},
		{"temporary DNS failure", &net.DNSError{Err: "server misbehaving", Name: "api", IsTemporary: true}, true},
		{"cancelled", context.Canceled, false},
		{"not found", apierrors.NewNotFound(jobsGR, "x"), false},
		{"forbidden", apierrors.NewForbidden(jobsGR, "x", errors.New("RBAC")), false},
		{"unauthorized", apierrors.NewUnauthorized("who are you"), false},
		{"invalid", apierrors.NewInvalid(jobsGK, "x", nil), false},
		{"conflict", apierrors.NewConflict(jobsGR, "x", errors.New("changed")), false},
		{"already exists", apierrors.NewAlreadyExists(jobsGR, "x"), false},
		{"bad request", apierrors.NewBadRequest("no"), false},
		{"admission denial", apierrors.NewForbidden(jobsGR, "x", errors.New(`admission webhook "jobs.validate.flowforge.io" denied the request`)), false},
		{"unknown host", &net.DNSError{Err: "no such host", Name: "nowhere", IsNotFound: true}, false},
		{"plain error", errors.New("x509: certificate signed by unknown authority"), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			assert.Equal(t, tc.want, IsTransient(tc.err))
			if tc.err != nil {
				assert.Equal(t, tc.want, IsTransient(fmt.Errorf("wrapped: %w", tc.err)), "wrapping does not change the class")
			}
		})
	}
}

// failGets makes the first len(errs) gets of jobs fail with errs, in order.
// failGets fails the first reads of Jobs (Get finds a Job by listing its
// job-id label) with errs, in order.
func failGets(cs *fake.Clientset, errs ...error) *int {
	calls := 0
	cs.PrependReactor("list", "jobs", func(k8stesting.Action) (bool, runtime.Object, error) {
		calls++
		if calls <= len(errs) {
			return true, nil, errs[calls-1]
		}
		return false, nil, nil
	})
	return &calls
}

func existingJob(id string) *batchv1.Job {
	return testjobs.MakeAgentJob(id, testNS).UID("uid-" + id).Obj()
}

func TestRetries(t *testing.T) {
	t.Run("429 and 500 are retried until success", func(t *testing.T) {
		cs := fake.NewClientset(existingJob("a"))
		calls := failGets(cs, apierrors.NewTooManyRequests("slow down", 0), apierrors.NewInternalError(errors.New("boom")))
		job, err := newTestClient(t, cs).Get(context.Background(), "a")
		require.NoError(t, err)
		assert.Equal(t, "claude-job-a", job.Name)
		assert.Equal(t, 3, *calls)
	})
	t.Run("a Retry-After hint is honoured within the cap", func(t *testing.T) {
		cs := fake.NewClientset(existingJob("a"))
		calls := failGets(cs, apierrors.NewTooManyRequests("slow down", 30))
		_, err := newTestClient(t, cs).Get(context.Background(), "a")
		require.NoError(t, err)
		assert.Equal(t, 2, *calls)
	})
	t.Run("403 is not retried", func(t *testing.T) {
		cs := fake.NewClientset(existingJob("a"))
		calls := failGets(cs, apierrors.NewForbidden(jobsGR, "claude-job-a", errors.New("RBAC says no")))
		_, err := newTestClient(t, cs).Get(context.Background(), "a")
		require.Error(t, err)
		assert.True(t, apierrors.IsForbidden(err), "the API error stays in the chain")
		assert.Contains(t, err.Error(), `find job "a" in namespace jobs-test`)
		assert.Equal(t, 1, *calls)
	})
	t.Run("attempts are bounded and the error names the server", func(t *testing.T) {
		cs := fake.NewClientset()
		unavailable := apierrors.NewServiceUnavailable("down")
		calls := failGets(cs, unavailable, unavailable, unavailable, unavailable, unavailable, unavailable)
		_, err := newTestClient(t, cs).Get(context.Background(), "a")
		require.Error(t, err)
		assert.Equal(t, 4, *calls, "Backoff.Steps attempts")
		assert.Contains(t, err.Error(), "gave up after 4 attempts against the API server at https://apiserver.test:6443")
		assert.True(t, apierrors.IsServiceUnavailable(err))
	})
	t.Run("the caller's context stops the retries", func(t *testing.T) {
		cs := fake.NewClientset()
		ctx, cancel := context.WithCancel(context.Background())
		cs.PrependReactor("list", "jobs", func(k8stesting.Action) (bool, runtime.Object, error) {
			cancel()
			return true, nil, apierrors.NewServiceUnavailable("down")
		})
		_, err := newTestClient(t, cs).Get(ctx, "a")
		require.ErrorIs(t, err, context.Canceled)
		assert.Contains(t, err.Error(), "down", "the last error is kept")
	})
	t.Run("a cancelled context during the backoff", func(t *testing.T) {
		cs := fake.NewClientset()
		ctx, cancel := context.WithCancel(context.Background())
		c := newTestClient(t, cs, func(o *Options) { o.Backoff.Duration, o.Backoff.Cap = time.Hour, time.Hour })
		failGets(cs, apierrors.NewServiceUnavailable("down"))
		go cancel()
		_, err := c.Get(ctx, "a")
		require.ErrorIs(t, err, context.Canceled)
	})
}
