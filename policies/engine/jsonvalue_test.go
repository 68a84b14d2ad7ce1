package engine

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// assertParsesAsReference checks parseJSONValue against ast.ValueFromReader.
func assertParsesAsReference(t *testing.T, raw []byte) {
	t.Helper()
	want, wantErr := ast.ValueFromReader(bytes.NewReader(raw))
	got, gotErr := parseJSONValue(raw)
	if wantErr != nil {
		require.Error(t, gotErr, "%.80q", raw)
		assert.Equal(t, wantErr.Error(), gotErr.Error())
		return
	}
	require.NoError(t, gotErr, "%.80q", raw)
	assert.Zero(t, want.Compare(got), "%.80q", raw)
	assert.Equal(t, want.String(), got.String())
}

func TestParseJSONValueMatchesReference(t *testing.T) {
	for name, doc := range map[string]string{
		"object":         `{"a": 1, "b": [true, false, null], "c": {"d": "e"}}`,
		"empty":          `{"a": {}, "b": []}`,
		"whitespace":     " \t\n{ \"a\" :\r [ 1 , 2 ] } \n",
		"numbers":        `[0, -0, 1.5, -2.25e3, 1E+2, 3e-1, 12345678901234567890123, 1.50]`,
		"escapes":        `{"a\"b": "c\\d\/e\u00e9\ud83d\ude00\n\t"}`,
		"unicode":        `{"é": "日本語"}`,
		"invalid utf8":   "{\"a\": \"\xff\xfe\"}",
		"lone surrogate": `"\ud800"`,
		"scalar":         `"just a string"`,
		"null":           `null`,
		"duplicate key":  `{"a": 1, "a": 2}`,
		"trailing data":  `{"a": 1} {"b": 2}`,
		"trailing comma": `{"a": 1,}`,
		"leading zero":   `[01]`,
		"bare dot":       `[1.]`,
		"bad exponent":   `[1e]`,
		"control char":   "\"a\x01b\"",
		"unterminated":   `{"a": "b`,
		"bad literal":    `[tru]`,
		"missing colon":  `{"a" 1}`,
		"non-string key": `{1: 2}`,
		"deep":           strings.Repeat("[", 10001) + strings.Repeat("]", 10001),
		"nested":         strings.Repeat(`{"a":`, 100) + "1" + strings.Repeat("}", 100),
		"deep but valid": strings.Repeat("[", 1500) + strings.Repeat("]", 1500),
	} {
		t.Run(name, func(t *testing.T) { assertParsesAsReference(t, []byte(doc)) })
	}
}

// TestParseJSONValueOnTestdata parses every JSON fixture of the admission
// packages (golden Jobs and Pods, fuzz seeds) as the reference does.
func TestParseJSONValueOnTestdata(t *testing.T) {
	var files []string
	for _, glob := range []string{"testdata/*.json", "../../mutate/testdata/golden/*.json", "../../test/worstcase/testdata/*.json"} {
		m, err := filepath.Glob(glob)
		require.NoError(t, err)
		files = append(files, m...)
	}
	require.NotEmpty(t, files)
	for _, f := range files {
		raw, err := os.ReadFile(f)
		require.NoError(t, err)
		t.Run(filepath.Base(f), func(t *testing.T) { assertParsesAsReference(t, raw) })
	}
}

func FuzzParseJSONValue(f *testing.F) {
	f.Add([]byte(`{"a": [1, "b", {"c": null}], "d": 1.5e3}`))
	f.Add([]byte(`"\u00e9\ud83d\ude00"`))
	f.Add([]byte(`{"a":1,"a":2}`))
	f.Fuzz(func(t *testing.T, raw []byte) {
		want, wantErr := ast.ValueFromReader(bytes.NewReader(raw))
		got, gotErr := parseJSONValue(raw)
		if wantErr != nil {
			if gotErr == nil {
				t.Fatalf("%q: the reference fails (%v), the parser gave %v", raw, wantErr, got)
			}
			return
		}
		if gotErr != nil {
			t.Fatalf("%q: %v", raw, gotErr)
		}
		if want.Compare(got) != 0 {
			t.Fatalf("%q: want %v, got %v", raw, want, got)
		}
	})
}
