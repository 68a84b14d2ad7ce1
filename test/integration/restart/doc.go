// Package restart checks that FlowForge's controller loses and
// double-counts nothing when it is stopped in the middle of an export and
// another instance (a restart, or a new leader) takes over with the same
// history store.
package restart
