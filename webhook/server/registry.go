package server

import (
	"github.com/prometheus/client_golang/prometheus"
	crmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"
)

// ctrlMetricsRegistry is the registry controller-runtime's metrics server serves.
func ctrlMetricsRegistry() prometheus.Registerer { return crmetrics.Registry }
