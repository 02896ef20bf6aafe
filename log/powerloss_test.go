package log

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
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

// A power cut keeps each page written since the last sync either as it was
// synced or as it was written, in any combination. Whatever survives, the
// reopened log holds every synced frame and then a prefix of the ones
// written after it, each intact — never a gap, a damaged frame read as data,
// or an unacknowledged frame behind a lost one.
func TestPreparedTailAfterPowerCut(t *testing.T) {
	const page = 4096
	rng := rand.New(rand.NewPCG(7, 13))
	enc := newRecordEncoder()
	for round := range 30 {
		w := openFrameWriter(t, 1<<20)
		waitSpare(t, w.s) // the first segment is a spare: zeros follow the frames
		w.write(1 + rng.IntN(30))
		if err := w.s.sync(); err != nil {
			t.Fatal(err)
		}
		durable := w.next - 1
		synced, _ := os.ReadFile(w.s.tailPath)
		for range 1 + rng.IntN(6) {
			w.write(1 + rng.IntN(30))
		}
		written := w.next - 1
		cut, _ := os.ReadFile(w.s.tailPath)
		// Pages are the unit a disk keeps or loses; ranges that start and
		// end at frames are the worst case for the reader, so half the
		// boundaries are frame boundaries.
		starts, end, _ := readFrames(t, w.s.tailPath)
		for off := int64(0); off < end; {
			next := (off/page + 1) * page
			if rng.IntN(2) == 0 {
				next = starts[rng.IntN(len(starts))]
			}
			if next <= off {
				next = off + 1 + rng.Int64N(page)
			}
			if rng.IntN(2) == 0 {
				copy(cut[off:min(next, int64(len(cut)))], synced[off:])
			}
			off = next
		}

		s, last, err := openWAL(crashImage(t, w.s.tailPath, cut), 1<<20, quietLogger())
		if err != nil {
			t.Fatalf("round %d: %v", round, err)
		}
		if last < durable || last > written {
			t.Fatalf("round %d: reopened at %d; synced %d, written %d", round, last, durable, written)
		}
		// The restarted engine writes new records of the same sizes, then
		// crashes again: frames that were cut must not reappear behind them.
		var buf []byte
		var ends []int
		rewrote := last + 1 + rng.Uint64N(written-last+1)
		for i := last + 1; i <= rewrote; i++ {
			buf, _ = enc.encode(buf, rewritten(i))
			ends = append(ends, len(buf))
		}
		if err := s.write(last+1, buf, ends); err != nil {
			t.Fatal(err)
		}
		tail, _ := os.ReadFile(s.tailPath)
		s.close()
		s, last2, err := openWAL(crashImage(t, s.tailPath, tail), 1<<20, quietLogger())
		if err != nil || last2 != rewrote {
			t.Fatalf("round %d: reopened at %d, %v; want %d", round, last2, err, rewrote)
		}
		next := uint64(1)
		err = s.read(1, last2, func(i uint64, frame []byte) error {
			rec := testRecord(int(i))
			if i > last {
				rec = rewritten(i)
			}
			want, _ := enc.encode(nil, rec)
			if i != next || !bytes.Equal(frame, want) {
				return fmt.Errorf("index %d (expected %d): frame differs from the one written", i, next)
			}
			next++
			return nil
		})
		if err != nil || next != last2+1 {
			t.Fatalf("round %d: %v (read up to %d of %d)", round, err, next-1, last2)
		}
		s.close()
	}
}

// rewritten is the record a restarted writer puts at index i: the size of
// testRecord(i), other bytes.
func rewritten(i uint64) *Record {
	rec := testRecord(int(i))
	rec.Value = bytes.ToUpper(rec.Value)
	return rec
}

// crashImage makes a log directory whose only segment, named like tailPath,
// holds data: what a crash left of a log.
func crashImage(t *testing.T, tailPath string, data []byte) string {
	t.Helper()
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, walDirName), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, walDirName, filepath.Base(tailPath)), data, 0o600); err != nil {
		t.Fatal(err)
	}
	return dir
}
