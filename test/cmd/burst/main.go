// Command burst measures the controller under load: it creates N agent
// Jobs at once on the stack `make up` started (kwok plays the pods), waits
// until the controller has exported every one (its export count on
// /metrics; then it reads the execution history once, and requires one
// exported record per Job), and reports how many were recorded, the export
// lag (finished → exported) at p50 and p99, and the controller's resident
// memory (peak, and its anonymous and file-backed parts) and CPU. `make
// burst` runs it.
//
// With -ttl, every Job carries FlowForge's TTL annotation and the run also
// waits until the controller has deleted every Job, and reports how late
// each went: the time from the later of its TTL expiring and its export to
// its disappearing (1 s polling resolution).
package main

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/flowforge/flowforge/contract"
	"github.com/flowforge/flowforge/history"
	"github.com/flowforge/flowforge/test/localcluster"
)

func main() {
	kubeconfig := flag.String("kubeconfig", ".local/kubeconfig", "kubeconfig of the stack")
	historyURL := flag.String("history-url", os.Getenv("FLOWFORGE_HISTORY_URL"), "history API")
	namespace := flag.String("namespace", "flowforge-jobs", "namespace for the Jobs")
	n := flag.Int("jobs", 500, "number of Jobs")
	timeout := flag.Duration("timeout", 15*time.Minute, "give up after")
	ttl := flag.Duration("ttl", 0, "TTL after finishing (whole seconds); 0: none, the Jobs are kept")
	metricsURL := flag.String("metrics-url", os.Getenv("FLOWFORGE_CONTROLLER_METRICS"), "the controller's /metrics: the run watches its export count there, and reads the history once, after it has taken the controller's peak memory (empty: poll the history every 5 s)")
	pid := flag.Int("controller-pid", 0, "process id of the stack's controller (0: the first flowforge-controller process found, which on a machine running several stacks may be another's)")
	resetPeak := flag.Bool("reset-peak", false, "reset the controller's peak RSS (VmHWM, through /proc/PID/clear_refs) before the run, so that a run on a stack that already ran one reports its own peak")
	flag.Parse()
	if err := run(*kubeconfig, *historyURL, *metricsURL, *namespace, *n, *timeout, *ttl, *pid, *resetPeak); err != nil {
		fmt.Fprintf(os.Stderr, "burst: %v\n", err)
		os.Exit(1)
	}
}

func run(kubeconfig, historyURL, metricsURL, ns string, n int, timeout, ttl time.Duration, pid int, resetPeak bool) error {
	if historyURL == "" {
		return fmt.Errorf("no --history-url (or $FLOWFORGE_HISTORY_URL); source .local/endpoints.env")
	}
	cfg, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	if err != nil {
		return err
	}
	cfg.QPS, cfg.Burst = 200, 400
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return err
	}
	if pid == 0 {
		if pid, err = controllerPID(); err != nil {
			return err
		}
	}
	if resetPeak {
		// "5" resets the peak resident set size to the current one (proc(5)).
		if err := os.WriteFile(fmt.Sprintf("/proc/%d/clear_refs", pid), []byte("5"), 0); err != nil {
			return fmt.Errorf("reset the controller's peak RSS: %w", err)
		}
	}
	cpu0, err := cpuSeconds(pid)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	exports0 := 0
	if metricsURL != "" {
		if exports0, err = exportCount(ctx, metricsURL); err != nil {
			return err
		}
	}
	run := strconv.FormatInt(time.Now().Unix()%100000, 10)
	start := time.Now()
	since := start.Add(-time.Minute).UTC().Format(time.RFC3339)
	var wg sync.WaitGroup
	errs := make(chan error, n)
	sem := make(chan struct{}, 32)
	for i := range n {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			id := fmt.Sprintf("burst-%s-%d", run, i)
			if err := create(ctx, cs, ns, job(id, ttl)); err != nil {
				errs <- fmt.Errorf("create %s: %w", id, err)
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		return err
	}
	created := time.Since(start)
	fmt.Printf("created %d Jobs in %s\n", n, created.Round(time.Millisecond))

	hc := &history.Client{BaseURL: historyURL}
	var recs []history.Job
	peakRSS, peakAnon, peakFile := 0, 0, 0
	tick := 0
	gone := map[string]time.Time{}
	for {
		if rss, err := rssKiB(pid); err == nil && rss > peakRSS {
			peakRSS = rss
			peakAnon, _ = statusKiB(pid, "RssAnon")
			peakFile, _ = statusKiB(pid, "RssFile")
		}
		if ttl > 0 {
			if err := markGone(ctx, cs, ns, run, n, gone); err != nil {
				return err
			}
		}
		if metricsURL != "" {
			// The controller counts each Job's first export (the export lag
			// histogram); the history is read once, at the end.
			count, err := exportCount(ctx, metricsURL)
			if err != nil {
				return err
			}
			if count-exports0 >= n && (ttl == 0 || len(gone) == n) {
				break
			}
			if err := sleep(ctx, timeout, count-exports0, n, len(gone)); err != nil {
				return err
			}
			continue
		}
		// The history is read every historyEvery only: listing thousands of
		// records each second cost the controller (which serves the
		// history API) tens of MiB of transient memory, which the RSS
		// measured here showed. Lags come from the records' own times.
		if tick%historyEvery != 0 {
			tick++
			if err := sleep(ctx, timeout, len(recs), n, len(gone)); err != nil {
				return err
			}
			continue
		}
		tick++
		if recs, err = runRecords(ctx, hc, since, run); err != nil {
			return err
		}
		exported := 0
		for _, r := range recs {
			if r.Exported != nil {
				exported++
			}
		}
		if exported == n && (ttl == 0 || len(gone) == n) {
			break
		}
		if err := sleep(ctx, timeout, len(recs), n, len(gone)); err != nil {
			return fmt.Errorf("%w (%d exported)", err, exported)
		}
	}
	total := time.Since(start)
	cpu1, err := cpuSeconds(pid)
	if err != nil {
		return err
	}
	hwm, _ := peakKiB(pid)
	if metricsURL != "" {
		// After the peak is taken: reading thousands of records costs the
		// controller (which serves the history) tens of MiB for a moment,
		// which is the tool's load, not the Jobs'.
		if recs, err = runRecords(ctx, hc, since, run); err != nil {
			return err
		}
		exported := 0
		for _, r := range recs {
			if r.Exported != nil {
				exported++
			}
		}
		if len(recs) != n || exported != n {
			return fmt.Errorf("the controller counted %d exports, but the history holds %d records of this run, %d exported, for %d Jobs", n, len(recs), exported, n)
		}
	}
	var lags []time.Duration
	statuses := map[string]int{}
	for _, r := range recs {
		statuses[r.Status]++
		if r.Finished != nil && r.Exported != nil {
			lags = append(lags, r.Exported.Sub(*r.Finished))
		}
	}
	slices.Sort(lags)
	pct := func(p float64) time.Duration { return lags[min(len(lags)-1, int(p*float64(len(lags))))] }
	fmt.Printf("all %d Jobs recorded and exported in %s; statuses %v\n", len(recs), total.Round(time.Second), statuses)
	fmt.Printf("export lag (finished -> exported; finish times have 1s resolution): p50 %s  p99 %s  max %s\n",
		pct(0.5).Round(10*time.Millisecond), pct(0.99).Round(10*time.Millisecond), pct(1).Round(10*time.Millisecond))
	fmt.Printf("controller: peak RSS %d MiB (sampled %d MiB: %d MiB anonymous, %d MiB file-backed, the binary's pages), CPU %.1fs over %s (%.2f cores on average)\n",
		max(hwm, peakRSS)/1024, peakRSS/1024, peakAnon/1024, peakFile/1024, cpu1-cpu0, total.Round(time.Second), (cpu1-cpu0)/total.Seconds())
	if ttl > 0 {
		reportDeletions(recs, gone, ttl)
	}
	return nil
}

// create creates a Job, retrying while the webhook refuses it for load
// (it answers a capped number of admissions at once and refuses the rest
// with a retryable error, as a client under load would see).
func create(ctx context.Context, cs kubernetes.Interface, ns string, j *batchv1.Job) error {
	backoff := 50 * time.Millisecond
	for attempt := 1; ; attempt++ {
		_, err := cs.BatchV1().Jobs(ns).Create(ctx, j, metav1.CreateOptions{})
		if err == nil || attempt == 50 || !(apierrors.IsInternalError(err) || apierrors.IsTooManyRequests(err) || apierrors.IsServerTimeout(err)) {
			return err
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, time.Second)
	}
}

// runRecords reads this run's records: the history keeps earlier bursts'.
func runRecords(ctx context.Context, hc *history.Client, since, run string) ([]history.Job, error) {
	all, err := hc.Jobs(ctx, "burst", "", since, 100000)
	if err != nil {
		return nil, err
	}
	var recs []history.Job
	for _, r := range all {
		if strings.HasPrefix(r.ID, "burst-"+run+"-") {
			recs = append(recs, r)
		}
	}
	return recs, nil
}

// exportCount reads how many Jobs the controller has exported since it
// started: the count of flowforge_export_lag_seconds, which it observes
// once per Job, on the Job's first export mark.
func exportCount(ctx context.Context, metricsURL string) (int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, metricsURL, nil)
	if err != nil {
		return 0, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, fmt.Errorf("read the controller's metrics: %w", err)
	}
	defer resp.Body.Close() //nolint:errcheck // read-only
	if resp.StatusCode != http.StatusOK {
		return 0, fmt.Errorf("read the controller's metrics: %s", resp.Status)
	}
	s := bufio.NewScanner(resp.Body)
	s.Buffer(make([]byte, 64<<10), 1<<20)
	for s.Scan() {
		if rest, ok := strings.CutPrefix(s.Text(), "flowforge_export_lag_seconds_count "); ok {
			v, err := strconv.ParseFloat(strings.TrimSpace(rest), 64)
			if err != nil {
				return 0, fmt.Errorf("flowforge_export_lag_seconds_count: %w", err)
			}
			return int(v), nil
		}
	}
	if err := s.Err(); err != nil {
		return 0, fmt.Errorf("read the controller's metrics: %w", err)
	}
	return 0, fmt.Errorf("no flowforge_export_lag_seconds_count in %s", metricsURL)
}

// historyEvery is how many one-second polls pass between reads of the
// history (RSS and deletions are polled every second).
const historyEvery = 5

// sleep waits a second, or reports that the run timed out.
func sleep(ctx context.Context, timeout time.Duration, recorded, n, gone int) error {
	select {
	case <-ctx.Done():
		return fmt.Errorf("after %s: %d of %d Jobs recorded, %d deleted", timeout, recorded, n, gone)
	case <-time.After(time.Second):
		return nil
	}
}

// markGone records when each of this run's Jobs was first seen gone.
func markGone(ctx context.Context, cs kubernetes.Interface, ns, run string, n int, gone map[string]time.Time) error {
	list, err := cs.BatchV1().Jobs(ns).List(ctx, metav1.ListOptions{LabelSelector: contract.LabelUserID + "=burst"})
	if err != nil {
		return err
	}
	now := time.Now()
	present := map[string]bool{}
	for _, j := range list.Items {
		present[j.Labels[contract.LabelJobID]] = true
	}
	for i := range n {
		id := fmt.Sprintf("burst-%s-%d", run, i)
		if _, seen := gone[id]; !seen && !present[id] {
			gone[id] = now
		}
	}
	return nil
}

// reportDeletions prints how late after "TTL expired and exported" each
// Job was seen gone.
func reportDeletions(recs []history.Job, gone map[string]time.Time, ttl time.Duration) {
	var late []time.Duration
	early := 0
	for _, r := range recs {
		at, ok := gone[r.ID]
		if !ok || r.Finished == nil || r.Exported == nil {
			continue
		}
		due := r.Finished.Add(ttl)
		if r.Exported.After(due) {
			due = *r.Exported
		}
		if at.Before(r.Finished.Add(ttl)) || at.Before(*r.Exported) {
			early++
		}
		late = append(late, max(0, at.Sub(due)))
	}
	if len(late) == 0 {
		fmt.Println("no deletion measured")
		return
	}
	slices.Sort(late)
	pct := func(p float64) time.Duration { return late[min(len(late)-1, int(p*float64(len(late))))] }
	fmt.Printf("deleted all %d Jobs (TTL %s); deletion after max(finished+TTL, exported): p50 %s  p99 %s  max %s; deleted before their TTL or export: %d\n",
		len(late), ttl, pct(0.5).Round(10*time.Millisecond), pct(0.99).Round(10*time.Millisecond), pct(1).Round(10*time.Millisecond), early)
}

// job is a plain labelled agent Job that runs briefly and prints a few lines.
func job(id string, ttl time.Duration) *batchv1.Job {
	j := &batchv1.Job{
		ObjectMeta: metav1.ObjectMeta{
			Name:        contract.JobName(id),
			Labels:      map[string]string{contract.LabelApp: contract.AppName, contract.LabelJobID: id, contract.LabelUserID: "burst"},
			Annotations: map[string]string{contract.AnnotationRepository: "acme/widgets"},
		},
		Spec: batchv1.JobSpec{Template: corev1.PodTemplateSpec{
			ObjectMeta: metav1.ObjectMeta{Annotations: map[string]string{
				localcluster.AnnotationDuration:    "2s",
				localcluster.AnnotationLogs:        "cloning\nworking\ndone",
				localcluster.AnnotationLogInterval: "300ms",
			}},
			Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "worker", Image: "ghcr.io/flowforge/claude-worker:1.4.0"}}},
		}},
	}
	if ttl > 0 {
		j.Annotations[contract.AnnotationTTLSecondsAfterFinished] = strconv.Itoa(int(ttl / time.Second))
	}
	return j
}

// controllerPID finds the flowforge-controller process of `make up`.
func controllerPID() (int, error) {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return 0, err
	}
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		cmd, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err == nil && strings.Contains(strings.SplitN(string(cmd), "\x00", 2)[0], "flowforge-controller") {
			return pid, nil
		}
	}
	return 0, fmt.Errorf("no flowforge-controller process: run make up")
}

func statusKiB(pid int, field string) (int, error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	defer f.Close() //nolint:errcheck // read-only
	s := bufio.NewScanner(f)
	for s.Scan() {
		if rest, ok := strings.CutPrefix(s.Text(), field+":"); ok {
			return strconv.Atoi(strings.Fields(rest)[0])
		}
	}
	return 0, fmt.Errorf("%s not found", field)
}

func rssKiB(pid int) (int, error)  { return statusKiB(pid, "VmRSS") }
func peakKiB(pid int) (int, error) { return statusKiB(pid, "VmHWM") }

// cpuSeconds is the process's user plus system time.
func cpuSeconds(pid int) (float64, error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	fields := strings.Fields(string(data[strings.LastIndexByte(string(data), ')')+2:]))
	utime, _ := strconv.ParseFloat(fields[11], 64)
	stime, _ := strconv.ParseFloat(fields[12], 64)
	return (utime + stime) / 100, nil // USER_HZ is 100 on Linux
}
