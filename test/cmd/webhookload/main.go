// Command webhookload measures FlowForge's admission webhook over real TLS:
// a fixed number of concurrent clients send AdmissionReviews for a typical
// agent Job at a target rate (or as fast as they can), and it reports the
// throughput and the latency distribution. With -floor (the default) it
// also serves the pure-Go floor (test/floor) over TLS from a child process
// and measures it in the same run, at the target rate and then both in a
// closed loop, and prints FlowForge's ratios to it. `make load` runs it
// against the webhook that `make up` started.
package main

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-logr/logr"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	"github.com/flowforge/flowforge/templates"
	"github.com/flowforge/flowforge/test/floor"
)

func main() {
	url := flag.String("url", os.Getenv("FLOWFORGE_WEBHOOK"), "webhook base URL (https://host:port)")
	caFile := flag.String("ca", ".local/webhook-certs/ca.crt", "CA that signed the webhook's certificate")
	path := flag.String("path", "/mutate-batch-v1-job", "webhook path")
	concurrency := flag.Int("concurrency", 32, "concurrent clients")
	rate := flag.Float64("rate", 1000, "requests per second in all (0: as fast as possible)")
	duration := flag.Duration("duration", 30*time.Second, "how long to send, per run")
	distinct := flag.Int("distinct", 4096, "distinct Jobs to cycle through (ids, names, tasks, secret names differ), so that the policy decision cache sees what a real stream of Jobs gives it; 1 sends the same Job every time (all cache hits)")
	withFloor := flag.Bool("floor", true, "measure the pure-Go floor (test/floor) over TLS in the same run, served by a child process of this one, at the same rate and then both in a closed loop, and print FlowForge's ratios to it")
	serveFloorFlag := flag.Bool("serve-floor", false, "internal: serve the floor over TLS on 127.0.0.1 and print its address and CA, until stdin closes")
	flag.Parse()
	if *serveFloorFlag {
		if err := runFloorServer(); err != nil {
			fmt.Fprintf(os.Stderr, "webhookload: floor: %v\n", err)
			os.Exit(1)
		}
		return
	}
	if err := run(*url, *caFile, *path, *concurrency, *rate, *duration, *distinct, *withFloor); err != nil {
		fmt.Fprintf(os.Stderr, "webhookload: %v\n", err)
		os.Exit(1)
	}
}

func run(url, caFile, path string, concurrency int, rate float64, duration time.Duration, distinct int, withFloor bool) error {
	if url == "" {
		return fmt.Errorf("no --url (or $FLOWFORGE_WEBHOOK); run make up and source .local/endpoints.env")
	}
	ca, err := os.ReadFile(caFile)
	if err != nil {
		return fmt.Errorf("read CA: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(ca) {
		return fmt.Errorf("%s holds no certificate", caFile)
	}
	bodies, err := reviews(max(distinct, 1))
	if err != nil {
		return err
	}
	flowforge := target{url: url, path: path, pool: pool}
	if !withFloor {
		r := measure(flowforge, concurrency, rate, duration, bodies)
		r.print("FlowForge", flowforge, concurrency, rate, duration, len(bodies))
		return nil
	}
	floorTarget, stop, err := startFloor()
	if err != nil {
		return err
	}
	defer stop()
	var results [2][2]result // [open, closed][FlowForge, floor]
	for i, r := range []float64{rate, 0} {
		if i == 1 && rate == 0 {
			results[1] = results[0]
			break
		}
		for j, t := range []target{flowforge, floorTarget} {
			results[i][j] = measure(t, concurrency, r, duration, bodies)
			results[i][j].print([]string{"FlowForge", "floor"}[j], t, concurrency, r, duration, len(bodies))
		}
	}
	ratio := func(a, b time.Duration) float64 { return float64(a) / float64(max(b, 1)) }
	open, closed := results[0], results[1]
	fmt.Printf("ratios to the floor at %.0f req/s: p50 %.2fx (bar 1.5x)  p99 %.2fx (bar 2x)\n", rate, ratio(open[0].p50, open[1].p50), ratio(open[0].p99, open[1].p99))
	fmt.Printf("closed loop: FlowForge %.0f req/s, floor %.0f req/s: %.0f%% of the floor (bar 50%%)\n", closed[0].throughput, closed[1].throughput, 100*closed[0].throughput/max(closed[1].throughput, 1))
	if open[0].errors+closed[0].errors > 0 {
		return fmt.Errorf("%d FlowForge requests failed", open[0].errors+closed[0].errors)
	}
	return nil
}

// target is a webhook to send AdmissionReviews to.
type target struct {
	url, path string
	pool      *x509.CertPool
}

// result is one run's measurements.
type result struct {
	sent, errors       int64
	throughput         float64
	p50, p90, p99, top time.Duration
}

func (r result) print(name string, t target, concurrency int, rate float64, duration time.Duration, distinct int) {
	goal := "as fast as possible"
	if rate > 0 {
		goal = fmt.Sprintf("%.0f req/s", rate)
	}
	fmt.Printf("%s: webhook %s%s over TLS: %d clients, target %s, %s, %d distinct Jobs\n", name, t.url, t.path, concurrency, goal, duration, distinct)
	fmt.Printf("  requests %d, errors %d, throughput %.0f req/s\n", r.sent, r.errors, r.throughput)
	fmt.Printf("  latency p50 %s  p90 %s  p99 %s  max %s\n", r.p50.Round(time.Microsecond), r.p90.Round(time.Microsecond), r.p99.Round(time.Microsecond), r.top.Round(time.Microsecond))
}

// measure sends the bodies to t from concurrency clients at rate (0: as
// fast as they can) for duration.
func measure(t target, concurrency int, rate float64, duration time.Duration, bodies [][]byte) result {
	client := &http.Client{
		Timeout: 10 * time.Second,
		Transport: &http.Transport{
			TLSClientConfig:     &tls.Config{RootCAs: t.pool, MinVersion: tls.VersionTLS12},
			MaxIdleConnsPerHost: concurrency,
			ForceAttemptHTTP2:   false,
		},
	}
	defer client.CloseIdleConnections()
	var next atomic.Int64
	var (
		mu        sync.Mutex
		latencies = make([]time.Duration, 0, int(rate*duration.Seconds())+1024)
		errors    atomic.Int64
		sent      atomic.Int64
	)
	ctx, cancel := context.WithTimeout(context.Background(), duration)
	defer cancel()
	tokens := make(chan struct{}, concurrency)
	if rate > 0 {
		go func() {
			interval := time.Duration(float64(time.Second) / rate)
			next := time.Now()
			for ctx.Err() == nil {
				next = next.Add(interval)
				time.Sleep(time.Until(next))
				select {
				case tokens <- struct{}{}:
				default: // the clients are behind: the tick is lost, and counted as such below
				}
			}
			close(tokens)
		}()
	}
	start := time.Now()
	var wg sync.WaitGroup
	for range concurrency {
		wg.Add(1)
		go func() {
			defer wg.Done()
			local := make([]time.Duration, 0, 4096)
			for ctx.Err() == nil {
				if rate > 0 {
					if _, ok := <-tokens; !ok {
						break
					}
				}
				t0 := time.Now()
				body := bodies[int(next.Add(1)-1)%len(bodies)]
				resp, err := client.Post(t.url+t.path, "application/json", bytes.NewReader(body))
				if err == nil {
					_, _ = io.Copy(io.Discard, resp.Body)
					_ = resp.Body.Close()
					if resp.StatusCode != http.StatusOK {
						err = fmt.Errorf("status %s", resp.Status)
					}
				}
				sent.Add(1)
				if err != nil {
					errors.Add(1)
					continue
				}
				local = append(local, time.Since(t0))
			}
			mu.Lock()
			latencies = append(latencies, local...)
			mu.Unlock()
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	slices.Sort(latencies)
	pct := func(p float64) time.Duration {
		if len(latencies) == 0 {
			return 0
		}
		return latencies[min(len(latencies)-1, int(p*float64(len(latencies))))]
	}
	return result{
		sent: sent.Load(), errors: errors.Load(), throughput: float64(len(latencies)) / elapsed.Seconds(),
		p50: pct(0.50), p90: pct(0.90), p99: pct(0.99), top: pct(1),
	}
}

// startFloor runs this program again as the floor's server (-serve-floor),
// in a process of its own like the webhook's, and reads its address and CA.
func startFloor() (target, func(), error) {
	self, err := os.Executable()
	if err != nil {
		return target{}, nil, fmt.Errorf("floor: %w", err)
	}
	cmd := exec.Command(self, "-serve-floor")
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return target{}, nil, fmt.Errorf("floor: %w", err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return target{}, nil, fmt.Errorf("floor: %w", err)
	}
	if err := cmd.Start(); err != nil {
		return target{}, nil, fmt.Errorf("floor: %w", err)
	}
	stop := func() {
		_ = stdin.Close() // the server exits when its stdin closes
		_ = cmd.Wait()
	}
	var hello struct {
		URL string `json:"url"`
		CA  []byte `json:"ca"`
	}
	if err := json.NewDecoder(stdout).Decode(&hello); err != nil {
		stop()
		return target{}, nil, fmt.Errorf("floor: read its address: %w", err)
	}
	pool := x509.NewCertPool()
	cert, err := x509.ParseCertificate(hello.CA)
	if err != nil {
		stop()
		return target{}, nil, fmt.Errorf("floor: %w", err)
	}
	pool.AddCert(cert)
	return target{url: hello.URL, path: floor.Path, pool: pool}, stop, nil
}

// runFloorServer serves the pure-Go floor (test/floor) over TLS on a local
// port, with a certificate made for the run; it prints {"url", "ca"} and
// serves until its stdin closes.
func runFloorServer() error {
	ctrllog.SetLogger(logr.Discard())
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return fmt.Errorf("key: %w", err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "webhookload floor"},
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
		NotBefore:    time.Now().Add(-time.Minute),
		NotAfter:     time.Now().Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IsCA:         true, BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return fmt.Errorf("certificate: %w", err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	mux := http.NewServeMux()
	mux.Handle(floor.Path, &admission.Webhook{Handler: floor.NewHandler()})
	srv := &http.Server{
		Handler:           mux,
		ReadHeaderTimeout: 10 * time.Second,
		TLSConfig:         &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}}, MinVersion: tls.VersionTLS12},
	}
	go func() { _ = srv.ServeTLS(ln, "", "") }()
	if err := json.NewEncoder(os.Stdout).Encode(map[string]any{"url": "https://" + ln.Addr().String(), "ca": der}); err != nil {
		return err
	}
	_, _ = io.Copy(io.Discard, os.Stdin)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return srv.Shutdown(ctx)
}

// reviews renders n AdmissionReviews of Jobs the templater renders for a
// typical request, each with its own id, task (and so name and secret
// names).
func reviews(n int) ([][]byte, error) {
	r, err := templates.NewRenderer(templates.RendererOptions{})
	if err != nil {
		return nil, err
	}
	out := make([][]byte, 0, n)
	for i := range n {
		body, err := review(r, i)
		if err != nil {
			return nil, err
		}
		out = append(out, body)
	}
	return out, nil
}

// review is an AdmissionReview for the i-th Job.
func review(r *templates.Renderer, i int) ([]byte, error) {
	out, err := r.Render(templates.Request{
		ID: fmt.Sprintf("load-%d", i+1), UserID: "alice", Repository: "acme/widgets", RepositoryURL: "https://github.com/acme/widgets.git",
		Branch: "fix-parser", Task: fmt.Sprintf("Make the parser skip empty lines (case %d), add a test, push the branch.", i+1), Timeout: 30 * time.Minute,
	})
	if err != nil {
		return nil, err
	}
	out.Job.Namespace = "flowforge-jobs"
	job, err := json.Marshal(out.Job)
	if err != nil {
		return nil, err
	}
	return json.Marshal(map[string]any{
		"apiVersion": "admission.k8s.io/v1",
		"kind":       "AdmissionReview",
		"request": map[string]any{
			"uid":       fmt.Sprintf("6c5b0b3e-0000-4000-8000-%012d", i+1),
			"kind":      map[string]string{"group": "batch", "version": "v1", "kind": "Job"},
			"resource":  map[string]string{"group": "batch", "version": "v1", "resource": "jobs"},
			"namespace": "flowforge-jobs",
			"operation": "CREATE",
			"userInfo":  map[string]any{"username": "load-test"},
			"object":    json.RawMessage(job),
		},
	})
}
