package store

import (
	"context"
	"database/sql"
	"fmt"
	"strings"

	"github.com/flowforge/flowforge/history"
)

const (
	defaultPruneBatch = 500
	maxPruneBatch     = 5000
)

// candidate is a record retention may remove, in scan order.
type candidate struct {
	uid     string
	created int64
}

// Prune removes whole records created before req.Before, then the log
// archives of the oldest records until the archives fit
// req.MaxArchiveBytes. Only exported records are candidates, oldest first
// (creation time, then UID), and req.Keep spares more. Each batch is one
// transaction: a prune cut short (an error, the context ending) leaves
// whole records, never half of one, and the next prune goes on.
func (s *sqlStore) Prune(ctx context.Context, req history.PruneRequest) (history.PruneResult, error) {
	var res history.PruneResult
	batch := req.Batch
	if batch <= 0 {
		batch = defaultPruneBatch
	}
	batch = min(batch, maxPruneBatch)
	keep := req.Keep
	if keep == nil {
		keep = func(string) bool { return false }
	}
	if !req.Before.IsZero() {
		err := s.scan(ctx, `exported_at IS NOT NULL AND created_at < ?`, []any{req.Before.UnixMilli()}, batch, func(batch []candidate) (bool, error) {
			var uids []string
			for _, c := range batch {
				if !keep(c.uid) {
					uids = append(uids, c.uid)
				}
			}
			if len(uids) == 0 {
				return true, nil
			}
			archives, bytes, err := s.deleteRecords(ctx, uids)
			if err != nil {
				return false, err
			}
			res.Records += int64(len(uids))
			res.Archives += archives
			res.ArchiveBytes += bytes
			res.UIDs = append(res.UIDs, uids...)
			return true, nil
		})
		if err != nil {
			return res, err
		}
	}
	if req.MaxArchiveBytes <= 0 {
		return res, nil
	}
	var total int64
	if err := s.queryRow(ctx, `SELECT COALESCE(SUM(stored_bytes), 0) FROM log_archives`).Scan(&total); err != nil {
		return res, fmt.Errorf("history: prune: sum archive sizes: %w", err)
	}
	err := s.scan(ctx, `exported_at IS NOT NULL AND logs_pruned_at IS NULL`, nil, batch, func(batch []candidate) (bool, error) {
		if total <= req.MaxArchiveBytes {
			return false, nil
		}
		var uids []string
		for _, c := range batch {
			if !keep(c.uid) {
				uids = append(uids, c.uid)
			}
		}
		if len(uids) == 0 {
			return true, nil
		}
		sizes, err := s.archiveSizes(ctx, uids)
		if err != nil {
			return false, err
		}
		var picked []string
		for _, uid := range uids {
			if total <= req.MaxArchiveBytes {
				break
			}
			if sizes[uid].bytes > 0 {
				picked = append(picked, uid)
				total -= sizes[uid].bytes
				res.CapArchives += sizes[uid].count
				res.CapArchiveBytes += sizes[uid].bytes
			}
		}
		if len(picked) > 0 {
			if err := s.deleteArchives(ctx, picked, req.Now.UnixMilli()); err != nil {
				return false, err
			}
		}
		return total > req.MaxArchiveBytes, nil
	})
	return res, err
}

// scan calls fn with the candidates matching cond, oldest first, a batch
// at a time, until fn returns false or none are left. The cursor is the
// last candidate read, so removing candidates does not skip any.
func (s *sqlStore) scan(ctx context.Context, cond string, args []any, batch int, fn func([]candidate) (bool, error)) error {
	var after *candidate
	for {
		q := `SELECT uid, created_at FROM jobs WHERE ` + cond
		a := append([]any{}, args...)
		if after != nil {
			q += ` AND (created_at, uid) > (?, ?)`
			a = append(a, after.created, after.uid)
		}
		q += fmt.Sprintf(` ORDER BY created_at, uid LIMIT %d`, batch)
		rows, err := s.query(ctx, q, a...)
		if err != nil {
			return fmt.Errorf("history: prune: list candidates: %w", err)
		}
		var cs []candidate
		for rows.Next() {
			var c candidate
			if err := rows.Scan(&c.uid, &c.created); err != nil {
				_ = rows.Close()
				return fmt.Errorf("history: prune: list candidates: %w", err)
			}
			cs = append(cs, c)
		}
		if err := rows.Err(); err != nil {
			_ = rows.Close()
			return fmt.Errorf("history: prune: list candidates: %w", err)
		}
		_ = rows.Close()
		if len(cs) == 0 {
			return nil
		}
		more, err := fn(cs)
		if err != nil || !more || len(cs) < batch {
			return err
		}
		after = &cs[len(cs)-1]
	}
}

func placeholders(n int) string {
	return strings.TrimSuffix(strings.Repeat("?, ", n), ", ")
}

func anys(ss []string) []any {
	out := make([]any, len(ss))
	for i, s := range ss {
		out[i] = s
	}
	return out
}

type archiveSize struct{ count, bytes int64 }

func (s *sqlStore) archiveSizes(ctx context.Context, uids []string) (map[string]archiveSize, error) {
	rows, err := s.query(ctx, `SELECT job_uid, COUNT(*), COALESCE(SUM(stored_bytes), 0) FROM log_archives WHERE job_uid IN (`+placeholders(len(uids))+`) GROUP BY job_uid`, anys(uids)...)
	if err != nil {
		return nil, fmt.Errorf("history: prune: archive sizes: %w", err)
	}
	defer rows.Close() //nolint:errcheck // read-only
	out := map[string]archiveSize{}
	for rows.Next() {
		var uid string
		var sz archiveSize
		if err := rows.Scan(&uid, &sz.count, &sz.bytes); err != nil {
			return nil, fmt.Errorf("history: prune: archive sizes: %w", err)
		}
		out[uid] = sz
	}
	return out, rows.Err()
}

// deleteArchives removes the log archives of the given records and marks
// the records' logs pruned, in one transaction.
func (s *sqlStore) deleteArchives(ctx context.Context, uids []string, now int64) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("history: prune: begin: %w", err)
	}
	defer tx.Rollback() //nolint:errcheck // no-op after commit
	in := placeholders(len(uids))
	if _, err := tx.ExecContext(ctx, s.d.rebind(`DELETE FROM log_archives WHERE job_uid IN (`+in+`)`), anys(uids)...); err != nil {
		return fmt.Errorf("history: prune: delete archives: %w", err)
	}
	if _, err := tx.ExecContext(ctx, s.d.rebind(`UPDATE jobs SET logs_pruned_at = ? WHERE uid IN (`+in+`)`), append([]any{now}, anys(uids)...)...); err != nil {
		return fmt.Errorf("history: prune: mark logs pruned: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("history: prune: commit: %w", err)
	}
	return nil
}

// deleteRecords removes whole records in one transaction: the Jobs, their
// attempts, events, log archives, checkpoints and marks (of the Jobs and
// of their pods). It returns the archives removed and their size.
func (s *sqlStore) deleteRecords(ctx context.Context, uids []string) (archives, bytes int64, err error) {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return 0, 0, fmt.Errorf("history: prune: begin: %w", err)
	}
	defer tx.Rollback() //nolint:errcheck // no-op after commit
	in := placeholders(len(uids))
	pods, err := column(ctx, tx, s.d.rebind(`SELECT pod_uid FROM attempts WHERE job_uid IN (`+in+`)`), anys(uids)...)
	if err != nil {
		return 0, 0, fmt.Errorf("history: prune: read attempts: %w", err)
	}
	if err := tx.QueryRowContext(ctx, s.d.rebind(`SELECT COUNT(*), COALESCE(SUM(stored_bytes), 0) FROM log_archives WHERE job_uid IN (`+in+`)`), anys(uids)...).Scan(&archives, &bytes); err != nil {
		return 0, 0, fmt.Errorf("history: prune: size archives: %w", err)
	}
	type step struct {
		query string
		args  []string
	}
	steps := []step{
		{`DELETE FROM log_archives WHERE job_uid IN (` + in + `)`, uids},
		{`DELETE FROM attempts WHERE job_uid IN (` + in + `)`, uids},
		{`DELETE FROM marks WHERE uid IN (` + in + `)`, uids},
		{`DELETE FROM jobs WHERE uid IN (` + in + `)`, uids},
	}
	if len(pods) > 0 {
		pin := placeholders(len(pods))
		steps = append(steps,
			step{`DELETE FROM log_checkpoints WHERE pod_uid IN (` + pin + `)`, pods},
			step{`DELETE FROM marks WHERE uid IN (` + pin + `)`, pods})
	}
	for _, st := range steps {
		if _, err := tx.ExecContext(ctx, s.d.rebind(st.query), anys(st.args)...); err != nil {
			return 0, 0, fmt.Errorf("history: prune: delete records: %w", err)
		}
	}
	if err := tx.Commit(); err != nil {
		return 0, 0, fmt.Errorf("history: prune: commit: %w", err)
	}
	return archives, bytes, nil
}

func column(ctx context.Context, tx *sql.Tx, query string, args ...any) ([]string, error) {
	rows, err := tx.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close() //nolint:errcheck // read-only
	var out []string
	for rows.Next() {
		var v string
		if err := rows.Scan(&v); err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, rows.Err()
}
