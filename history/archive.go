package history

import (
	"bytes"
	"compress/gzip"
	"fmt"
	"io"
	"sync"
)

// gzipWriters reuses compressors across archives: each holds about 800 KB
// of tables, and an export compresses a log per container, up to the
// controller's concurrent reconciles at once. Allocating one per archive
// made them a tenth of the controller's heap in a 5,000-Job burst.
var gzipWriters = sync.Pool{New: func() any { return gzip.NewWriter(io.Discard) }}

// Compress gzips at most limit bytes of r. It reports the bytes kept and
// whether r had more (the archive is then truncated).
func Compress(r io.Reader, limit int64) (gz []byte, size int64, truncated bool, err error) {
	var buf bytes.Buffer
	zw := gzipWriters.Get().(*gzip.Writer)
	zw.Reset(&buf)
	defer func() {
		zw.Reset(io.Discard) // drop the reference to buf
		gzipWriters.Put(zw)
	}()
	size, err = io.Copy(zw, io.LimitReader(r, limit))
	if err != nil {
		return nil, 0, false, fmt.Errorf("history: compress logs: %w", err)
	}
	// One more byte means the log was longer than the cap.
	var probe [1]byte
	n, err := r.Read(probe[:])
	if err != nil && err != io.EOF {
		return nil, 0, false, fmt.Errorf("history: read logs: %w", err)
	}
	if err := zw.Close(); err != nil {
		return nil, 0, false, fmt.Errorf("history: compress logs: %w", err)
	}
	return buf.Bytes(), size, n > 0, nil
}

// Text returns the archive's log text, with a marker line when it was cut.
func (a LogArchive) Text() ([]byte, error) {
	zr, err := gzip.NewReader(bytes.NewReader(a.Gzip))
	if err != nil {
		return nil, fmt.Errorf("history: open archive of %s/%s: %w", a.Pod, a.Container, err)
	}
	defer zr.Close() //nolint:errcheck // read-only
	text, err := io.ReadAll(zr)
	if err != nil {
		return nil, fmt.Errorf("history: read archive of %s/%s: %w", a.Pod, a.Container, err)
	}
	if a.Truncated {
		if len(text) > 0 && text[len(text)-1] != '\n' {
			text = append(text, '\n')
		}
		text = append(text, fmt.Sprintf("[flowforge: log truncated after %d bytes]\n", a.Size)...)
	}
	return text, nil
}
