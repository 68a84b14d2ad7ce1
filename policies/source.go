package policies

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/fsnotify/fsnotify"
	"github.com/go-logr/logr"
)

// reloadDebounce lets a burst of file events (an editor's save, a
// ConfigMap's symlink swap) settle into one reload.
const reloadDebounce = 250 * time.Millisecond

// Recorder receives the engine's measurements; see internal/metrics.
type Recorder interface {
	PolicyReload(success bool)
	PolicyEval(query string, d time.Duration)
	PolicyRevision(revision string)
}

// NopRecorder records nothing.
type NopRecorder struct{}

func (NopRecorder) PolicyReload(bool)                {}
func (NopRecorder) PolicyEval(string, time.Duration) {}
func (NopRecorder) PolicyRevision(string)            {}

// Status describes what the engine serves, for readiness details.
type Status struct {
	Source   string `json:"source"`
	Revision string `json:"revision"`
	Tests    int    `json:"tests"`
	// IdentityEvaluator is what evaluates the identity query: "compiled"
	// (OPA's plan, run by the engine) or "topdown" (OPA's interpreter,
	// when the plan needs what the compiled evaluator does not run).
	IdentityEvaluator string    `json:"identityEvaluator,omitempty"`
	LoadedAt          time.Time `json:"loadedAt"`
	Reloads           int       `json:"reloads"`
	LastError         string    `json:"lastError,omitempty"`
	LastErrorAt       time.Time `json:"lastErrorAt,omitzero"`
}

// WatchDir calls reload, debounced, whenever a file under dir changes,
// until ctx ends; it closes watching once the watches are set up.
func WatchDir(ctx context.Context, dir string, log logr.Logger, watching chan struct{}, reload func()) error {
	w, err := fsnotify.NewWatcher()
	if err != nil {
		return fmt.Errorf("watch policies: %w", err)
	}
	defer w.Close() //nolint:errcheck // nothing to do on a failed close
	if err := watchTree(w, dir); err != nil {
		return err
	}
	close(watching)
	var pending <-chan time.Time
	for {
		select {
		case <-ctx.Done():
			return nil
		case ev, ok := <-w.Events:
			if !ok {
				return errors.New("watch policies: watcher closed")
			}
			if ev.Has(fsnotify.Create) {
				_ = watchTree(w, ev.Name) // new subdirectories are watched too
			}
			pending = time.After(reloadDebounce)
		case err, ok := <-w.Errors:
			if !ok {
				return errors.New("watch policies: watcher closed")
			}
			log.Error(err, "Policy watch error")
		case <-pending:
			pending = nil
			reload()
		}
	}
}

// watchTree adds root and every directory below it to the watcher.
func watchTree(w *fsnotify.Watcher, root string) error {
	return filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() {
			if d.Type()&fs.ModeSymlink != 0 {
				if info, statErr := os.Stat(path); statErr == nil && info.IsDir() {
					return w.Add(path)
				}
			}
			return nil
		}
		if err := w.Add(path); err != nil {
			return fmt.Errorf("watch %s: %w", path, err)
		}
		return nil
	})
}

// Lookup returns the value at path in a policy data document, or nil.
func Lookup(data map[string]any, path ...string) any {
	var cur any = data
	for _, key := range path {
		m, ok := cur.(map[string]any)
		if !ok {
			return nil
		}
		cur = m[key]
	}
	return cur
}
