package jobs

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/utils/clock"
)

// DefaultNamespace is where Jobs go when Options.Namespace is empty.
const DefaultNamespace = "flowforge-jobs"

// Defaults of Options.
const (
	DefaultQPS            = 20
	DefaultBurst          = 40
	DefaultRequestTimeout = 30 * time.Second
	DefaultLogDrain       = time.Second
)

// DefaultBackoff is the retry policy of one API call: up to 5 attempts,
// 200ms apart at first, doubling, with 20% jitter, at most 5s apart.
func DefaultBackoff() wait.Backoff {
	return wait.Backoff{Duration: 200 * time.Millisecond, Factor: 2, Jitter: 0.2, Steps: 5, Cap: 5 * time.Second}
}

// DefaultReconnectBackoff is the policy for re-establishing a watch or a log
// stream: up to 12 consecutive failures (about 40s in all), enough to ride
// out an API server restart.
func DefaultReconnectBackoff() wait.Backoff {
	return wait.Backoff{Duration: 250 * time.Millisecond, Factor: 2, Jitter: 0.2, Steps: 12, Cap: 5 * time.Second}
}

// Options configure a Client. The zero value is usable.
type Options struct {
	// Namespace of the Jobs. Default DefaultNamespace.
	Namespace string
	// QPS and Burst limit the client's request rate; NewForConfig sets
	// them on the rest.Config. Defaults 20 and 40.
	QPS   float32
	Burst int
	// RequestTimeout bounds each attempt of a single API call (not a
	// watch or a log stream). Default 30s.
	RequestTimeout time.Duration
	// Backoff spaces the retries of a call that failed with a transient
	// error (see IsTransient). Steps is the maximum number of attempts.
	// Default DefaultBackoff().
	Backoff wait.Backoff
	// ReconnectBackoff spaces attempts to re-establish a watch or a log
	// stream; Steps bounds consecutive failures. Default
	// DefaultReconnectBackoff().
	ReconnectBackoff wait.Backoff
	// LogDrain is how long Logs keeps reading a followed stream after its
	// pod has terminated, before it closes the stream itself. Default 1s.
	LogDrain time.Duration
	// Clock is used for backoff and drain timers. Default the real clock.
	Clock clock.Clock
	// Server names the API server in errors. NewForConfig sets it.
	Server string
}

func (o Options) withDefaults() Options {
	if o.Namespace == "" {
		o.Namespace = DefaultNamespace
	}
	if o.QPS <= 0 {
		o.QPS = DefaultQPS
	}
	if o.Burst <= 0 {
		o.Burst = DefaultBurst
	}
	if o.RequestTimeout <= 0 {
		o.RequestTimeout = DefaultRequestTimeout
	}
	if o.Backoff.Steps <= 0 {
		o.Backoff = DefaultBackoff()
	}
	if o.ReconnectBackoff.Steps <= 0 {
		o.ReconnectBackoff = DefaultReconnectBackoff()
	}
	if o.LogDrain <= 0 {
		o.LogDrain = DefaultLogDrain
	}
	if o.Clock == nil {
		o.Clock = clock.RealClock{}
	}
	return o
}

// LoadConfig finds the API server's configuration, in this order:
//
//  1. kubeconfig, the path given with --kubeconfig, when not empty: an
//     explicit choice wins, even inside a pod;
//  2. the in-cluster configuration (service account token and CA), when
//     KUBERNETES_SERVICE_HOST is set;
//  3. the files listed in $KUBECONFIG;
//  4. ~/.kube/config.
//
// When none works, the error names everything that was tried and why it
// did not work.
func LoadConfig(kubeconfig string) (*rest.Config, error) {
	return configLoader{
		getenv:    os.Getenv,
		home:      os.UserHomeDir,
		inCluster: rest.InClusterConfig,
	}.load(kubeconfig)
}

// configLoader makes LoadConfig's environment replaceable in tests.
type configLoader struct {
	getenv    func(string) string
	home      func() (string, error)
	inCluster func() (*rest.Config, error)
}

func (l configLoader) load(kubeconfig string) (*rest.Config, error) {
	var tried []string
	if kubeconfig != "" {
		cfg, err := fromFiles([]string{kubeconfig})
		if err == nil {
			return cfg, nil
		}
		// An explicit file that does not work is an error, not a reason
		// to quietly talk to another cluster.
		return nil, fmt.Errorf("kubeconfig %s: %w", kubeconfig, err)
	}
	if l.getenv("KUBERNETES_SERVICE_HOST") != "" {
		cfg, err := l.inCluster()
		if err == nil {
			return cfg, nil
		}
		tried = append(tried, fmt.Sprintf("in-cluster configuration: %v", err))
	} else {
		tried = append(tried, "in-cluster configuration: KUBERNETES_SERVICE_HOST is not set")
	}
	if env := l.getenv(clientcmd.RecommendedConfigPathEnvVar); env != "" {
		files := filepath.SplitList(env)
		cfg, err := fromFiles(files)
		if err == nil {
			return cfg, nil
		}
		tried = append(tried, fmt.Sprintf("$KUBECONFIG (%s): %v", env, err))
	} else {
		tried = append(tried, "$KUBECONFIG: not set")
	}
	if home, err := l.home(); err != nil || home == "" {
		tried = append(tried, "~/.kube/config: no home directory")
	} else {
		path := filepath.Join(home, clientcmd.RecommendedHomeDir, clientcmd.RecommendedFileName)
		cfg, err := fromFiles([]string{path})
		if err == nil {
			return cfg, nil
		}
		tried = append(tried, fmt.Sprintf("%s: %v", path, err))
	}
	return nil, fmt.Errorf("no Kubernetes configuration found; tried:\n  - %s", strings.Join(tried, "\n  - "))
}

// fromFiles loads and merges kubeconfig files; a file that does not exist
// is an error.
func fromFiles(files []string) (*rest.Config, error) {
	var existing []string
	for _, f := range files {
		if f == "" {
			continue
		}
		if _, err := os.Stat(f); err != nil {
			if errors.Is(err, os.ErrNotExist) {
				return nil, fmt.Errorf("%s does not exist", f)
			}
			return nil, err
		}
		existing = append(existing, f)
	}
	if len(existing) == 0 {
		return nil, errors.New("no file given")
	}
	rules := &clientcmd.ClientConfigLoadingRules{Precedence: existing}
	cfg, err := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, &clientcmd.ConfigOverrides{}).ClientConfig()
	if err != nil {
		return nil, err
	}
	return cfg, nil
}
