// Package usage tests, on the local cluster, that each attempt's peak CPU
// and memory reach the execution history end to end: kwok plays the
// kubelet's resource metrics for pods that say what they use, metrics-server
// scrapes them and serves metrics.k8s.io as an aggregated API, and the
// controller samples it and writes the peaks at export.
package usage
