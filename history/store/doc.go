// Package store keeps FlowForge's execution history: the implementations of
// history.Store and the debugging HTTP view of it.
//
// The default implementation is embedded SQLite through the pure-Go
// modernc.org/sqlite driver (no cgo, one file, WAL mode). It suits one
// active controller replica with its database on a persistent volume.
//
// Only the controller links this package: the CLI reads the history
// through the API server and imports package history alone, so it links
// no database driver.
package store
