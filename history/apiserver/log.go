package apiserver

import (
	"bytes"
	"context"
	"fmt"
	"io"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apiserver/pkg/registry/rest"

	"github.com/flowforge/flowforge/history"
	historyv1alpha1 "github.com/flowforge/flowforge/history/apis/v1alpha1"
)

// logREST serves executions/log: the archived logs as text/plain.
type logREST struct {
	store history.Store
}

var (
	_ rest.Storage           = (*logREST)(nil)
	_ rest.GetterWithOptions = (*logREST)(nil)
	_ rest.StorageMetadata   = (*logREST)(nil)
)

func (r *logREST) New() runtime.Object { return &historyv1alpha1.Execution{} }
func (r *logREST) Destroy()            {}

// NewGetOptions: ?attempt=N&container=C.
func (r *logREST) NewGetOptions() (runtime.Object, bool, string) {
	return &historyv1alpha1.ExecutionLogOptions{}, false, ""
}

// ProducesMIMETypes: the logs are text.
func (r *logREST) ProducesMIMETypes(string) []string { return []string{"text/plain"} }

// ProducesObject: no object, text.
func (r *logREST) ProducesObject(string) any { return "" }

// Get returns the archived logs of an execution: every attempt and
// container by default, each attempt headed by a line naming it when the
// job had several; the options select one attempt or container.
func (r *logREST) Get(ctx context.Context, name string, opts runtime.Object) (runtime.Object, error) {
	o, ok := opts.(*historyv1alpha1.ExecutionLogOptions)
	if !ok {
		return nil, apierrors.NewBadRequest(fmt.Sprintf("invalid options object: %T", opts))
	}
	j, err := lookup(ctx, r.store, name)
	if err != nil {
		return nil, err
	}
	archives, err := r.store.LogArchives(ctx, j.UID)
	if err != nil {
		return nil, apierrors.NewInternalError(fmt.Errorf("read the logs of %s: %w", name, err))
	}
	text, err := Render(archives, int(o.Attempt), o.Container)
	if err != nil {
		return nil, apierrors.NewInternalError(fmt.Errorf("read the logs of %s: %w", name, err))
	}
	return &textStream{data: text}, nil
}

// Render joins the archives' text as executions/log serves it: only
// attempt (0: every one) and container ("": every one), and a header line
// per attempt when there are several and no attempt was chosen.
func Render(archives []history.LogArchive, attempt int, container string) ([]byte, error) {
	var out bytes.Buffer
	multi := countAttempts(archives) > 1
	last := 0
	for _, ar := range archives {
		if (attempt != 0 && ar.Attempt != attempt) || (container != "" && ar.Container != container) {
			continue
		}
		text, err := ar.Text()
		if err != nil {
			return nil, err
		}
		if multi && attempt == 0 && ar.Attempt != last {
			_, _ = fmt.Fprintf(&out, "==> attempt %d (pod %s) <==\n", ar.Attempt, ar.Pod)
			last = ar.Attempt
		}
		out.Write(text)
	}
	return out.Bytes(), nil
}

func countAttempts(archives []history.LogArchive) int {
	seen := map[int]bool{}
	for _, a := range archives {
		seen[a.Attempt] = true
	}
	return len(seen)
}

// textStream is a rest.ResourceStreamer of text the handler copies to the
// response as it is.
type textStream struct {
	data []byte
}

var _ rest.ResourceStreamer = (*textStream)(nil)

func (s *textStream) GetObjectKind() schema.ObjectKind { return schema.EmptyObjectKind }
func (s *textStream) DeepCopyObject() runtime.Object {
	return &textStream{data: bytes.Clone(s.data)}
}

// InputStream returns the text.
func (s *textStream) InputStream(context.Context, string, string) (io.ReadCloser, bool, string, error) {
	return io.NopCloser(bytes.NewReader(s.data)), false, "text/plain; charset=utf-8", nil
}
