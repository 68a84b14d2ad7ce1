package policies

import (
	"encoding/json"
	"fmt"
	"io/fs"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestEmbeddedLimitsAreUnderTheCeilings(t *testing.T) {
	raw, err := fs.ReadFile(Embedded(), "data.yaml")
	require.NoError(t, err)
	var data map[string]any
	require.NoError(t, yaml.Unmarshal(raw, &data))
	got, err := ParseLimits(data)
	require.NoError(t, err)
	ceilings := Ceilings()
	for _, f := range limitFields() {
		v, c := *f.field(&got), *f.field(&ceilings)
		assert.Positive(t, v, f.name)
		assert.LessOrEqual(t, v, c, f.name)
		assert.Equal(t, "limits."+f.name, "limits."+LimitName(&got, f.field(&got)))
	}
	assert.Less(t, got.EnvPerContainer, ceilings.EnvPerContainer, "data.yaml lowers the limits it sets")
	assert.Equal(t, "?", LimitName(&got, new(int64)))
}

func TestParseLimits(t *testing.T) {
	ceilings := Ceilings()
	data := func(limits any) map[string]any {
		return map[string]any{"flowforge": map[string]any{"config": map[string]any{"limits": limits}}}
	}
	tests := []struct {
		name    string
		data    map[string]any
		want    func(*Limits)
		wantErr string
	}{
		{name: "no limits section: the ceilings", data: map[string]any{}, want: func(*Limits) {}},
		{name: "a lowered limit, the others their ceilings", data: data(map[string]any{"containers": json.Number("8")}), want: func(l *Limits) { l.Containers = 8 }},
		{name: "at the ceiling", data: data(map[string]any{"envTotal": float64(ceilings.EnvTotal)}), want: func(*Limits) {}},
		{name: "an int", data: data(map[string]any{"labels": 3}), want: func(l *Limits) { l.Labels = 3 }},
		{name: "one above the ceiling", data: data(map[string]any{"envTotal": float64(ceilings.EnvTotal + 1)}),
			wantErr: fmt.Sprintf("limits.envTotal is %d, above its hard ceiling of %d (a policy may lower a limit, not raise it)", ceilings.EnvTotal+1, ceilings.EnvTotal)},
		{name: "far above", data: data(map[string]any{"objectBytes": json.Number("1073741824")}), wantErr: fmt.Sprintf("limits.objectBytes is 1073741824, above its hard ceiling of %d", ceilings.ObjectBytes)},
		{name: "zero", data: data(map[string]any{"volumes": json.Number("0")}), wantErr: fmt.Sprintf("limits.volumes must be a whole number from 1 to %d, not 0", ceilings.Volumes)},
		{name: "a fraction", data: data(map[string]any{"volumes": 1.5}), wantErr: "limits.volumes must be a whole number"},
		{name: "a string", data: data(map[string]any{"volumes": "10"}), wantErr: "limits.volumes must be a whole number"},
		{name: "an unknown limit", data: data(map[string]any{"containerz": json.Number("1")}), wantErr: "limits.containerz is not a known limit"},
		{name: "not a map", data: data([]any{1}), wantErr: "data.flowforge.config.limits must be a map"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseLimits(tc.data)
			if tc.wantErr != "" {
				require.ErrorContains(t, err, tc.wantErr)
				return
			}
			require.NoError(t, err)
			want := Ceilings()
			tc.want(&want)
			assert.Equal(t, want, got)
		})
	}
}
