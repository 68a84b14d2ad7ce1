// Package failover checks FlowForge's controller with two replicas on
// Postgres: two cmd/flowforge-controller processes share one history
// database (a real Postgres server, test/postgres) and elect a leader
// through a Lease. The test kills the leader (SIGKILL: no lease release, no
// cleanup) in the middle of a burst of Jobs and checks that the standby
// takes over and that every Job is recorded exactly once and exported,
// none lost or doubled. It measures the takeover: from the kill to the new
// leader's first reconcile.
package failover
