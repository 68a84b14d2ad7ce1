package store

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/flowforge/flowforge/history"
)

func BenchmarkMark(b *testing.B) {
	s, err := OpenSQLite(context.Background(), filepath.Join(b.TempDir(), "h.db"))
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close() //nolint:errcheck // benchmark
	i := 0
	for b.Loop() {
		i++
		if _, err := s.Mark(context.Background(), fmt.Sprint("uid-", i), "started"); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkMarkAgain(b *testing.B) {
	s, err := OpenSQLite(context.Background(), filepath.Join(b.TempDir(), "h.db"))
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close() //nolint:errcheck // benchmark
	for b.Loop() {
		if _, err := s.Mark(context.Background(), "uid", "started"); err != nil {
			b.Fatal(err)
		}
	}
}

// Reads at scale (docs/performance.md): a store of benchRecords records
// from benchUsers users, listed by user and status a page of benchPage
// records at a time with keyset continuation, as the aggregated API lists
// executions. The fixture is built only when the benchmark runs:
//
//	go test ./history/store -run '^$' -bench BenchmarkListPages -benchtime 20x
const (
	benchRecords = 100_000
	benchUsers   = 20
	benchPage    = 50
)

var benchStatuses = []string{history.StatusSucceeded, history.StatusFailed, history.StatusTimedOut, history.StatusCancelled}

// buildFixture inserts benchRecords exported records, 500 per statement.
func buildFixture(b *testing.B, s *sqlStore) {
	b.Helper()
	ctx := context.Background()
	events := `[{"time":"2026-11-27T10:00:00Z","type":"Normal","reason":"Completed","object":"job/x","message":"Job completed"}]`
	const perStatement = 500
	start := t0.Add(-benchRecords * time.Minute)
	for base := 0; base < benchRecords; base += perStatement {
		var q strings.Builder
		q.WriteString(`INSERT INTO jobs (uid, job_id, namespace, name, user_id, repository, branch, status, reason, created_at, started_at, finished_at, exported_at, events) VALUES `)
		var args []any
		for i := base; i < base+perStatement; i++ {
			if i > base {
				q.WriteString(", ")
			}
			q.WriteString("(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)")
			created := start.Add(time.Duration(i) * time.Minute).UnixMilli()
			args = append(args, fmt.Sprintf("uid-%06d", i), fmt.Sprintf("job-%06d", i), fmt.Sprintf("team-%d", i%7), fmt.Sprintf("claude-job-%06d", i),
				fmt.Sprintf("user-%02d", i%benchUsers), "acme/app", "main", benchStatuses[(i/benchUsers)%len(benchStatuses)], "Completed",
				created, created+1000, created+60_000, created+61_000, events)
		}
		if _, err := s.db.ExecContext(ctx, s.d.rebind(q.String()), args...); err != nil {
			b.Fatal(err)
		}
	}
	if s.d.name == "postgres" {
		if _, err := s.db.ExecContext(ctx, `ANALYZE jobs`); err != nil {
			b.Fatal(err)
		}
	} else if _, err := s.db.ExecContext(ctx, `ANALYZE`); err != nil {
		b.Fatal(err)
	}
}

func BenchmarkListPages(b *testing.B) {
	for _, kind := range storeKinds {
		b.Run(kind.name, func(b *testing.B) {
			st := kind.open(b)
			defer st.Close() //nolint:errcheck // benchmark
			var s *sqlStore
			switch v := st.(type) {
			case *SQLite:
				s = &v.sqlStore
			case *Postgres:
				s = &v.sqlStore
			}
			buildFixture(b, s)
			for _, tc := range []struct {
				name   string
				filter func(i int) history.Filter
			}{
				{"user+status", func(i int) history.Filter {
					return history.Filter{User: fmt.Sprintf("user-%02d", i%benchUsers), Status: benchStatuses[i%len(benchStatuses)]}
				}},
				{"user", func(i int) history.Filter { return history.Filter{User: fmt.Sprintf("user-%02d", i%benchUsers)} }},
				{"namespace+status", func(i int) history.Filter {
					return history.Filter{Namespace: fmt.Sprintf("team-%d", i%7), Status: benchStatuses[i%len(benchStatuses)]}
				}},
				{"namespace+user+status", func(i int) history.Filter {
					return history.Filter{Namespace: fmt.Sprintf("team-%d", i%7), User: fmt.Sprintf("user-%02d", i%benchUsers), Status: benchStatuses[i%len(benchStatuses)]}
				}},
				{"unfiltered", func(int) history.Filter { return history.Filter{} }},
			} {
				b.Run(tc.name, func(b *testing.B) {
					ctx := context.Background()
					var pages []time.Duration
					i := 0
					for b.Loop() {
						// One walk: the first 40 pages of one filter (the
						// user+status walks end sooner: ~1,250 records).
						f := tc.filter(i)
						f.Limit = benchPage
						i++
						for range 40 {
							t := time.Now()
							page, err := st.Jobs(ctx, f)
							pages = append(pages, time.Since(t))
							if err != nil {
								b.Fatal(err)
							}
							if len(page) < benchPage {
								break
							}
							f.Continue = history.ContinueAfter(page[len(page)-1])
						}
					}
					slices.Sort(pages)
					b.ReportMetric(float64(len(pages))/float64(b.N), "pages/op")
					b.ReportMetric(ms64(pages[len(pages)/2]), "p50-ms/page")
					b.ReportMetric(ms64(pages[(len(pages)*99)/100]), "p99-ms/page")
				})
			}
		})
	}
}

func ms64(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// BenchmarkPrune100k removes the benchRecords records of the fixture by
// age, in batches of 500, while none is kept:
//
//	go test ./history/store -run '^$' -bench BenchmarkPrune100k -benchtime 1x
func BenchmarkPrune100k(b *testing.B) {
	for _, kind := range storeKinds {
		b.Run(kind.name, func(b *testing.B) {
			for b.Loop() {
				b.StopTimer()
				st := kind.open(b)
				var s *sqlStore
				switch v := st.(type) {
				case *SQLite:
					s = &v.sqlStore
				case *Postgres:
					s = &v.sqlStore
				}
				buildFixture(b, s)
				b.StartTimer()
				res, err := st.Prune(context.Background(), history.PruneRequest{Before: t0})
				if err != nil {
					b.Fatal(err)
				}
				if res.Records != benchRecords {
					b.Fatalf("pruned %d records, want %d", res.Records, benchRecords)
				}
				b.StopTimer()
				_ = st.Close()
				b.StartTimer()
			}
		})
	}
}
