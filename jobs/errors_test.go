package jobs

import (
	"errors"
	"fmt"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

func TestNotFoundError(t *testing.T) {
	apiErr := apierrors.NewNotFound(schema.GroupResource{Group: "batch", Resource: "jobs"}, "claude-job-x")
	tests := []struct {
		name    string
		err     error
		msg     string
		apiKind bool
	}{
		{"with the API server's error", &NotFoundError{ID: "x", Namespace: "ns", Cause: apiErr}, `job "x" not found in namespace ns`, true},
		{"without", &NotFoundError{ID: "x", Namespace: "ns"}, `job "x" not found in namespace ns`, false},
		{"wrapped", fmt.Errorf("cancel: %w", &NotFoundError{ID: "x", Namespace: "ns", Cause: apiErr}), `cancel: job "x" not found in namespace ns`, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.msg, tt.err.Error(), "the API server's words are not repeated")
			require.ErrorIs(t, tt.err, ErrNotFound)
			assert.Equal(t, tt.apiKind, apierrors.IsNotFound(tt.err))
			nf, ok := AsNotFound(tt.err)
			require.True(t, ok)
			assert.Equal(t, "x", nf.ID)
		})
	}
	_, ok := AsNotFound(errors.New("other"))
	assert.False(t, ok)
}
