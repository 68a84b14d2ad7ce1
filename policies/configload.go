package policies

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-logr/logr"
	"gopkg.in/yaml.v3"
	"k8s.io/utils/clock"
	k8syaml "sigs.k8s.io/yaml"
)

// LoadConfig reads the Config of a policy set — its data.yaml with the
// platform's PlatformFile applied, as Load serves it — and validates it,
// without parsing, testing or compiling any Rego. It is for programs that
// read the settings but never evaluate the policy (the controller): a full
// Load compiles the policy and runs its tests, which costs tens of MiB
// for a moment and keeps the compiled policy in memory for good. The
// webhook's Load is what refuses a policy whose tests fail; a program
// reading the Config alone sees what data.yaml says once it parses and
// validates.
func LoadConfig(fsys fs.FS) (*Config, error) {
	c, _, err := loadConfig(fsys)
	return c, err
}

// loadConfig is LoadConfig, returning as well the bytes it read (data.yaml
// then the platform file), so that a reload can tell whether they changed.
func loadConfig(fsys fs.FS) (*Config, []byte, error) {
	raw, err := fs.ReadFile(fsys, "data.yaml")
	if err != nil {
		return nil, nil, fmt.Errorf("policy data: %w", err)
	}
	var data map[string]any
	if err := yaml.Unmarshal(raw, &data); err != nil {
		return nil, nil, fmt.Errorf("policy data: data.yaml: %w", err)
	}
	platformRaw, err := fs.ReadFile(fsys, PlatformFile)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, nil, fmt.Errorf("load policies: %s: %w", PlatformFile, err)
	}
	var platform map[string]any
	if len(platformRaw) > 0 {
		var doc map[string]any
		if err := k8syaml.Unmarshal(platformRaw, &doc); err != nil {
			return nil, nil, fmt.Errorf("load policies: %s: %w", PlatformFile, err)
		}
		if platform, err = platformConfig(doc); err != nil {
			return nil, nil, fmt.Errorf("load policies: %s: %w", PlatformFile, err)
		}
	}
	if err := ApplyPlatform(platform, data); err != nil {
		return nil, nil, err
	}
	c, err := ParseConfig(data)
	if err != nil {
		return nil, nil, err
	}
	files := append(append(append([]byte{}, raw...), 0), platformRaw...)
	return c, files, nil
}

// ConfigSourceOptions configure a ConfigSource.
type ConfigSourceOptions struct {
	// Dir, if set, is the policy directory to read and watch instead of
	// the embedded policies.
	Dir string
	Log logr.Logger
	// Recorder, if set, counts reloads (PolicyReload); no revision is
	// reported: the policy's revision hashes its Rego, which is not read.
	Recorder Recorder
	Clock    clock.PassiveClock
}

// ConfigSource serves the Config of a policy directory (or of the embedded
// policies) and reads it again when the directory changes, like Engine
// but without the Rego (see LoadConfig). It is safe for concurrent use.
type ConfigSource struct {
	opts    ConfigSourceOptions
	current atomic.Pointer[Config]

	mu      sync.Mutex
	files   []byte
	status  Status
	watched chan struct{}
}

// NewConfigSource reads the initial Config; it fails if that is refused.
func NewConfigSource(opts ConfigSourceOptions) (*ConfigSource, error) {
	if opts.Recorder == nil {
		opts.Recorder = NopRecorder{}
	}
	if opts.Clock == nil {
		opts.Clock = clock.RealClock{}
	}
	s := &ConfigSource{opts: opts, watched: make(chan struct{})}
	s.status.Source = "embedded"
	if opts.Dir != "" {
		s.status.Source = opts.Dir
	}
	c, files, err := loadConfig(s.fs())
	if err != nil {
		opts.Recorder.PolicyReload(false)
		return nil, fmt.Errorf("policy data from %s refused: %w", s.status.Source, err)
	}
	s.current.Store(c)
	s.files = files
	s.status.Revision = c.Release
	s.status.LoadedAt = opts.Clock.Now()
	return s, nil
}

func (s *ConfigSource) fs() fs.FS {
	if s.opts.Dir == "" {
		return Embedded()
	}
	return os.DirFS(s.opts.Dir)
}

// Current returns the Config being served.
func (s *ConfigSource) Current() *Config { return s.current.Load() }

// Status returns a snapshot of the source's state; Revision is the
// Config's release and Tests is always 0.
func (s *ConfigSource) Status() Status {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.status
}

// Reload reads the directory again. A refused Config leaves the current
// one serving; the error is returned, logged, counted and kept in Status
// until a later reload succeeds. Unchanged files change nothing.
func (s *ConfigSource) Reload() error {
	c, files, err := loadConfig(s.fs())
	s.mu.Lock()
	defer s.mu.Unlock()
	if err != nil {
		s.opts.Recorder.PolicyReload(false)
		s.status.LastError, s.status.LastErrorAt = err.Error(), s.opts.Clock.Now()
		s.opts.Log.Error(err, "Policy data refused; the previous settings stay", "source", s.status.Source, "release", s.status.Revision)
		return err
	}
	s.status.LastError, s.status.LastErrorAt = "", time.Time{}
	if bytes.Equal(files, s.files) {
		return nil
	}
	s.current.Store(c)
	s.files = files
	s.status.Revision = c.Release
	s.status.LoadedAt = s.opts.Clock.Now()
	s.status.Reloads++
	s.opts.Recorder.PolicyReload(true)
	s.opts.Log.Info("Policy data loaded", "source", s.status.Source, "release", c.Release)
	return nil
}

// Watch reloads the Config whenever a file under the policy directory
// changes, until ctx ends. With embedded policies it just waits.
func (s *ConfigSource) Watch(ctx context.Context) error {
	if s.opts.Dir == "" {
		<-ctx.Done()
		return nil
	}
	return WatchDir(ctx, s.opts.Dir, s.opts.Log, s.watched, func() {
		_ = s.Reload() // a refusal is logged and reported by Reload
	})
}
