// Package postgres starts a real PostgreSQL server for tests: Debian's
// postgresql binaries (initdb, postgres) in a temporary directory, listening
// on a free loopback port only, with trust authentication for the
// "postgres" role. Postgres refuses to run as root and CI runs as root, so
// when the test process is root the server runs as the package's `postgres`
// OS user. The server dies with the test process (Pdeathsig) and Stop
// removes its directory.
//
// The binaries come from $FLOWFORGE_POSTGRES_BIN, else the newest
// /usr/lib/postgresql/<version>/bin, else $PATH; `.ci/run` installs the
// Debian package where it is missing.
//
// The server trades durability for speed (fsync off): it is for tests only.
package postgres
