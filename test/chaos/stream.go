package chaos

import (
	"context"
	"fmt"
	"math"
	"strconv"
	"sync"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/utils/clock"

	"github.com/flowforge/flowforge/contract"
	"github.com/flowforge/flowforge/test/localcluster"
)

// DefaultMaxCalls bounds the create calls in flight: under the 64
// admissions one webhook replica takes at once (4 MiB in flight, 64 KiB
// at least per request), since a fault may leave one replica to carry
// them all, with room for the Job controller's pod creates.
const DefaultMaxCalls = 48

// StreamUser is the user-id of the stream's Jobs.
const StreamUser = "chaos"

// Result is what became of one create.
type Result struct {
	ID string
	// Due is when the stream's schedule wanted the create sent (zero for
	// a burst's); Start - Due is how late it was.
	Due time.Time
	// Start is when the first attempt was sent, End when the last one was
	// answered; Latency is the last attempt's round trip.
	Start, End time.Time
	Latency    time.Duration
	Class      Class
	// Retries counts the attempts that found the API server unavailable.
	Retries int
	// Err is the final error, if any (classified, never a whole object).
	Err string
	// Burst marks the Jobs of a fault's burst rather than of the stream.
	Burst bool
	// DryRun marks a server-side dry run: it went through admission, as a
	// real create does, and created nothing.
	DryRun bool
}

// Stream creates Jobs through the API server at a steady rate and keeps
// every outcome.
type Stream struct {
	cs        kubernetes.Interface
	namespace string
	prefix    string
	rate      float64
	// realEvery: one create in realEvery is real, the others are dry runs.
	realEvery int
	ttl       time.Duration
	clk       clock.WithTicker
	// retryFor bounds how long a create is retried while the API server
	// is unavailable.
	retryFor time.Duration
	// calls bounds the calls to the API server at once (MaxCalls).
	calls chan struct{}

	mu      sync.Mutex
	results []Result
	next    int
	wg      sync.WaitGroup
}

// StreamOptions configure NewStream.
type StreamOptions struct {
	Namespace string
	// Run names this run; the Jobs' ids are chaos-<run>-<n>.
	Run string
	// Rate is the creates per second.
	Rate float64
	// RealRate is how many of them are real Jobs (the others are
	// server-side dry runs, which take the same admission path but create
	// nothing for the cluster to run): at most Rate; 0 means Rate.
	RealRate float64
	// TTL is the Jobs' FlowForge TTL after finishing (whole seconds; 0:
	// kept), so that a long run does not pile Jobs up in the cluster.
	TTL time.Duration
	// RetryFor bounds the retries of a create while the API server is
	// unavailable (default 2 minutes).
	RetryFor time.Duration
	// MaxCalls bounds the create calls to the API server at once, the
	// stream's and a burst's together (default DefaultMaxCalls). A create
	// that retries while the API server is unavailable does not hold one
	// while it waits, so the stream keeps its schedule through an API
	// server restart, yet its catch-up afterwards sends no more than the
	// webhooks are built to take at once.
	MaxCalls int
	Clock    clock.WithTicker
}

// NewStream returns a stream that creates Jobs with cs.
func NewStream(cs kubernetes.Interface, opts StreamOptions) *Stream {
	if opts.Clock == nil {
		opts.Clock = clock.RealClock{}
	}
	if opts.RetryFor <= 0 {
		opts.RetryFor = 2 * time.Minute
	}
	realEvery := 1
	if opts.RealRate > 0 && opts.RealRate < opts.Rate {
		realEvery = max(1, int(math.Round(opts.Rate/opts.RealRate)))
	}
	if opts.MaxCalls <= 0 {
		opts.MaxCalls = DefaultMaxCalls
	}
	return &Stream{cs: cs, namespace: opts.Namespace, prefix: "chaos-" + opts.Run + "-", rate: opts.Rate, realEvery: realEvery, ttl: opts.TTL, clk: opts.Clock, retryFor: opts.RetryFor,
		calls: make(chan struct{}, opts.MaxCalls)}
}

// Prefix is the prefix of the stream's job-ids.
func (s *Stream) Prefix() string { return s.prefix }

// Run creates Jobs at the rate until ctx ends, then waits for the creates
// in flight. It keeps its schedule: the n-th create is due at the start
// plus n/rate, and a create that could not start on time (its calls
// waiting for the MaxCalls bound, or all maxInFlight creates outstanding,
// as when the API server restarts and they retry) starts as soon as it
// can, so that the stream catches up rather than losing the creates a
// fault delayed. Beyond maxInFlight outstanding the stream falls behind
// (each Result has its due time, and the report the achieved rate).
func (s *Stream) Run(ctx context.Context, maxInFlight int) {
	sem := make(chan struct{}, max(maxInFlight, 1))
	start := s.clk.Now()
	defer s.wg.Wait()
	for n := 0; ; n++ {
		due := start.Add(time.Duration(float64(n) * float64(time.Second) / s.rate))
		if wait := due.Sub(s.clk.Now()); wait > 0 {
			select {
			case <-ctx.Done():
				return
			case <-s.clk.After(wait):
			}
		}
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
			return
		}
		if ctx.Err() != nil {
			<-sem
			return
		}
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			defer func() { <-sem }()
			s.create(context.WithoutCancel(ctx), due, false, false)
		}()
	}
}

// Burst creates n Jobs at once (32 at a time) on top of the stream and
// calls mid once half of them are created.
func (s *Stream) Burst(ctx context.Context, n int, mid func()) {
	var wg sync.WaitGroup
	sem := make(chan struct{}, 32)
	var once sync.Once
	var done sync.WaitGroup
	done.Add(n / 2)
	go func() {
		done.Wait()
		once.Do(mid)
	}()
	for i := range n {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			s.create(ctx, time.Time{}, true, true)
			if i < n/2 {
				done.Done()
			}
		}()
	}
	wg.Wait()
	once.Do(mid)
}

// create sends one Job, retrying while the API server is unavailable.
// A stream create is real one time in realEvery (a burst's always are);
// due is when the stream's schedule wanted it sent (zero for a burst).
func (s *Stream) create(ctx context.Context, due time.Time, burst, real bool) {
	s.mu.Lock()
	n := s.next
	id := s.prefix + strconv.Itoa(n)
	s.next++
	s.mu.Unlock()
	real = real || n%s.realEvery == 0
	job := StreamJob(id, s.ttl)
	opts := metav1.CreateOptions{}
	if !real {
		opts.DryRun = []string{metav1.DryRunAll}
	}
	r := Result{ID: id, Due: due, Burst: burst, DryRun: !real}
	var deadline time.Time
	backoff := 100 * time.Millisecond
	for {
		// At most maxCalls calls at once: a create waiting for one has
		// not started yet.
		s.calls <- struct{}{}
		start := s.clk.Now()
		if r.Start.IsZero() {
			r.Start = start
			deadline = start.Add(s.retryFor)
		}
		_, err := s.cs.BatchV1().Jobs(s.namespace).Create(ctx, job, opts)
		<-s.calls
		r.End = s.clk.Now()
		r.Latency = r.End.Sub(start)
		r.Class = Classify(err)
		if r.Class == Exists && r.Retries > 0 {
			// An attempt that looked lost had created it.
			r.Class, err = Admitted, nil
		}
		if err != nil {
			r.Err = err.Error()
		}
		if r.Class != APIUnavailable || s.clk.Now().After(deadline) {
			break
		}
		r.Retries++
		s.clk.Sleep(backoff)
		backoff = min(2*backoff, 2*time.Second)
	}
	s.mu.Lock()
	s.results = append(s.results, r)
	s.mu.Unlock()
}

// Results returns the outcomes so far.
func (s *Stream) Results() []Result {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Result(nil), s.results...)
}

// StreamJob is a plain agent Job that runs a second and prints three
// lines (kwok plays it, test/localcluster).
func StreamJob(id string, ttl time.Duration) *batchv1.Job {
	j := &batchv1.Job{
		ObjectMeta: metav1.ObjectMeta{
			Name:        contract.JobName(id),
			Labels:      map[string]string{contract.LabelApp: contract.AppName, contract.LabelJobID: id, contract.LabelUserID: StreamUser},
			Annotations: map[string]string{contract.AnnotationRepository: "acme/widgets"},
		},
		Spec: batchv1.JobSpec{Template: corev1.PodTemplateSpec{
			ObjectMeta: metav1.ObjectMeta{Annotations: map[string]string{
				localcluster.AnnotationDuration:    "1s",
				localcluster.AnnotationLogs:        "cloning\nworking\ndone",
				localcluster.AnnotationLogInterval: "200ms",
			}},
			Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "worker", Image: "ghcr.io/flowforge/claude-worker:1.4.0"}}},
		}},
	}
	if ttl > 0 {
		j.Annotations[contract.AnnotationTTLSecondsAfterFinished] = fmt.Sprint(int(ttl / time.Second))
	}
	return j
}
