package controller

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/go-logr/logr"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/rest"
	metricsv1beta1 "k8s.io/metrics/pkg/apis/metrics/v1beta1"
	metricsclient "k8s.io/metrics/pkg/client/clientset/versioned"
	"k8s.io/utils/clock"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/flowforge/flowforge/contract"
)

// DefaultUsageInterval is how often UsageSampler polls metrics.k8s.io by
// default: metrics-server's default resolution is 15s, so polling faster
// reads the same samples again.
const DefaultUsageInterval = 15 * time.Second

// usageRediscoverEvery is how often the sampler asks discovery again
// whether metrics.k8s.io is served, while it is not.
const usageRediscoverEvery = time.Minute

// metricsGroupVersion is the API PodMetrics are read from.
var metricsGroupVersion = metricsv1beta1.SchemeGroupVersion.String()

// Peak is the highest resource use seen of one attempt (pod): CPU in
// millicores and memory working set in bytes, each of its containers
// together. Each is the highest of its own samples, so the two may come
// from different moments.
type Peak struct {
	CPUMillicores int64
	MemoryBytes   int64
}

// UsageSampler records the peak CPU and memory of every running pod of a
// FlowForge Job from metrics.k8s.io (PodMetrics, served by metrics-server
// or an equivalent adapter), so that the export writes them into each
// attempt's history record.
//
// It polls every Interval, with one list of the selected pods' metrics
// across namespaces, and keeps the highest value per pod in memory: one
// entry per pod in flight (a pod leaves when its Job is exported, or when
// it is gone from the cache). When metrics.k8s.io is not served it records
// nothing, says so once, and asks discovery again every minute. A new
// leader starts with no samples: peaks seen by the previous one are lost
// for pods still running, and its peaks are those seen since.
type UsageSampler struct {
	// Metrics reads PodMetrics and discovers whether they are served.
	Metrics metricsclient.Interface
	// Pods reads the pods in flight: the manager's cache, which holds the
	// selected pods only. Entries of pods no longer in it are dropped. Nil
	// keeps entries until Forget.
	Pods client.Reader
	// Selector selects FlowForge's pods (the policy data selector).
	Selector func() labels.Selector
	Clock    clock.Clock
	// Interval between polls (default DefaultUsageInterval).
	Interval time.Duration
	Log      logr.Logger

	mu    sync.Mutex
	peaks map[types.NamespacedName]Peak
	// served is what discovery last said; checked is when it was asked
	// (zero: never).
	served  bool
	checked time.Time
	// failing is whether the last list failed (logged on change only).
	failing bool
}

// NeedLeaderElection: only the leader exports, so only it samples.
func (u *UsageSampler) NeedLeaderElection() bool { return true }

// Start polls until ctx ends.
func (u *UsageSampler) Start(ctx context.Context) error {
	interval := u.Interval
	if interval <= 0 {
		interval = DefaultUsageInterval
	}
	for {
		u.Poll(ctx)
		select {
		case <-ctx.Done():
			return nil
		case <-u.Clock.After(interval):
		}
	}
}

// Poll takes one sample of every selected pod's usage, if metrics.k8s.io
// is served.
func (u *UsageSampler) Poll(ctx context.Context) {
	if !u.available(ctx) {
		return
	}
	opts := metav1.ListOptions{}
	if u.Selector != nil {
		opts.LabelSelector = u.Selector().String()
	}
	list, err := u.Metrics.MetricsV1beta1().PodMetricses(metav1.NamespaceAll).List(ctx, opts)
	if err != nil {
		if ctx.Err() != nil {
			return
		}
		u.listFailed(err)
		return
	}
	u.listSucceeded(len(list.Items))
	seen := make(map[types.NamespacedName]bool, len(list.Items))
	u.mu.Lock()
	if u.peaks == nil {
		u.peaks = map[types.NamespacedName]Peak{}
	}
	for i := range list.Items {
		key := types.NamespacedName{Namespace: list.Items[i].Namespace, Name: list.Items[i].Name}
		seen[key] = true
		sample := podUsage(&list.Items[i])
		p := u.peaks[key]
		p.CPUMillicores = max(p.CPUMillicores, sample.CPUMillicores)
		p.MemoryBytes = max(p.MemoryBytes, sample.MemoryBytes)
		u.peaks[key] = p
	}
	u.mu.Unlock()
	u.prune(ctx, seen)
}

// podUsage sums a PodMetrics' containers.
func podUsage(m *metricsv1beta1.PodMetrics) Peak {
	var p Peak
	for _, c := range m.Containers {
		if q, ok := c.Usage[corev1.ResourceCPU]; ok {
			p.CPUMillicores += q.MilliValue()
		}
		if q, ok := c.Usage[corev1.ResourceMemory]; ok {
			p.MemoryBytes += q.Value()
		}
	}
	return p
}

// prune drops the entries of pods that are neither in this poll's
// metrics nor in the cache: their Jobs were exported or deleted. Only the
// pods missing from the metrics (ended, awaiting their export) are looked
// up, one cache read each, so a poll costs nothing per running pod.
func (u *UsageSampler) prune(ctx context.Context, seen map[types.NamespacedName]bool) {
	if u.Pods == nil {
		return
	}
	u.mu.Lock()
	var missing []types.NamespacedName
	for key := range u.peaks {
		if !seen[key] {
			missing = append(missing, key)
		}
	}
	u.mu.Unlock()
	var gone []types.NamespacedName
	for _, key := range missing {
		err := u.Pods.Get(ctx, key, &corev1.Pod{})
		switch {
		case apierrors.IsNotFound(err):
			gone = append(gone, key)
		case err != nil:
			u.Log.V(1).Info("Cannot read a pod to prune its usage samples", "pod", key.String(), "error", err.Error())
		}
	}
	u.mu.Lock()
	defer u.mu.Unlock()
	for _, key := range gone {
		delete(u.peaks, key)
	}
}

// available reports whether metrics.k8s.io is served, asking discovery
// at first and then again every usageRediscoverEvery while it is not.
func (u *UsageSampler) available(ctx context.Context) bool {
	now := u.Clock.Now()
	u.mu.Lock()
	served, checked := u.served, u.checked
	u.mu.Unlock()
	if served || (!checked.IsZero() && now.Sub(checked) < usageRediscoverEvery) {
		return served
	}
	_, err := u.Metrics.Discovery().ServerResourcesForGroupVersion(metricsGroupVersion)
	if ctx.Err() != nil {
		return false
	}
	served = err == nil
	u.mu.Lock()
	first := u.checked.IsZero()
	u.served, u.checked = served, now
	u.mu.Unlock()
	switch {
	case served:
		u.Log.Info("metrics.k8s.io is served: recording each attempt's peak CPU and memory", "interval", u.Interval.String())
	case first && apierrors.IsNotFound(err):
		u.Log.Info("metrics.k8s.io is not served (no metrics-server): attempts' peak CPU and memory are not recorded; checking again every minute")
	case first:
		u.Log.Info("Cannot discover metrics.k8s.io: attempts' peak CPU and memory are not recorded until it answers", "error", err.Error())
	}
	return served
}

// listFailed notes a failed list: the API went away (NotFound, after an
// uninstall) or is unavailable. Logged when it starts failing, not on
// every poll; discovery is asked again.
func (u *UsageSampler) listFailed(err error) {
	u.mu.Lock()
	wasFailing := u.failing
	u.failing = true
	if apierrors.IsNotFound(err) {
		u.served, u.checked = false, u.Clock.Now()
	}
	u.mu.Unlock()
	if !wasFailing {
		u.Log.Info("Cannot read pod metrics from metrics.k8s.io; peaks are not sampled until it answers", "error", err.Error())
	}
}

func (u *UsageSampler) listSucceeded(pods int) {
	u.mu.Lock()
	wasFailing := u.failing
	u.failing = false
	u.mu.Unlock()
	if wasFailing {
		u.Log.Info("Reading pod metrics from metrics.k8s.io again", "pods", pods)
	}
}

// Peak returns the highest usage seen of a pod, and whether it was seen.
// A nil sampler has seen nothing.
func (u *UsageSampler) Peak(pod *corev1.Pod) (Peak, bool) {
	if u == nil {
		return Peak{}, false
	}
	u.mu.Lock()
	defer u.mu.Unlock()
	p, ok := u.peaks[types.NamespacedName{Namespace: pod.Namespace, Name: pod.Name}]
	return p, ok
}

// Forget drops the samples of exported pods.
func (u *UsageSampler) Forget(pods []corev1.Pod) {
	if u == nil {
		return
	}
	u.mu.Lock()
	defer u.mu.Unlock()
	for i := range pods {
		delete(u.peaks, types.NamespacedName{Namespace: pods[i].Namespace, Name: pods[i].Name})
	}
}

// Tracked is the number of pods with samples (for tests and debugging).
func (u *UsageSampler) Tracked() int {
	u.mu.Lock()
	defer u.mu.Unlock()
	return len(u.peaks)
}

// recordUsage writes each attempt's peaks, as sampled, into its history
// record (the export calls it; attempts never sampled are left as they
// are). The store keeps the higher of what it has and what is written.
func (r *Reconciler) recordUsage(ctx context.Context, job *batchv1.Job, pods []corev1.Pod) error {
	if r.Usage == nil {
		return nil
	}
	for i := range pods {
		peak, ok := r.Usage.Peak(&pods[i])
		if !ok {
			continue
		}
		a := attemptOf(job, &pods[i], i+1)
		a.PeakCPUMillicores, a.PeakMemoryBytes = peak.CPUMillicores, peak.MemoryBytes
		if same, sum := r.memo.unchanged("attempt/"+a.PodUID, a); !same {
			if _, err := r.Store.UpsertAttempt(ctx, a); err != nil {
				return err
			}
			r.memo.remember("attempt/"+a.PodUID, sum)
		}
	}
	return nil
}

// newUsageSampler builds the sampler the controller runs, or nil when
// interval is negative (sampling off).
func newUsageSampler(cfg *rest.Config, interval time.Duration, pods client.Reader, settings func() Settings, clk clock.Clock, log logr.Logger) (*UsageSampler, error) {
	if interval < 0 {
		log.Info("Sampling of attempts' peak CPU and memory is off")
		return nil, nil //nolint:nilnil // no sampler: sampling is off

	}
	if interval == 0 {
		interval = DefaultUsageInterval
	}
	cs, err := metricsclient.NewForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("metrics.k8s.io client: %w", err)
	}
	return &UsageSampler{
		Metrics: cs, Pods: pods, Clock: clk, Interval: interval, Log: log,
		Selector: func() labels.Selector {
			s := settings()
			label, value := s.SelectorLabel, s.SelectorValue
			if label == "" {
				label, value = contract.LabelApp, contract.AppName
			}
			return labels.SelectorFromSet(labels.Set{label: value})
		},
	}, nil
}
