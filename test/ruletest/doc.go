// Package ruletest runs Prometheus rule unit tests, in the format of
// `promtool test rules`, as a library: unittest.go is promtool's own test
// runner (github.com/prometheus/prometheus v0.316.0, cmd/promtool, Apache
// 2.0), copied because cmd/promtool is package main. Building promtool
// itself would compile about 1,150 packages (its service discovery pulls
// in every cloud SDK); this package needs about 560, the PromQL engine and
// the rules manager, which are what evaluate the tests. deploy's
// TestPrometheusRules runs deploy/monitoring/prometheus-rule_test.yaml
// with it.
package ruletest
