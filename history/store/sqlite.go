package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	_ "modernc.org/sqlite" // registers the pure-Go "sqlite" driver

	"github.com/flowforge/flowforge/history"
)

// SQLite is the default Store: one file on the controller's volume.
type SQLite struct {
	sqlStore
	path string
}

var _ history.Store = (*SQLite)(nil)

// OpenSQLite opens (creating if needed) the database at path and brings
// its schema up to date (see migrations). ":memory:" gives a private
// in-memory database.
func OpenSQLite(ctx context.Context, path string) (*SQLite, error) {
	return openSQLite(ctx, path, SchemaVersion(), time.Now())
}

func openSQLite(ctx context.Context, path string, version int, now time.Time) (*SQLite, error) {
	dsn := "file::memory:"
	if path != ":memory:" {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			return nil, fmt.Errorf("history: create directory for %s: %w", path, err)
		}
		dsn = "file:" + path
	}
	dsn += "?_pragma=journal_mode(WAL)&_pragma=busy_timeout(10000)&_pragma=synchronous(NORMAL)"
	db, err := sql.Open("sqlite", dsn)
	if err != nil {
		return nil, fmt.Errorf("history: open %s: %w", path, err)
	}
	// One connection serialises writes, which SQLite does anyway, and keeps
	// an in-memory database a single database.
	db.SetMaxOpenConns(1)
	s := &SQLite{sqlStore: sqlStore{db: db}, path: path}
	s.d = dialect{name: "sqlite", size: s.size}
	if err := migrate(ctx, db, s.d, version, now); err != nil {
		db.Close() //nolint:errcheck,gosec // reporting the schema error
		return nil, fmt.Errorf("history: schema of %s: %w", path, err)
	}
	return s, nil
}

// size is the database's pages plus its write-ahead log: the space it
// takes on the volume. Pages freed by a prune stay in the file and are
// reused by later writes (the file does not shrink).
func (s *SQLite) size(ctx context.Context, db *sql.DB) (int64, error) {
	var pages, pageSize int64
	if err := db.QueryRowContext(ctx, `PRAGMA page_count`).Scan(&pages); err != nil {
		return 0, err
	}
	if err := db.QueryRowContext(ctx, `PRAGMA page_size`).Scan(&pageSize); err != nil {
		return 0, err
	}
	size := pages * pageSize
	if s.path != ":memory:" {
		wal, err := os.Stat(s.path + "-wal")
		if err == nil {
			size += wal.Size()
		} else if !errors.Is(err, fs.ErrNotExist) {
			return 0, err
		}
	}
	return size, nil
}

// Path is the database file (":memory:" for an in-memory one).
func (s *SQLite) Path() string { return s.path }
