package jobs

import (
	"errors"
	"fmt"
)

// NotFoundError says that a job id has no Job in a namespace. It wraps
// ErrNotFound and, when there is one, the API server's error (so that
// apierrors.IsNotFound holds too), and names the job once:
// `job "x" not found in namespace flowforge-jobs`.
type NotFoundError struct {
	ID        string
	Namespace string
	// Cause is the API server's error, if any.
	Cause error
}

func (e *NotFoundError) Error() string {
	return fmt.Sprintf("job %q not found in namespace %s", e.ID, e.Namespace)
}

// Is makes errors.Is(err, ErrNotFound) hold.
func (e *NotFoundError) Is(target error) bool { return target == ErrNotFound }

// Unwrap returns the API server's error.
func (e *NotFoundError) Unwrap() error { return e.Cause }

// AsNotFound returns the NotFoundError in err's chain, if any.
func AsNotFound(err error) (*NotFoundError, bool) {
	var nf *NotFoundError
	ok := errors.As(err, &nf)
	return nf, ok
}
