package store

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
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
