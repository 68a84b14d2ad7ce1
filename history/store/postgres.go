package store

import (
	"context"
	"database/sql"
	"fmt"
	"net/url"
	"strings"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // registers pgx's database/sql driver, "pgx"

	"github.com/flowforge/flowforge/history"
)

// migrationLock is the Postgres advisory lock key that serialises schema
// migrations between replicas starting together ("flowforg" in ASCII).
const migrationLock = 0x666c6f77666f7267

// Postgres is the Store for more than one controller replica: a Postgres
// database through pgx (database/sql with pgx's stdlib driver), with the
// same statements, and so the same semantics, as SQLite.
type Postgres struct {
	sqlStore
}

var _ history.Store = (*Postgres)(nil)

// IsPostgresURL reports whether database names a Postgres database
// (postgres:// or postgresql://) rather than an SQLite file.
func IsPostgresURL(database string) bool {
	return strings.HasPrefix(database, "postgres://") || strings.HasPrefix(database, "postgresql://")
}

// OpenPostgres connects to the database at url (postgres://user@host:port/db?sslmode=...;
// the password is best left to $PGPASSWORD or a passfile, which pgx reads)
// and brings its schema up to date.
func OpenPostgres(ctx context.Context, url string) (*Postgres, error) {
	return openPostgres(ctx, url, SchemaVersion(), time.Now())
}

func openPostgres(ctx context.Context, dsn string, version int, now time.Time) (*Postgres, error) {
	if !IsPostgresURL(dsn) {
		return nil, fmt.Errorf("history: %q is not a postgres:// URL", Redact(dsn))
	}
	db, err := sql.Open("pgx", dsn)
	if err != nil {
		return nil, fmt.Errorf("history: open %s: %w", Redact(dsn), err)
	}
	db.SetMaxOpenConns(16)
	db.SetMaxIdleConns(4)
	db.SetConnMaxIdleTime(5 * time.Minute)
	if err := db.PingContext(ctx); err != nil {
		db.Close() //nolint:errcheck,gosec // reporting the connection error
		return nil, fmt.Errorf("history: connect to %s: %w", Redact(dsn), err)
	}
	s := &Postgres{sqlStore: sqlStore{db: db, d: dialect{
		name:   "postgres",
		dollar: true,
		lock:   fmt.Sprintf("SELECT pg_advisory_xact_lock(%d)", migrationLock),
		size: func(ctx context.Context, db *sql.DB) (int64, error) {
			var n int64
			err := db.QueryRowContext(ctx, `SELECT pg_database_size(current_database())`).Scan(&n)
			return n, err
		},
	}}}
	if err := migrate(ctx, db, s.d, version, now); err != nil {
		db.Close() //nolint:errcheck,gosec // reporting the schema error
		return nil, fmt.Errorf("history: schema of %s: %w", Redact(dsn), err)
	}
	return s, nil
}

// Redact returns a database name fit for logs: a URL's password is
// replaced by "xxxxx" (an SQLite path is returned as is).
func Redact(database string) string {
	if !IsPostgresURL(database) {
		return database
	}
	u, err := url.Parse(database)
	if err != nil {
		return "postgres://(unparsable URL)"
	}
	if q := u.Query(); q.Has("password") {
		q.Set("password", "xxxxx")
		u.RawQuery = q.Encode()
	}
	return u.Redacted()
}

// Open opens the store named by database: a postgres:// URL, or else the
// path of an SQLite file (the embedded default).
func Open(ctx context.Context, database string) (history.Store, error) {
	if IsPostgresURL(database) {
		return OpenPostgres(ctx, database)
	}
	return OpenSQLite(ctx, database)
}
