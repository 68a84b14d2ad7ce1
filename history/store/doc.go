// Package store keeps FlowForge's execution history: the implementations of
// history.Store and the debugging HTTP view of it.
//
// Two stores share one implementation over database/sql (sqlStore), so
// they have the same semantics by construction: the same statements
// (ON CONFLICT upserts keyed by UIDs, one-time marks, checkpoints, keyset
// pagination with row values), differing only in placeholders and
// column types.
//
//   - SQLite (the default): embedded, through the pure-Go modernc.org/sqlite
//     driver (no cgo, one file, WAL mode). It suits one active controller
//     replica with its database on a persistent volume.
//   - Postgres: through pgx (github.com/jackc/pgx/v5, its database/sql
//     driver), for more than one replica. Open picks it for a postgres://
//     URL.
//
// The schema is versioned (migrations.go): Open applies what a store lacks,
// each migration once, in a transaction (under an advisory lock on
// Postgres). Retention (Prune) removes the oldest exported records and
// archives in batches of one transaction each; Stats reports the size.
//
// Only the controller links this package: the CLI reads the history
// through the API server and imports package history alone, so it links
// no database driver.
package store
