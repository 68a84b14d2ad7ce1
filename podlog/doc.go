// Package podlog is FlowForge's one model of a Job's pods and their logs,
// shared by the Jobs client (jobs/, which streams them to a user) and the
// controller (controller/, which ships and archives them): which pod is
// which attempt, whether a container ran and so has logs, whether a pod will
// write nothing more, and how a timestamped log line splits.
//
// It does no I/O. Before it existed the client and the controller each had
// a copy, and the copies had drifted (a line without a timestamp was kept by
// one and dropped by the other; pods were ordered by two different sorts).
package podlog
