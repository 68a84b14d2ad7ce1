package cli

import (
	"fmt"

	"github.com/flowforge/flowforge/history"
	"github.com/flowforge/flowforge/jobs"
)

// notFoundAnywhere says that a job id is neither in the cluster nor in the
// history, and what to try next. It matches jobs.ErrNotFound and
// history.ErrNotFound.
type notFoundAnywhere struct {
	id, namespace, program string
}

func (e *notFoundAnywhere) Error() string {
	return fmt.Sprintf("job %q not found in namespace %s or in the history; `%s list` and `%s history` show the jobs there are, -n another namespace",
		e.id, e.namespace, e.program, e.program)
}

func (e *notFoundAnywhere) Is(target error) bool {
	return target == jobs.ErrNotFound || target == history.ErrNotFound
}

// historyUnavailable says that a job is not in the cluster and the history
// that could have it cannot be reached.
func historyUnavailable(id, namespace, what string, err error) error {
	return fmt.Errorf("job %q not found in namespace %s, and %s unavailable: %w", id, namespace, what, err)
}
