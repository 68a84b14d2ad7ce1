package history

import (
	"bytes"
	"compress/gzip"
	"fmt"
	"io"

	kgzip "github.com/klauspost/compress/gzip"
)

// Compress gzips at most limit bytes of r. It reports the bytes kept and
// whether r had more (the archive is then truncated).
//
// It compresses statelessly (klauspost/compress's StatelessCompression: each
// block on its own, no window kept between writes): a standard compressor
// holds about 800 KB of tables, and the controller compresses a log per
// container, up to its 32 concurrent reconciles at once. Those tables were a
// tenth of the controller's heap in a 5,000-Job burst; logs compress a
// little less (TestCompressRoundTripsAndStaysSmall). The output is plain gzip.
func Compress(r io.Reader, limit int64) (gz []byte, size int64, truncated bool, err error) {
	var buf bytes.Buffer
	zw, err := kgzip.NewWriterLevel(&buf, kgzip.StatelessCompression)
	if err != nil {
		return nil, 0, false, fmt.Errorf("history: compress logs: %w", err)
	}
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
