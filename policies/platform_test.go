package policies

import (
	"testing"

	"github.com/stretchr/testify/require"
)

func TestMerge(t *testing.T) {
	base := map[string]any{"a": map[string]any{"x": 1, "y": 2}, "c": []any{1}}
	got := merge(base, map[string]any{"a": map[string]any{"z": 3}, "c": []any{2}})
	require.Equal(t, map[string]any{"a": map[string]any{"z": 3}, "c": []any{2}}, got, "one level: a's keys are replaced whole")
	require.Equal(t, "x", merge(base, "x"))
	require.Equal(t, map[string]any{"a": map[string]any{"x": 1, "y": 2}, "c": []any{1}}, base, "base is not modified")
}
