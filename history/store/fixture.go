package store

import (
	"context"
	"database/sql"
	"fmt"
	"os"
)

// LoadSQLiteFixture creates the SQLite database path from an SQL script
// (a store as an earlier release wrote it: testdata/history-v1.sql), for
// upgrade tests. It applies no migrations: OpenSQLite does.
func LoadSQLiteFixture(ctx context.Context, path, script string) error {
	raw, err := os.ReadFile(script) //nolint:gosec // a test fixture path
	if err != nil {
		return fmt.Errorf("history: read fixture: %w", err)
	}
	db, err := sql.Open("sqlite", "file:"+path)
	if err != nil {
		return fmt.Errorf("history: open %s: %w", path, err)
	}
	defer db.Close() //nolint:errcheck // nothing written after the script
	if _, err := db.ExecContext(ctx, string(raw)); err != nil {
		return fmt.Errorf("history: load fixture %s: %w", script, err)
	}
	return nil
}
