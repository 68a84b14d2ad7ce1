package chaos

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"k8s.io/client-go/kubernetes"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/flowforge/flowforge/policies"
	"github.com/flowforge/flowforge/test/localcluster"
	"github.com/flowforge/flowforge/test/localup"
)

// Stack is the local stack the fault run drives: what test/localup
// started, and the policy directory its programs serve.
type Stack struct {
	Cluster   *localcluster.Cluster
	Endpoints *localup.Endpoints
	// PolicyDir is the directory the webhook and the controller serve
	// (localup.Options.PolicyDir); empty: the embedded policies, and no
	// policy push can be made.
	PolicyDir string
	Clientset kubernetes.Interface
	Admin     client.Client
	// HTTP reads the programs' probe and history endpoints.
	HTTP *http.Client

	// faults is held by a fault that stops and starts FlowForge's
	// programs, so that the supervisor leaves them to it.
	faults sync.Mutex
}

// Replica is one webhook process of the stack.
type Replica struct {
	// Name is the component's name in the local cluster.
	Name string
	// Probes is its probe address (http://host:port).
	Probes string
}

// WebhookReplicas returns the stack's webhook replicas, in order.
func (s *Stack) WebhookReplicas() []Replica {
	ep := s.Endpoints
	var out []Replica
	for i, probes := range ep.WebhookReplicaProbes {
		out = append(out, Replica{Name: fmt.Sprintf("flowforge-webhook-%d", i), Probes: probes})
	}
	if len(out) == 0 && ep.WebhookProbes != "" {
		out = append(out, Replica{Name: "flowforge-webhook", Probes: ep.WebhookProbes})
	}
	return out
}

// Controllers returns the names of the stack's controller processes.
func (s *Stack) Controllers() []string {
	var out []string
	for name := range s.Cluster.Pids() {
		if strings.HasPrefix(name, "flowforge-controller") {
			out = append(out, name)
		}
	}
	sort.Strings(out)
	return out
}

// cmdline returns a running component's command-line arguments.
func (s *Stack) cmdline(name string) ([]string, error) {
	pid, ok := s.Cluster.Pids()[name]
	if !ok {
		return nil, fmt.Errorf("%s is not running", name)
	}
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	if err != nil {
		return nil, fmt.Errorf("read the command line of %s: %w", name, err)
	}
	return strings.Split(strings.TrimRight(string(raw), "\x00"), "\x00"), nil
}

// flag returns the value of --name=value in args, or def.
func flag(args []string, name, def string) string {
	for _, a := range args {
		if v, ok := strings.CutPrefix(a, "--"+name+"="); ok {
			return v
		}
	}
	return def
}

// PolicyStatus reads a replica's served policy (/readyz/policy).
func (s *Stack) PolicyStatus(ctx context.Context, r Replica) (*policies.Status, error) {
	body, err := s.get(ctx, r.Probes+"/readyz/policy")
	if err != nil {
		return nil, err
	}
	var st policies.Status
	if err := json.Unmarshal(body, &st); err != nil {
		return nil, fmt.Errorf("%s: policy status: %w", r.Name, err)
	}
	return &st, nil
}

var servingSerial = regexp.MustCompile(`serial ([0-9a-f]+)`)

// ServingSerial reads the serial of the certificate a replica serves
// (/readyz?verbose, in rotate mode), or "" if it does not say.
func (s *Stack) ServingSerial(ctx context.Context, r Replica) (string, error) {
	body, err := s.get(ctx, r.Probes+"/readyz?verbose")
	if err != nil {
		return "", err
	}
	if m := servingSerial.FindSubmatch(body); m != nil {
		return string(m[1]), nil
	}
	return "", nil
}

// Ready reports whether a replica answers /readyz.
func (s *Stack) Ready(ctx context.Context, r Replica) bool {
	_, err := s.get(ctx, r.Probes+"/readyz")
	return err == nil
}

func (s *Stack) get(ctx context.Context, url string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	resp, err := s.HTTP.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close() //nolint:errcheck // read-only
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return body, fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	return body, nil
}

// HistoryHealthy reports whether the controller's history API answers.
func (s *Stack) HistoryHealthy(ctx context.Context) bool {
	_, err := s.get(ctx, s.Endpoints.History+"/healthz")
	return err == nil
}

// pidOf returns a running component's pid as text, or "".
func (s *Stack) pidOf(name string) string {
	if pid, ok := s.Cluster.Pids()[name]; ok {
		return strconv.Itoa(pid)
	}
	return ""
}

// HandlerDurations sums every replica's handler-duration histogram (each
// counts since the replica last started).
func (s *Stack) HandlerDurations(ctx context.Context) (Histogram, error) {
	var hs []Histogram
	for _, url := range s.Endpoints.WebhookReplicaMetrics {
		body, err := s.get(ctx, url)
		if err != nil {
			return Histogram{}, err
		}
		h, err := ParseHandlerDurations(body)
		if err != nil {
			return Histogram{}, err
		}
		hs = append(hs, h)
	}
	return Merge(hs...), nil
}

// Supervise plays the kubelet for FlowForge's programs until ctx ends:
// one that exits on its own (the controller exits when it loses its
// leader lease, as controller-runtime does; a pod's container would be
// restarted) is started again. Each restart is reported to restarted.
func (s *Stack) Supervise(ctx context.Context, restarted func(name, why string)) {
	type program struct {
		name  string
		ready func(context.Context) error
	}
	var programs []program
	for _, r := range s.WebhookReplicas() {
		programs = append(programs, program{r.Name, localcluster.HTTPReady(r.Probes + "/readyz")})
	}
	for _, name := range s.Controllers() {
		programs = append(programs, program{name, localcluster.HTTPReady(s.Endpoints.History + "/healthz")})
	}
	ticker := time.NewTicker(time.Second)
	defer ticker.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-ticker.C:
		}
		if !s.faults.TryLock() {
			continue
		}
		running := s.Cluster.Pids()
		for _, p := range programs {
			if _, ok := running[p.name]; ok {
				continue
			}
			why := lastError(s.Cluster.LogPath(p.name))
			rctx, cancel := context.WithTimeout(ctx, 3*time.Minute)
			err := s.Cluster.Relaunch(rctx, p.name, p.ready)
			cancel()
			if err != nil {
				why += "; restart failed: " + err.Error()
			}
			restarted(p.name, why)
		}
		s.faults.Unlock()
	}
}

// lastError returns the last line of a log that reports an error, cut
// short, or "".
func lastError(path string) string {
	data, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	lines := strings.Split(strings.TrimSpace(string(data)), "\n")
	for i := len(lines) - 1; i >= 0 && i >= len(lines)-200; i-- {
		if l := lines[i]; strings.Contains(l, `"level":"error"`) || strings.HasPrefix(l, "E") {
			if m := regexp.MustCompile(`"error":"([^"]*)"`).FindStringSubmatch(l); m != nil {
				return m[1]
			}
			return firstLine(l)
		}
	}
	return ""
}
