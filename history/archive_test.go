package history

import (
	"bytes"
	"fmt"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// agentLog is a log like an agent's: timestamps, tool calls, repeated
// phrases, some of them long.
func agentLog(lines int) string {
	var b strings.Builder
	for i := range lines {
		fmt.Fprintf(&b, "step %d: running tool bash with command `go test ./pkg/%d/...`: ok (%d tests)\n", i, i%17, i%50)
	}
	return b.String()
}

func TestCompressRoundTripsAndStaysSmall(t *testing.T) {
	for _, tc := range []struct {
		name      string
		text      string
		limit     int64
		truncated bool
	}{
		{name: "empty", text: "", limit: 1 << 20},
		{name: "one line", text: "done\n", limit: 1 << 20},
		{name: "long log", text: agentLog(20000), limit: 8 << 20},
		{name: "cut at the limit", text: agentLog(1000), limit: 4096, truncated: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			gz, size, truncated, err := Compress(strings.NewReader(tc.text), tc.limit)
			require.NoError(t, err)
			assert.Equal(t, tc.truncated, truncated)
			want := tc.text
			if tc.truncated {
				want = tc.text[:tc.limit]
			}
			assert.Equal(t, int64(len(want)), size)
			text, err := LogArchive{Gzip: gz, Size: size}.Text()
			require.NoError(t, err)
			assert.True(t, bytes.HasPrefix(text, []byte(want)), "the archive reads back as the log")
			if len(want) > 100_000 {
				assert.Less(t, len(gz), len(want)/5, "a repetitive log compresses well")
			}
		})
	}
}

// A compression costs far less memory than a standard compressor's 800 KB
// of tables: the controller runs up to 32 at once.
func TestCompressAllocatesLittle(t *testing.T) {
	text := agentLog(2000)
	allocs := testing.Benchmark(func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, _, _, err := Compress(strings.NewReader(text), 1<<20); err != nil {
				b.Fatal(err)
			}
		}
	}).AllocedBytesPerOp()
	assert.Less(t, allocs, int64(300_000), "bytes allocated per compression of a %d-byte log", len(text))
}
