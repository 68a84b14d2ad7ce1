// Package policytest lays out policy directories for tests: a copy of a
// policy set, and the same files as the kubelet mounts a ConfigMap. It is
// imported by tests only.
package policytest
