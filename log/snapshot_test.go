package log

import (
	"bytes"
	"errors"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/iii-go/iii/internal/wait"
)

// noAutoSnapshots keeps automatic snapshots out of a test's way.
const noAutoSnapshots = 1 << 40

func snapshotFiles(t *testing.T, dir string) []uint64 {
	t.Helper()
	idxs, err := snapshotIndexes(filepath.Join(dir, snapshotDirName))
	if err != nil {
		t.Fatal(err)
	}
	return idxs
}

func TestSnapshotRestoreReplaysOnlyTail(t *testing.T) {
	dir := t.TempDir()
	opts := Options{SnapshotEvery: noAutoSnapshots}
	st := newTestState()
	l := openTest(t, dir, st, opts)
	appendN(t, l, 1, 100)
	if err := l.Snapshot(); err != nil {
		t.Fatal(err)
	}
	if err := l.Snapshot(); err != nil { // nothing new: no-op
		t.Fatal(err)
	}
	appendN(t, l, 101, 20)
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if got := snapshotFiles(t, dir); !slices.Equal(got, []uint64{100}) {
		t.Fatalf("snapshots %v, want [100]", got)
	}

	st2 := newTestState()
	l2 := openTest(t, dir, st2, opts)
	applies, restores, applied := st2.counts()
	if restores != 1 || applies != 20 {
		t.Fatalf("Restore called %d times, Apply %d times; want 1 and 20 (only the tail)", restores, applies)
	}
	if !slices.Equal(applied, seq(1, 120)) || !maps.Equal(st.Items, st2.Items) {
		t.Fatal("restored + replayed state differs from the original")
	}
	if res, err := l2.Append(testRecord(121)); err != nil || res != uint64(121) {
		t.Fatalf("Append after restore: %v, %v", res, err)
	}
}

func TestAutoSnapshotsKeepTwo(t *testing.T) {
	dir := t.TempDir()
	opts := Options{SnapshotEvery: 10}
	l := openTest(t, dir, newTestState(), opts)
	for from := 1; from <= 55; from += 5 {
		appendN(t, l, from, 5)
		// A snapshot due while the last is still being written waits for
		// it; give the writer its time, as real traffic would.
		wait.For(t, 10*time.Second, "the snapshot writer", func() bool { return l.snapPending.Load() == 0 })
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	snaps := snapshotFiles(t, dir)
	if len(snaps) != 2 || snaps[1] < 30 {
		t.Fatalf("snapshots %v: want the two newest of one every ~10 records", snaps)
	}
	st := newTestState()
	openTest(t, dir, st, opts)
	if applies, restores, _ := st.counts(); restores != 1 || applies != 55-int(snaps[1]) {
		t.Fatalf("Restore %d, Apply %d; want 1 and %d", restores, applies, 55-snaps[1])
	}
}

func TestSnapshotBytesTrigger(t *testing.T) {
	dir := t.TempDir()
	frame, _ := EncodeRecord(nil, testRecord(1))
	l := openTest(t, dir, newTestState(), Options{SnapshotEvery: noAutoSnapshots, SnapshotBytes: int64(5 * len(frame))})
	appendN(t, l, 1, 12)
	l.Close()
	if len(snapshotFiles(t, dir)) == 0 {
		t.Fatal("no snapshot after more than SnapshotBytes of records")
	}
}

func TestDamagedSnapshotFallsBack(t *testing.T) {
	dir := t.TempDir()
	opts := Options{SnapshotEvery: noAutoSnapshots}
	l := openTest(t, dir, newTestState(), opts)
	appendN(t, l, 1, 10)
	l.Snapshot()
	appendN(t, l, 11, 10)
	l.Snapshot()
	appendN(t, l, 21, 5)
	l.Close()

	newest := snapshotPath(filepath.Join(dir, snapshotDirName), 20)
	b, _ := os.ReadFile(newest)
	b[len(b)-2] ^= 1
	os.WriteFile(newest, b, 0o640)

	var logBuf bytes.Buffer
	st := newTestState()
	opts.Logger = slog.New(slog.NewTextHandler(&logBuf, nil))
	openTest(t, dir, st, opts)
	applies, restores, applied := st.counts()
	if restores != 1 || applies != 15 || !slices.Equal(applied, seq(1, 25)) {
		t.Fatalf("Restore %d, Apply %d, applied %v; want the snapshot at 10 and 15 replayed", restores, applies, applied)
	}
	if !strings.Contains(logBuf.String(), "damaged snapshot") {
		t.Fatalf("no warning about the damaged snapshot: %s", logBuf.String())
	}
}

func TestRetention(t *testing.T) {
	tests := []struct {
		name        string
		opts        Options
		age         bool // make segments look old before each snapshot
		wantRemoved bool
	}{
		{"keep everything by default", Options{}, true, false},
		{"bytes", Options{RetainBytes: 1}, false, true},
		{"bytes limit not reached", Options{RetainBytes: 1 << 30}, false, false},
		{"age", Options{RetainAge: time.Hour}, true, true},
		{"age limit not reached", Options{RetainAge: time.Hour}, false, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			opts := tt.opts
			opts.SegmentSize = 1000
			opts.SnapshotEvery = noAutoSnapshots
			st := newTestState()
			l := openTest(t, dir, st, opts)
			next := 1
			var snaps []uint64
			for round := 0; round < 4; round++ {
				appendN(t, l, next, 40)
				next += 40
				if tt.age {
					segs, _ := segmentFiles(filepath.Join(dir, walDirName))
					old := time.Now().Add(-2 * time.Hour)
					for _, s := range segs {
						os.Chtimes(s.path, old, old)
					}
				}
				if err := l.Snapshot(); err != nil {
					t.Fatal(err)
				}
				snaps = append(snaps, l.LastIndex())
				oldestKept := snaps[max(0, len(snaps)-snapKeep)]
				if first := l.FirstIndex(); first > oldestKept+1 {
					t.Fatalf("round %d: FirstIndex %d, but the oldest kept snapshot is at %d", round, first, oldestKept)
				}
				appendN(t, l, next, 5)
				next += 5
			}
			first := l.FirstIndex()
			if removed := first > 1; removed != tt.wantRemoved {
				t.Fatalf("FirstIndex %d: removed=%v, want %v", first, removed, tt.wantRemoved)
			}
			var got []uint64
			if err := l.Read(0, func(r *Record) error { got = append(got, r.Index); return nil }); err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(got, seq(first, l.LastIndex())) {
				t.Fatalf("Read after retention: %d records, want %d..%d", len(got), first, l.LastIndex())
			}
			last := l.LastIndex()
			if err := l.Close(); err != nil {
				t.Fatal(err)
			}
			st2 := newTestState()
			l2 := openTest(t, dir, st2, opts)
			if l2.FirstIndex() != first || l2.LastIndex() != last || !maps.Equal(st.Items, st2.Items) {
				t.Fatalf("reopen: first %d last %d, want %d %d and the same state", l2.FirstIndex(), l2.LastIndex(), first, last)
			}
		})
	}
}

func TestLatestSnapshotBefore(t *testing.T) {
	dir := t.TempDir()
	l := openTest(t, dir, newTestState(), Options{SnapshotEvery: noAutoSnapshots})
	for _, n := range []int{10, 10, 10} {
		appendN(t, l, int(l.LastIndex())+1, n)
		if err := l.Snapshot(); err != nil {
			t.Fatal(err)
		}
	}
	appendN(t, l, 31, 5) // snapshots kept: 20 and 30

	tests := []struct {
		at, want uint64
	}{{5, 0}, {15, 0}, {20, 20}, {25, 20}, {30, 30}, {35, 30}}
	for _, tt := range tests {
		idx, data, err := LatestSnapshotBefore(dir, tt.at)
		if err != nil || idx != tt.want || (data == nil) != (tt.want == 0) {
			t.Errorf("LatestSnapshotBefore(%d) = %d, %d bytes, %v; want %d", tt.at, idx, len(data), err, tt.want)
		}
	}

	// Rebuild the state at index 27 from the snapshot at 20 plus a scan.
	idx, data, _ := LatestSnapshotBefore(dir, 27)
	st := newTestState()
	if err := st.Restore(bytes.NewReader(data)); err != nil {
		t.Fatal(err)
	}
	stop := errors.New("stop")
	err := Scan(dir, idx+1, func(r *Record) error {
		if r.Index > 27 {
			return stop
		}
		st.Apply(r)
		return nil
	})
	if err != stop {
		t.Fatalf("Scan: %v, want fn's error as is", err)
	}
	want := newTestState()
	for i := 1; i <= 27; i++ {
		rec := testRecord(i)
		rec.Index = uint64(i)
		want.Apply(rec)
	}
	if !maps.Equal(st.Items, want.Items) || !slices.Equal(st.Applied, want.Applied) {
		t.Fatal("state rebuilt at 27 differs")
	}

	if _, _, err := LatestSnapshotBefore(t.TempDir(), 1); !errors.Is(err, ErrNotALog) {
		t.Fatalf("LatestSnapshotBefore on an empty dir: %v, want ErrNotALog", err)
	}
}
