// Command webhookworst sends a FlowForge webhook the worst-case objects a
// hostile client could (test/worstcase), several at once over real TLS,
// and reports the webhook process's peak memory (VmHWM) and the latency
// of each kind of object: the largest Job within every limit of the policy
// (admitted), the same Job one entry over a limit, and floods far over
// them (the 100,000 env entries and 5,000 containers), all under
// the API server's 3 MiB request limit. `make up`, then:
//
//	set -a; . .local/endpoints.env; set +a
//	bin/webhookworst -pid $(pgrep -f bin/flowforge-webhook)
package main

import (
	"bufio"
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
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/flowforge/flowforge/policies"
	"github.com/flowforge/flowforge/policies/engine"
	"github.com/flowforge/flowforge/test/worstcase"
)

func main() {
	url := flag.String("url", os.Getenv("FLOWFORGE_WEBHOOK"), "webhook base URL (https://host:port)")
	caFile := flag.String("ca", ".local/webhook-certs/ca.crt", "CA that signed the webhook's certificate")
	pid := flag.Int("pid", 0, "pid of the webhook process, whose /proc/<pid>/status is read for VmHWM and VmRSS")
	concurrency := flag.Int("concurrency", 8, "requests in flight at once")
	rounds := flag.Int("rounds", 10, "rounds; each sends every object to the mutating and the validating Job webhook")
	flag.Parse()
	if err := run(*url, *caFile, *pid, *concurrency, *rounds); err != nil {
		fmt.Fprintf(os.Stderr, "webhookworst: %v\n", err)
		os.Exit(1)
	}
}

type object struct {
	name string
	body []byte
}

type result struct {
	kind    string
	latency time.Duration
	outcome string
}

func run(url, caFile string, pid, concurrency, rounds int) error {
	if url == "" || pid == 0 {
		return fmt.Errorf("need --url (or $FLOWFORGE_WEBHOOK) and --pid; run make up and source .local/endpoints.env")
	}
	ca, err := os.ReadFile(caFile)
	if err != nil {
		return fmt.Errorf("read CA: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(ca) {
		return fmt.Errorf("%s holds no certificate", caFile)
	}
	client := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}, MaxIdleConnsPerHost: concurrency,
	}}
	policy, err := engine.Load(context.Background(), policies.Embedded())
	if err != nil {
		return err
	}
	limits := policy.Limits()
	over := limits
	over.EnvTotal++ // the at-limits Job with one more env entry: just over envTotal
	over.EnvPerContainer++
	objects := []object{
		{"at-limits", worstcase.AtLimits(limits)},
		{"one-over-limits", worstcase.AtLimits(over)},
		{"env-flood-100000", worstcase.EnvFlood(100000)},
		{"containers-5000", worstcase.ManyContainers(5000)},
	}
	before, err := vm(pid)
	if err != nil {
		return err
	}
	for _, o := range objects {
		fmt.Printf("object %-18s %8d bytes of JSON\n", o.name, len(o.body))
	}
	fmt.Printf("webhook pid %d before: VmRSS %d KiB, VmHWM %d KiB\n", pid, before["VmRSS"], before["VmHWM"])

	type job struct {
		kind string
		path string
		body []byte
	}
	jobs := make(chan job)
	results := make(chan result)
	var wg sync.WaitGroup
	for range concurrency {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range jobs {
				t0 := time.Now()
				outcome := send(client, url+j.path, j.body)
				results <- result{kind: j.kind, latency: time.Since(t0), outcome: outcome}
			}
		}()
	}
	go func() {
		n := 0
		for range rounds {
			for _, o := range objects {
				for _, path := range []string{"/mutate-batch-v1-job", "/validate-batch-v1-job"} {
					n++
					jobs <- job{kind: o.name + " " + path, path: path, body: worstcase.Review(fmt.Sprintf("worst-%d", n), o.body)}
				}
			}
		}
		close(jobs)
		wg.Wait()
		close(results)
	}()
	byKind := map[string][]time.Duration{}
	outcomes := map[string]map[string]int{}
	for r := range results {
		byKind[r.kind] = append(byKind[r.kind], r.latency)
		if outcomes[r.kind] == nil {
			outcomes[r.kind] = map[string]int{}
		}
		outcomes[r.kind][r.outcome]++
	}
	after, err := vm(pid)
	if err != nil {
		return err
	}
	kinds := make([]string, 0, len(byKind))
	for k := range byKind {
		kinds = append(kinds, k)
	}
	slices.Sort(kinds)
	fmt.Printf("%d rounds, %d requests in flight\n", rounds, concurrency)
	for _, k := range kinds {
		l := byKind[k]
		slices.Sort(l)
		fmt.Printf("%-44s n=%-3d p50 %-8s p99 %-8s max %-8s %v\n", k, len(l), l[len(l)/2].Round(time.Millisecond), l[min(len(l)-1, len(l)*99/100)].Round(time.Millisecond), l[len(l)-1].Round(time.Millisecond), outcomes[k])
	}
	fmt.Printf("webhook pid %d after: VmRSS %d KiB, peak VmHWM %d KiB (%.0f MiB)\n", pid, after["VmRSS"], after["VmHWM"], float64(after["VmHWM"])/1024)
	return nil
}

// send posts one review and classifies the answer: admitted, denied (with
// the first words of why), http-<code> or an error.
func send(client *http.Client, url string, body []byte) string {
	resp, err := client.Post(url, "application/json", bytes.NewReader(body))
	if err != nil {
		return "error"
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return fmt.Sprintf("http-%d", resp.StatusCode)
	}
	var review struct {
		Response struct {
			Allowed bool `json:"allowed"`
			Status  struct {
				Code    int    `json:"code"`
				Message string `json:"message"`
			} `json:"status"`
		} `json:"response"`
	}
	if err := json.Unmarshal(data, &review); err != nil {
		return "bad-response"
	}
	if review.Response.Allowed {
		return "admitted"
	}
	if strings.Contains(review.Response.Status.Message, "over the limit") {
		return "refused-by-limit"
	}
	return fmt.Sprintf("denied-%d", review.Response.Status.Code)
}

// vm reads the VmRSS and VmHWM (peak RSS) of a process, in KiB.
func vm(pid int) (map[string]int64, error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return nil, err
	}
	defer f.Close()
	out := map[string]int64{}
	s := bufio.NewScanner(f)
	for s.Scan() {
		key, value, ok := strings.Cut(s.Text(), ":")
		if !ok || (key != "VmRSS" && key != "VmHWM") {
			continue
		}
		n, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(value), " kB"), 10, 64)
		if err != nil {
			return nil, fmt.Errorf("parse %s: %w", key, err)
		}
		out[key] = n
	}
	return out, s.Err()
}
