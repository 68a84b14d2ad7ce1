// Package chaos runs FlowForge's fault run (test/chaos) on a local stack of
// FlowForge's own programs, built fresh for the test, in a shorter version
// than `make chaos`: every fault in turn under a stream of 52 Job creates a
// second, with no failed admission, and every Job recorded and exported
// once.
package chaos
