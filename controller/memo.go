package controller

import (
	"encoding/json"
	"hash/fnv"
	"sync"
)

// memoLimit bounds the memo; past it, it starts afresh (a few rewrites).
const memoLimit = 100000

// writeMemo remembers what was last written to the store for a key, so a
// reconcile that changes nothing writes nothing. It is a cache only: after
// a restart it is empty and every record is written once more.
type writeMemo struct {
	mu     sync.Mutex
	hashes map[string]uint64
}

// unchanged reports whether v is what was last recorded for key.
func (m *writeMemo) unchanged(key string, v any) (bool, uint64) {
	data, err := json.Marshal(v)
	if err != nil {
		return false, 0
	}
	h := fnv.New64a()
	_, _ = h.Write(data)
	sum := h.Sum64()
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.hashes[key] == sum && sum != 0, sum
}

// remember records that v (by its hash) was written for key.
func (m *writeMemo) remember(key string, sum uint64) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.hashes == nil || len(m.hashes) >= memoLimit {
		m.hashes = map[string]uint64{}
	}
	m.hashes[key] = sum
}

// mark records that a one-time step is done for key.
func (m *writeMemo) mark(key string) { m.remember(key, 1) }

// marked reports whether mark was called for key (since the last reset).
func (m *writeMemo) marked(key string) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.hashes[key] == 1
}

// forget drops what is remembered for keys: an object gone from the
// cache is never reconciled again, so its entries would only take room.
func (m *writeMemo) forget(keys ...string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, k := range keys {
		delete(m.hashes, k)
	}
}
