package log

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
)

// scanAll returns the indexes Scan delivers from `from`, checking each
// record's contents.
func scanAll(dir string, from uint64) ([]uint64, error) {
	var got []uint64
	err := Scan(dir, from, func(r *Record) error {
		if want := testRecord(int(r.Index)); r.Key != want.Key || !bytes.Equal(r.Value, want.Value) {
			return fmt.Errorf("index %d: got %s=%s", r.Index, r.Key, r.Value)
		}
		got = append(got, r.Index)
		return nil
	})
	return got, err
}

func TestScan(t *testing.T) {
	dir := t.TempDir()
	l := openTest(t, dir, newTestState(), Options{SegmentSize: 700})
	appendN(t, l, 1, 30)
	l.Close()

	tests := []struct {
		from uint64
		want []uint64
	}{{0, seq(1, 30)}, {1, seq(1, 30)}, {17, seq(17, 30)}, {30, seq(30, 30)}, {31, nil}}
	for _, tt := range tests {
		got, err := scanAll(dir, tt.from)
		if err != nil || fmt.Sprint(got) != fmt.Sprint(tt.want) {
			t.Errorf("Scan from %d = %v, %v; want %v", tt.from, got, err, tt.want)
		}
	}
	if err := Scan(t.TempDir(), 0, func(*Record) error { return nil }); !errors.Is(err, ErrNotALog) {
		t.Fatalf("Scan of a non-log dir: %v, want ErrNotALog", err)
	}
}

func TestScanStopsQuietlyAtTornTail(t *testing.T) {
	dir, seg, lastOff := closedLog(t, 8)
	if err := os.Truncate(seg.path, lastOff+3); err != nil {
		t.Fatal(err)
	}
	got, err := scanAll(dir, 0)
	if err != nil || fmt.Sprint(got) != fmt.Sprint(seq(1, 7)) {
		t.Fatalf("Scan over a torn tail = %v, %v; want 1..7 and no error", got, err)
	}
	if m, _ := filepath.Glob(filepath.Join(dir, "corrupt-*")); len(m) != 0 {
		t.Fatal("Scan must not repair anything")
	}
}

func TestScanReportsDamageBeforeTail(t *testing.T) {
	dir := t.TempDir()
	l := openTest(t, dir, newTestState(), Options{SegmentSize: 500})
	appendN(t, l, 1, 30)
	l.Close()
	segs, _ := segmentFiles(filepath.Join(dir, walDirName))
	b, _ := os.ReadFile(segs[0].path)
	b[len(b)-1] ^= 0xff
	os.WriteFile(segs[0].path, b, 0o640)

	if _, err := scanAll(dir, 0); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("Scan: %v, want ErrCorrupt", err)
	}
	if _, err := Open(dir, newTestState(), Options{Logger: quietLogger()}); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("Open: %v, want ErrCorrupt (damage before the tail is not repaired)", err)
	}
}

func TestScanLiveLog(t *testing.T) {
	dir := t.TempDir()
	l := openTest(t, dir, newTestState(), Options{Sync: SyncNever, SegmentSize: 4 << 10})
	const writers, each = 8, 250
	var wg sync.WaitGroup
	var done atomic.Bool
	for w := 0; w < writers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < each; i++ {
				// Same contents at every index, so readers can check any.
				if _, err := l.Append(&Record{Kind: KindStateSet, Key: "live"}); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	go func() { wg.Wait(); done.Store(true) }()
	defer wg.Wait() // writers must not outlive the test, even a failed one

	scans := 0
	for !done.Load() || scans == 0 {
		before := l.LastIndex()
		var n uint64
		err := Scan(dir, 0, func(r *Record) error {
			if n++; r.Index != n || r.Key != "live" {
				return fmt.Errorf("record %d has index %d key %q", n, r.Index, r.Key)
			}
			return nil
		})
		if err != nil {
			t.Errorf("scan %d: %v", scans, err)
			return
		}
		if n < before {
			t.Errorf("scan %d saw %d records, %d were acknowledged before it started", scans, n, before)
			return
		}
		scans++
	}
	t.Logf("%d scans while appending", scans)
	var n uint64
	if err := l.Read(0, func(*Record) error { n++; return nil }); err != nil || n != writers*each {
		t.Fatalf("Read: %d records, %v; want %d", n, err, writers*each)
	}
}

func TestReadersDuringRetention(t *testing.T) {
	dir := t.TempDir()
	l := openTest(t, dir, newTestState(), Options{Sync: SyncNever, SegmentSize: 2 << 10, SnapshotEvery: 50, RetainBytes: 1})
	var wg sync.WaitGroup
	var done atomic.Bool
	wg.Add(1)
	go func() {
		defer wg.Done()
		defer done.Store(true)
		for i := 0; i < 1500; i++ {
			if _, err := l.Append(&Record{Kind: KindStateSet, Key: "live"}); err != nil {
				t.Error(err)
				return
			}
		}
	}()
	defer wg.Wait()

	// A read either delivers a contiguous run or fails with ErrCompacted.
	check := func(name string, read func(fn func(*Record) error) error) {
		var prev uint64
		err := read(func(r *Record) error {
			if prev != 0 && r.Index != prev+1 {
				return fmt.Errorf("index %d after %d", r.Index, prev)
			}
			prev = r.Index
			return nil
		})
		if err != nil && !errors.Is(err, ErrCompacted) {
			t.Errorf("%s: %v", name, err)
		}
	}
	for !done.Load() {
		check("Scan", func(fn func(*Record) error) error { return Scan(dir, 0, fn) })
		check("Read", func(fn func(*Record) error) error { return l.Read(0, fn) })
	}
	if l.FirstIndex() == 1 {
		t.Fatal("retention never ran")
	}
}
