package jobs

import (
	"bytes"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes/fake"

	"github.com/flowforge/flowforge/templates"
)

const testNS = "jobs-test"

// fastBackoff keeps retries in tests to a millisecond or so.
func fastBackoff(steps int) wait.Backoff {
	return wait.Backoff{Duration: time.Millisecond, Factor: 1, Steps: steps, Cap: 2 * time.Millisecond}
}

func newTestClient(t *testing.T, cs *fake.Clientset, change ...func(*Options)) *Client {
	t.Helper()
	opts := Options{
		Namespace:        testNS,
		Backoff:          fastBackoff(4),
		ReconnectBackoff: fastBackoff(5),
		LogDrain:         20 * time.Millisecond,
		RequestTimeout:   5 * time.Second,
		Server:           "https://apiserver.test:6443",
	}
	for _, f := range change {
		f(&opts)
	}
	c, err := New(cs, nil, opts)
	require.NoError(t, err)
	return c
}

func testRequest(id string) templates.Request {
	return templates.Request{
		ID:            id,
		UserID:        "u-1",
		Repository:    "acme/widgets",
		RepositoryURL: "https://github.com/acme/widgets.git",
		Branch:        "main",
		Task:          "Fix the flaky test.",
	}
}

// syncBuffer is a writer that tests can read while Logs writes to it.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// waitForText waits (bounded) until the buffer contains s.
func waitForText(t *testing.T, b *syncBuffer, s string) {
	t.Helper()
	require.Eventually(t, func() bool { return strings.Contains(b.String(), s) }, 10*time.Second, time.Millisecond,
		"waiting for %q in %q", s, b)
}
