// Command webhookload measures FlowForge's admission webhook over real TLS:
// a fixed number of concurrent clients send AdmissionReviews for a typical
// agent Job at a target rate (or as fast as they can), and it reports the
// throughput and the latency distribution. `make load` runs it against the
// webhook that `make up` started.
package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/flowforge/flowforge/templates"
)

func main() {
	url := flag.String("url", os.Getenv("FLOWFORGE_WEBHOOK"), "webhook base URL (https://host:port)")
	caFile := flag.String("ca", ".local/webhook-certs/ca.crt", "CA that signed the webhook's certificate")
	path := flag.String("path", "/mutate-batch-v1-job", "webhook path")
	concurrency := flag.Int("concurrency", 32, "concurrent clients")
	rate := flag.Float64("rate", 1000, "requests per second in all (0: as fast as possible)")
	duration := flag.Duration("duration", 30*time.Second, "how long to send")
	distinct := flag.Int("distinct", 4096, "distinct Jobs to cycle through (ids, names, tasks, secret names differ), so that the policy decision cache sees what a real stream of Jobs gives it; 1 sends the same Job every time (all cache hits)")
	flag.Parse()
	if err := run(*url, *caFile, *path, *concurrency, *rate, *duration, *distinct); err != nil {
		fmt.Fprintf(os.Stderr, "webhookload: %v\n", err)
		os.Exit(1)
	}
}

func run(url, caFile, path string, concurrency int, rate float64, duration time.Duration, distinct int) error {
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
	client := &http.Client{
		Timeout: 10 * time.Second,
		Transport: &http.Transport{
			TLSClientConfig:     &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12},
			MaxIdleConnsPerHost: concurrency,
			ForceAttemptHTTP2:   false,
		},
	}
	bodies, err := reviews(max(distinct, 1))
	if err != nil {
		return err
	}
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
				resp, err := client.Post(url+path, "application/json", bytes.NewReader(body))
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
	target := "as fast as possible"
	if rate > 0 {
		target = fmt.Sprintf("%.0f req/s", rate)
	}
	fmt.Printf("webhook %s%s over TLS: %d clients, target %s, %s, %d distinct Jobs\n", url, path, concurrency, target, duration, len(bodies))
	fmt.Printf("requests %d, errors %d, throughput %.0f req/s\n", sent.Load(), errors.Load(), float64(len(latencies))/elapsed.Seconds())
	fmt.Printf("latency p50 %s  p90 %s  p99 %s  max %s\n", pct(0.50).Round(time.Microsecond), pct(0.90).Round(time.Microsecond), pct(0.99).Round(time.Microsecond), pct(1).Round(time.Microsecond))
	return nil
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
