package jobs

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"syscall"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	utilnet "k8s.io/apimachinery/pkg/util/net"
)

// IsTransient reports whether an API call that failed with err may succeed
// if it is tried again unchanged.
//
// Transient: a timeout (a net.Error that timed out, or the deadline of one
// attempt; the retry loop checks the caller's own context separately), 429
// Too Many Requests, 5xx answers (internal error, service unavailable,
// server timeout, gateway timeout, or any other 5xx status), a response
// that was not from the API server at all, and a connection that was
// refused, reset or cut (EOF).
//
// Permanent: everything else, notably NotFound, Forbidden, Unauthorized,
// Invalid, BadRequest, Conflict and AlreadyExists, admission denials, TLS
// and DNS errors, and a cancelled context.
func IsTransient(err error) bool {
	if err == nil || errors.Is(err, context.Canceled) {
		return false
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return true
	}
	var status apierrors.APIStatus
	if errors.As(err, &status) {
		code := status.Status().Code
		return apierrors.IsTooManyRequests(err) ||
			apierrors.IsInternalError(err) ||
			apierrors.IsServiceUnavailable(err) ||
			apierrors.IsServerTimeout(err) ||
			apierrors.IsTimeout(err) ||
			apierrors.IsUnexpectedServerError(err) ||
			code >= http.StatusInternalServerError
	}
	var dnsErr *net.DNSError
	if errors.As(err, &dnsErr) {
		return dnsErr.IsTimeout || dnsErr.IsTemporary
	}
	return utilnet.IsTimeout(err) ||
		errors.Is(err, syscall.ECONNREFUSED) ||
		errors.Is(err, syscall.ECONNRESET) ||
		errors.Is(err, syscall.EPIPE) ||
		errors.Is(err, io.EOF) ||
		errors.Is(err, io.ErrUnexpectedEOF) ||
		utilnet.IsConnectionRefused(err) ||
		utilnet.IsConnectionReset(err) ||
		utilnet.IsProbableEOF(err) ||
		utilnet.IsHTTP2ConnectionLost(err)
}

// isExpired reports whether a watch's resource version is too old (410).
func isExpired(err error) bool {
	return apierrors.IsResourceExpired(err) || apierrors.IsGone(err)
}

// maxRetryAfter bounds a server's Retry-After when Backoff has no Cap.
const maxRetryAfter = 30 * time.Second

// call runs one API call with the client's retry policy: each attempt is
// bounded by RequestTimeout; a transient error is retried after a backoff
// with jitter (longer if the server asked for it with Retry-After), up to
// Backoff.Steps attempts; a permanent error and the end of ctx stop at once.
// what names the call in errors ("get job claude-job-x").
func (c *Client) call(ctx context.Context, what string, fn func(context.Context) error) error {
	backoff := c.opts.Backoff
	attempts := max(backoff.Steps, 1)
	for attempt := 1; ; attempt++ {
		actx, cancel := context.WithTimeout(ctx, c.opts.RequestTimeout)
		err := fn(actx)
		cancel()
		switch {
		case err == nil:
			return nil
		case ctx.Err() != nil:
			return fmt.Errorf("%s: %w (last error: %w)", what, ctx.Err(), err)
		case !IsTransient(err):
			return fmt.Errorf("%s: %w", what, err)
		case attempt >= attempts:
			return fmt.Errorf("%s: gave up after %d attempts against %s: %w", what, attempt, c.server(), err)
		}
		delay := backoff.Step()
		if seconds, ok := apierrors.SuggestsClientDelay(err); ok {
			limit := c.opts.Backoff.Cap
			if limit <= 0 {
				limit = maxRetryAfter
			}
			delay = max(delay, min(time.Duration(seconds)*time.Second, limit))
		}
		if serr := c.sleep(ctx, delay); serr != nil {
			return fmt.Errorf("%s: %w (last error: %w)", what, serr, err)
		}
	}
}

// sleep waits for d on the client's clock, or until ctx ends.
func (c *Client) sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := c.opts.Clock.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C():
		return nil
	}
}

func (c *Client) server() string {
	if c.opts.Server == "" {
		return "the API server"
	}
	return "the API server at " + c.opts.Server
}
