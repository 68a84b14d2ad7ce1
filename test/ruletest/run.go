package ruletest

import (
	"fmt"
	"io"
	"math"
	"strconv"
	"time"

	"github.com/prometheus/prometheus/promql/parser"
	"github.com/prometheus/prometheus/promql/promqltest"
	"github.com/prometheus/prometheus/util/junitxml"
)

// The exit codes of promtool, which unittest.go returns.
const (
	successExitCode = 0
	failureExitCode = 1
)

// Run runs the rule unit tests of file (promtool's format; its rule_files
// are relative to it) with promtool's default options, and returns their
// failures: none means every test passed.
func Run(file string) []error {
	opts := promqltest.LazyLoaderOpts{EnableAtModifier: true, EnableNegativeOffset: true}
	suite := (&junitxml.JUnitXML{}).Suite(file)
	return ruleUnitTest(file, opts, parser.NewParser(parser.Options{}), nil, false, false, false, suite)
}

// unused keeps promtool's entry points, which Run does not call, compiled.
var _ = func(w io.Writer) int {
	return RulesUnitTestResult(w, promqltest.LazyLoaderOpts{}, parser.NewParser(parser.Options{}), nil, false, false, false)
}

// parseTime is promtool's (cmd/promtool/query.go), which unittest.go uses.
func parseTime(s string) (time.Time, error) {
	if t, err := strconv.ParseFloat(s, 64); err == nil {
		s, ns := math.Modf(t)
		return time.Unix(int64(s), int64(ns*float64(time.Second))).UTC(), nil
	}
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t, nil
	}
	return time.Time{}, fmt.Errorf("cannot parse %q to a valid timestamp", s)
}
