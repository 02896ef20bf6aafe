package log

import (
	"errors"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// cacheDisk models what a power cut leaves: written frames sit in the page cache
// until a sync makes them durable; a crash keeps only the durable ones.
// Writes and syncs can be made to fail.
type cacheDisk struct {
	mu        sync.Mutex
	durable   [][]byte // frames 1..len(durable)
	cached    [][]byte // written after them, not synced
	failWrite error
	failSync  error
}

func (d *cacheDisk) write(first uint64, buf []byte, ends []int) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.failWrite != nil {
		return d.failWrite
	}
	if want := uint64(len(d.durable)+len(d.cached)) + 1; first != want {
		return errors.New("write out of order")
	}
	start := 0
	for _, end := range ends {
		d.cached = append(d.cached, append([]byte(nil), buf[start:end]...))
		start = end
	}
	return nil
}

func (d *cacheDisk) sync() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.failSync != nil {
		d.cached = nil // the kernel may have dropped the dirty pages
		return d.failSync
	}
	d.durable = append(d.durable, d.cached...)
	d.cached = nil
	return nil
}

func (d *cacheDisk) read(from, upto uint64, fn func(uint64, []byte) error) error {
	d.mu.Lock()
	all := append(append([][]byte(nil), d.durable...), d.cached...)
	d.mu.Unlock()
	for i, f := range all {
		if idx := uint64(i) + 1; idx >= from && idx <= upto {
			if err := fn(idx, f); err != nil {
				return err
			}
		}
	}
	return nil
}

func (d *cacheDisk) firstIndex() uint64 { return 1 }
func (d *cacheDisk) close() error       { return nil }

// crash returns the disk as a power cut leaves it.
func (d *cacheDisk) crash() *cacheDisk {
	d.mu.Lock()
	defer d.mu.Unlock()
	return &cacheDisk{durable: append([][]byte(nil), d.durable...)}
}

// Acknowledged means durable: at any moment of a power cut, every record
// whose Append has returned is on the disk, and decodes after the restart.
func TestPowerLossKeepsEveryAcknowledgedRecord(t *testing.T) {
	for round := range 5 {
		d := &cacheDisk{}
		l := openTest(t, "", newTestState(), Options{Sync: SyncAlways, disk: d})
		var acked sync.Map
		var stop atomic.Bool
		var wg sync.WaitGroup
		for range 8 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := 0; !stop.Load(); i++ {
					rec := testRecord(i)
					if _, err := l.Append(rec); err != nil {
						return
					}
					acked.Store(rec.Index, true)
				}
			}()
		}
		time.Sleep(time.Duration(rand.IntN(40)+10) * time.Millisecond)
		// Take the acknowledged set first: everything in it must be on the
		// disk a cut taken just after finds.
		var before []uint64
		acked.Range(func(k, _ any) bool { before = append(before, k.(uint64)); return true })
		cut := d.crash()
		stop.Store(true)
		wg.Wait()
		if len(before) == 0 {
			t.Fatalf("round %d: nothing was acknowledged", round)
		}
		for _, idx := range before {
			if idx > uint64(len(cut.durable)) {
				t.Fatalf("round %d: record %d was acknowledged but a power cut loses it (%d durable)", round, idx, len(cut.durable))
			}
		}
		after := openTest(t, "", newTestState(), Options{Sync: SyncAlways, disk: cut})
		n := 0
		if err := after.Read(1, func(*Record) error { n++; return nil }); err != nil || n != len(cut.durable) {
			t.Fatalf("round %d: after the cut %d records read, %v; %d durable", round, n, err, len(cut.durable))
		}
	}
}

// After a failed fsync nothing is acknowledged again, and every later
// append reports the failure.
func TestFailedSyncFailsTheLog(t *testing.T) {
	for _, tt := range []struct {
		name string
		fail func(*cacheDisk)
	}{
		{"fsync", func(d *cacheDisk) { d.failSync = errors.New("EIO") }},
		{"write", func(d *cacheDisk) { d.failWrite = errors.New("ENOSPC") }},
	} {
		t.Run(tt.name, func(t *testing.T) {
			d := &cacheDisk{}
			l := openTest(t, "", newTestState(), Options{Sync: SyncAlways, disk: d})
			if _, err := l.Append(testRecord(1)); err != nil {
				t.Fatal(err)
			}
			d.mu.Lock()
			tt.fail(d)
			d.mu.Unlock()
			for i := range 3 {
				if _, err := l.Append(testRecord(2 + i)); !errors.Is(err, ErrFailed) {
					t.Fatalf("append %d after the failure: %v, want ErrFailed", i, err)
				}
			}
			if got := d.crash(); len(got.durable) != 1 {
				t.Fatalf("%d durable records; only the one acknowledged before the failure", len(got.durable))
			}
		})
	}
}
