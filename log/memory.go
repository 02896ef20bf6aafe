package log

import (
	"bytes"
	"sync"
	"time"
)

// memStore keeps frames in memory for Options.InMemory. Frames are immutable
// once stored, so readers copy the slice header under the lock and iterate
// without it.
type memStore struct {
	mu          sync.RWMutex
	first       uint64 // index of entries[0]
	entries     []memEntry
	bytes       int64
	retainBytes int64
	retainAge   time.Duration
}

type memEntry struct {
	frame []byte
	at    int64 // Unix nanoseconds of the write, for RetainAge
}

func newMemStore(retainBytes int64, retainAge time.Duration) *memStore {
	return &memStore{first: 1, retainBytes: retainBytes, retainAge: retainAge}
}

func (m *memStore) write(_ uint64, buf []byte, ends []int) error {
	data := bytes.Clone(buf) // one allocation per batch; frames share it
	now := time.Now()
	m.mu.Lock()
	defer m.mu.Unlock()
	start := 0
	for _, end := range ends {
		m.entries = append(m.entries, memEntry{frame: data[start:end:end], at: now.UnixNano()})
		start = end
	}
	m.bytes += int64(len(buf))
	m.trim(now)
	return nil
}

// trim drops the oldest frames beyond the retention limits, with the same
// rules as segment compaction (minus the snapshot condition: nothing is ever
// restored from memory).
func (m *memStore) trim(now time.Time) {
	drop := 0
	for drop < len(m.entries) {
		e := m.entries[drop]
		overBytes := m.retainBytes > 0 && m.bytes-int64(len(e.frame)) >= m.retainBytes
		overAge := m.retainAge > 0 && now.UnixNano()-e.at > int64(m.retainAge)
		if !overBytes && !overAge {
			break
		}
		m.bytes -= int64(len(e.frame))
		drop++
	}
	if drop == 0 {
		return
	}
	// No clear(): a concurrent read may still be looking at the dropped
	// entries. Reslicing shrinks the capacity, so a later append moves the
	// live entries to a new array and the old frames become garbage.
	m.entries = m.entries[drop:]
	m.first += uint64(drop)
}

func (m *memStore) sync() error { return nil }

func (m *memStore) read(from, upto uint64, fn func(uint64, []byte) error) error {
	m.mu.RLock()
	first, entries := m.first, m.entries
	m.mu.RUnlock()
	for idx := max(from, first); idx <= upto && idx-first < uint64(len(entries)); idx++ {
		if err := fn(idx, entries[idx-first].frame); err != nil {
			return err
		}
	}
	return nil
}

func (m *memStore) firstIndex() uint64 {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return m.first
}

func (m *memStore) close() error { return nil }
