package controller

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	batchv1 "k8s.io/api/batch/v1"
	"k8s.io/utils/clock"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"

	"github.com/flowforge/flowforge/contract"
)

// stateCollector reports the current state of the labelled Jobs from the
// controller's cache at scrape time, so the gauges are right after a
// restart without any bookkeeping.
type stateCollector struct {
	reader       client.Reader
	clock        clock.PassiveClock
	jobFinalizer string
	byPhase      *prometheus.Desc
	awaiting     *prometheus.Desc
	oldest       *prometheus.Desc
}

// NewStateCollector reads Jobs through reader (the manager's cache).
func NewStateCollector(reader client.Reader, clk clock.PassiveClock, jobFinalizer string) prometheus.Collector {
	return &stateCollector{
		reader: reader, clock: clk, jobFinalizer: jobFinalizer,
		byPhase:  prometheus.NewDesc("flowforge_jobs", "FlowForge Jobs in the cluster, by phase.", []string{"phase"}, nil),
		awaiting: prometheus.NewDesc("flowforge_jobs_awaiting_export", "Finished Jobs whose export has not completed; they are kept by the export finalizer.", nil, nil),
		oldest:   prometheus.NewDesc("flowforge_export_oldest_pending_seconds", "How long the oldest finished Job has waited for its export (0 if none).", nil, nil),
	}
}

func (c *stateCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.byPhase
	ch <- c.awaiting
	ch <- c.oldest
}

func (c *stateCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	var list batchv1.JobList
	// Read only: no deep copy of every cached Job on each scrape.
	if err := c.reader.List(ctx, &list, client.UnsafeDisableDeepCopy); err != nil {
		return
	}
	counts := map[contract.Phase]float64{}
	for _, p := range []contract.Phase{contract.PhasePending, contract.PhaseRunning, contract.PhaseCancelling, contract.PhaseSucceeded, contract.PhaseFailed, contract.PhaseCancelled, contract.PhaseTimedOut} {
		counts[p] = 0
	}
	awaiting, oldest := 0.0, 0.0
	for i := range list.Items {
		job := &list.Items[i]
		counts[contract.StatusOf(job).Phase]++
		if finished(job) && controllerutil.ContainsFinalizer(job, c.jobFinalizer) {
			awaiting++
			if waited := c.clock.Since(finishedAt(job)).Seconds(); waited > oldest {
				oldest = waited
			}
		}
	}
	for phase, n := range counts {
		ch <- prometheus.MustNewConstMetric(c.byPhase, prometheus.GaugeValue, n, string(phase))
	}
	ch <- prometheus.MustNewConstMetric(c.awaiting, prometheus.GaugeValue, awaiting)
	ch <- prometheus.MustNewConstMetric(c.oldest, prometheus.GaugeValue, oldest)
}
