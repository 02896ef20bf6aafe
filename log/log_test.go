package log

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/iii-go/iii/internal/disk"
	"github.com/iii-go/iii/internal/syncbuf"
	"github.com/iii-go/iii/internal/wait"
)

// testState folds records into a key/value map and remembers what it saw.
type testState struct {
	mu       sync.Mutex
	Applied  []uint64          // indexes in Apply order (restored ones included)
	Items    map[string]string // Key -> Value
	applies  int               // Apply calls on this instance
	restores int
}

func newTestState() *testState { return &testState{Items: map[string]string{}} }

func (s *testState) Apply(rec *Record) any {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.applies++
	s.Applied = append(s.Applied, rec.Index)
	s.Items[rec.Key] = string(rec.Value)
	return rec.Index
}

func (s *testState) Snapshot(w io.Writer) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return json.NewEncoder(w).Encode(s)
}

func (s *testState) Restore(r io.Reader) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.restores++
	return json.NewDecoder(r).Decode(s)
}

func (s *testState) counts() (applies, restores int, applied []uint64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.applies, s.restores, slices.Clone(s.Applied)
}

func testRecord(i int) *Record {
	return &Record{
		Kind:  KindStateSet,
		Scope: "scope",
		Key:   fmt.Sprintf("k%d", i%7),
		Value: []byte(fmt.Sprintf(`{"n":%d,"pad":"%s"}`, i, "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx")),
	}
}

func quietLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func openTest(t testing.TB, dir string, st Projection, opts Options) *Log {
	t.Helper()
	if opts.Logger == nil {
		opts.Logger = quietLogger()
	}
	l, err := Open(dir, st, opts)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { l.Close() })
	return l
}

func appendN(t testing.TB, l *Log, from, n int) {
	t.Helper()
	for i := from; i < from+n; i++ {
		if _, err := l.Append(testRecord(i)); err != nil {
			t.Fatalf("Append %d: %v", i, err)
		}
	}
}

func seq(from, to uint64) []uint64 {
	var s []uint64
	for i := from; i <= to; i++ {
		s = append(s, i)
	}
	return s
}

func TestAppendReopen(t *testing.T) {
	for _, policy := range []SyncPolicy{SyncAlways, SyncInterval, SyncNever} {
		t.Run(policy.String(), func(t *testing.T) {
			dir := t.TempDir()
			opts := Options{Sync: policy, SyncInterval: 5 * time.Millisecond}
			st := newTestState()
			l := openTest(t, dir, st, opts)
			for i := 1; i <= 25; i++ {
				res, err := l.Append(testRecord(i))
				if err != nil {
					t.Fatal(err)
				}
				if res != uint64(i) {
					t.Fatalf("Append %d: result %v, want Apply's result %d", i, res, i)
				}
			}
			batch := []*Record{testRecord(26), testRecord(27), testRecord(28), testRecord(29), testRecord(30)}
			res, err := l.AppendBatch(batch)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(res, []any{uint64(26), uint64(27), uint64(28), uint64(29), uint64(30)}) {
				t.Fatalf("AppendBatch results %v", res)
			}
			if err := l.Close(); err != nil {
				t.Fatal(err)
			}

			st2 := newTestState()
			l2 := openTest(t, dir, st2, opts)
			if got, want := l2.LastIndex(), uint64(30); got != want {
				t.Fatalf("LastIndex %d, want %d", got, want)
			}
			if l2.FirstIndex() != 1 {
				t.Fatalf("FirstIndex %d, want 1", l2.FirstIndex())
			}
			_, _, applied := st2.counts()
			if !slices.Equal(applied, seq(1, 30)) {
				t.Fatalf("replayed %v", applied)
			}
			if !maps.Equal(st.Items, st2.Items) {
				t.Fatalf("state differs after reopen:\n%v\n%v", st.Items, st2.Items)
			}
			var prev Record
			err = l2.Read(0, func(r *Record) error {
				want := testRecord(int(r.Index))
				if r.V != RecordVersion || r.Kind != want.Kind || r.Key != want.Key || !bytes.Equal(r.Value, want.Value) {
					return fmt.Errorf("index %d: read %+v", r.Index, r)
				}
				if r.Time == 0 || r.Time < prev.Time || r.ID.Compare(prev.ID) <= 0 {
					return fmt.Errorf("index %d: time %d / id %s not after %d / %s", r.Index, r.Time, r.ID, prev.Time, prev.ID)
				}
				prev = *r
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
			if res, err := l2.Append(testRecord(31)); err != nil || res != uint64(31) {
				t.Fatalf("Append after reopen: %v, %v", res, err)
			}
		})
	}
}

func TestConcurrentAppendsGroupCommit(t *testing.T) {
	const goroutines, each = 64, 40
	st := newTestState()
	l := openTest(t, t.TempDir(), st, Options{})
	var wg sync.WaitGroup
	results := make(chan uint64, goroutines*each)
	errs := make(chan error, goroutines)
	for g := 0; g < goroutines; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < each; i++ {
				rec := testRecord(g*each + i)
				res, err := l.Append(rec)
				if err != nil {
					errs <- err
					return
				}
				if res != rec.Index {
					errs <- fmt.Errorf("result %v for index %d", res, rec.Index)
					return
				}
				results <- rec.Index
			}
		}()
	}
	wg.Wait()
	close(errs)
	close(results)
	for err := range errs {
		t.Fatal(err)
	}
	var got []uint64
	for idx := range results {
		got = append(got, idx)
	}
	slices.Sort(got)
	if !slices.Equal(got, seq(1, goroutines*each)) {
		t.Fatalf("indexes are not 1..%d without gaps", goroutines*each)
	}
	_, _, applied := st.counts()
	if !slices.Equal(applied, seq(1, goroutines*each)) {
		t.Fatal("Apply was not called in index order")
	}
	s := l.Stats()
	t.Logf("stats: %+v (%.1f records per fsync)", s, float64(s.Appends)/float64(s.Syncs))
	// Batches written while one is fsynced share the next fsync.
	if s.Appends != goroutines*each || s.Syncs >= s.Appends || s.Syncs > s.Batches || s.Syncs == 0 {
		t.Fatalf("stats %+v: want %d appends, at most one sync per batch and fewer syncs than appends", s, goroutines*each)
	}
}

func TestSyncPolicies(t *testing.T) {
	tests := []struct {
		policy SyncPolicy
		check  func(s Stats) error
	}{
		{SyncAlways, func(s Stats) error {
			if s.Syncs != s.Batches {
				return fmt.Errorf("want one sync per batch")
			}
			return nil
		}},
		{SyncInterval, func(s Stats) error {
			if s.Syncs == 0 || s.Syncs >= s.Batches {
				return fmt.Errorf("want some syncs, fewer than batches")
			}
			return nil
		}},
		{SyncNever, func(s Stats) error {
			if s.Syncs != 0 {
				return fmt.Errorf("want no syncs before Close")
			}
			return nil
		}},
	}
	for _, tt := range tests {
		t.Run(tt.policy.String(), func(t *testing.T) {
			l := openTest(t, t.TempDir(), newTestState(), Options{Sync: tt.policy, SyncInterval: 30 * time.Millisecond})
			appendN(t, l, 1, 20)
			if tt.policy == SyncInterval {
				// Wait for a tick to sync what was written.
				for deadline := time.Now().Add(5 * time.Second); l.Stats().Syncs == 0 && time.Now().Before(deadline); {
					time.Sleep(10 * time.Millisecond)
				}
			}
			s := l.Stats()
			if s.Appends != 20 || s.Batches != 20 {
				t.Fatalf("stats %+v: want 20 sequential appends in 20 batches", s)
			}
			if err := tt.check(s); err != nil {
				t.Fatalf("stats %+v: %v", s, err)
			}
		})
	}
}

func TestParseSyncPolicy(t *testing.T) {
	tests := []struct {
		in      string
		want    SyncPolicy
		wantErr bool
	}{
		{"", SyncAlways, false},
		{"always", SyncAlways, false},
		{"Interval", SyncInterval, false},
		{"never", SyncNever, false},
		{"sometimes", SyncAlways, true},
	}
	for _, tt := range tests {
		got, err := ParseSyncPolicy(tt.in)
		if got != tt.want || (err != nil) != tt.wantErr {
			t.Errorf("ParseSyncPolicy(%q) = %v, %v", tt.in, got, err)
		}
	}
}

func TestClose(t *testing.T) {
	l := openTest(t, t.TempDir(), newTestState(), Options{})
	appendN(t, l, 1, 3)
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := l.Append(testRecord(4)); !errors.Is(err, ErrClosed) {
		t.Fatalf("Append after Close: %v, want ErrClosed", err)
	}
	if _, err := l.AppendBatch([]*Record{testRecord(4)}); !errors.Is(err, ErrClosed) {
		t.Fatalf("AppendBatch after Close: %v, want ErrClosed", err)
	}
	if err := l.Snapshot(); !errors.Is(err, ErrClosed) {
		t.Fatalf("Snapshot after Close: %v, want ErrClosed", err)
	}
	if err := l.Close(); !errors.Is(err, ErrClosed) {
		t.Fatalf("second Close: %v, want ErrClosed", err)
	}
}

func TestCloseDrainsQueue(t *testing.T) {
	l := openTest(t, t.TempDir(), newTestState(), Options{})
	var wg sync.WaitGroup
	var mu sync.Mutex
	acked := 0
	for g := 0; g < 32; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 20; i++ {
				if _, err := l.Append(testRecord(i)); err != nil {
					if !errors.Is(err, ErrClosed) {
						t.Error(err)
					}
					return
				}
				mu.Lock()
				acked++
				mu.Unlock()
			}
		}()
	}
	time.Sleep(5 * time.Millisecond)
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	if uint64(acked) != l.LastIndex() {
		t.Fatalf("%d appends acknowledged, LastIndex %d", acked, l.LastIndex())
	}
}

func TestFailureRefusesAppends(t *testing.T) {
	l := openTest(t, t.TempDir(), newTestState(), Options{})
	appendN(t, l, 1, 2)
	l.wal.tail.Close() // make the next write fail underneath the log
	for i := 0; i < 2; i++ {
		if _, err := l.Append(testRecord(3)); !errors.Is(err, ErrFailed) {
			t.Fatalf("Append %d after a failed write: %v, want ErrFailed", i, err)
		}
	}
	if l.LastIndex() != 2 {
		t.Fatalf("LastIndex %d after failure, want 2", l.LastIndex())
	}
	if err := l.Close(); !errors.Is(err, ErrFailed) {
		t.Fatalf("Close after failure: %v, want ErrFailed", err)
	}
}

func TestInMemory(t *testing.T) {
	dir := t.TempDir()
	st := newTestState()
	l := openTest(t, dir, st, Options{InMemory: true})
	appendN(t, l, 1, 10)
	if _, err := l.AppendBatch([]*Record{testRecord(11), testRecord(12)}); err != nil {
		t.Fatal(err)
	}
	if l.FirstIndex() != 1 || l.LastIndex() != 12 {
		t.Fatalf("FirstIndex %d, LastIndex %d", l.FirstIndex(), l.LastIndex())
	}
	var read []uint64
	if err := l.Read(5, func(r *Record) error {
		if !bytes.Equal(r.Value, testRecord(int(r.Index)).Value) {
			return fmt.Errorf("index %d: value %s", r.Index, r.Value)
		}
		read = append(read, r.Index)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(read, seq(5, 12)) {
		t.Fatalf("Read(5) = %v", read)
	}
	if err := l.Snapshot(); err != nil {
		t.Fatal(err)
	}
	if s := l.Stats(); s.Syncs != 0 || s.Appends != 12 {
		t.Fatalf("stats %+v", s)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 0 {
		t.Fatalf("in-memory log created files: %v", ents)
	}
}

func TestInMemoryRetention(t *testing.T) {
	frame, _ := EncodeRecord(nil, testRecord(1))
	l := openTest(t, "", newTestState(), Options{InMemory: true, RetainBytes: int64(10 * len(frame))})
	appendN(t, l, 1, 50)
	first := l.FirstIndex()
	if first < 35 || first > 41 {
		t.Fatalf("FirstIndex %d: want about the last 10 records kept", first)
	}
	var n int
	l.Read(0, func(r *Record) error { n++; return nil })
	if uint64(n) != 50-first+1 {
		t.Fatalf("Read returned %d records, want %d", n, 50-first+1)
	}
}

// frameWriter writes batches of test records straight to a walStore.
type frameWriter struct {
	t      *testing.T
	s      *walStore
	enc    *recordEncoder
	next   uint64
	closed bool
}

// openFrameWriter opens a walStore in a fresh directory with segments of
// segSize bytes, closed when the test ends.
func openFrameWriter(t *testing.T, segSize int) *frameWriter {
	s, _, err := openWAL(t.TempDir(), segSize, quietLogger())
	if err != nil {
		t.Fatal(err)
	}
	w := &frameWriter{t: t, s: s, enc: newRecordEncoder(), next: 1}
	t.Cleanup(func() {
		if !w.closed {
			s.close()
		}
	})
	return w
}

// close closes the store, failing the test on an error.
func (w *frameWriter) close() {
	w.t.Helper()
	w.closed = true
	if err := w.s.close(); err != nil {
		w.t.Fatal(err)
	}
}

// write writes one batch of n records.
func (w *frameWriter) write(n int) {
	w.t.Helper()
	var buf []byte
	var ends []int
	for i := range n {
		buf, _ = w.enc.encode(buf, testRecord(int(w.next)+i))
		ends = append(ends, len(buf))
	}
	if err := w.s.write(w.next, buf, ends); err != nil {
		w.t.Fatal(err)
	}
	w.next += uint64(n)
}

// waitSpare waits until s has a spare segment ready.
func waitSpare(t *testing.T, s *walStore) {
	t.Helper()
	wait.For(t, 10*time.Second, "a spare segment", func() bool { return s.spareState.Load() == spareReady })
}

// Segments cycle at the segment size; a finished segment is cut back to its
// frames and a prepared one is used at its full size, zeros after the
// frames.
func TestSegmentsCycle(t *testing.T) {
	const segSize = 2000
	w := openFrameWriter(t, segSize)
	s := w.s
	waitSpare(t, s)
	var segs []segmentFile
	for i := 0; len(segs) < 4; i++ {
		w.write([]int{1, 3, 7, 2, 12, 1, 4, 9}[i%8])
		if err := s.sync(); err != nil {
			t.Fatal(err)
		}
		segs, _ = segmentFiles(s.walDir)
	}
	if segs[0].first != 1 {
		t.Fatalf("first segment starts at %d", segs[0].first)
	}
	for i, seg := range segs[:len(segs)-1] {
		if n, size := segmentFrames(t, seg.path); n == 0 || size < segSize {
			t.Fatalf("finished segment %d: %d frames, %d bytes; want frames only, at least %d bytes", i, n, size, segSize)
		}
	}
	var got []uint64
	if err := s.read(1, w.next-1, func(i uint64, _ []byte) error { got = append(got, i); return nil }); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(got, seq(1, w.next-1)) {
		t.Fatalf("read back %v", got)
	}

	// The next tail is the spare the next write asks for.
	w.write(1)
	waitSpare(t, s)
	for s.tailSize.Load() < segSize {
		w.write(5)
	}
	w.write(1)
	tail, _ := os.ReadFile(s.tailPath)
	if len(tail) != segSize || tail[s.tailSize.Load()] != 0 || tail[len(tail)-1] != 0 {
		t.Fatalf("tail from a spare: %d bytes, want %d ending in zeros", len(tail), segSize)
	}
	w.close()
	if fi, _ := os.Stat(s.tailPath); fi.Size() != s.tailSize.Load() {
		t.Fatalf("closed tail holds %d bytes, its frames %d", fi.Size(), s.tailSize.Load())
	}
	if _, err := os.Stat(filepath.Join(s.walDir, spareName)); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("close left the spare: %v", err)
	}
}

// A crash in a prepared segment leaves its frames followed by zeros: Open
// reads that as a clean end, keeps the zeros to write into and warns about
// nothing.
func TestCrashInPreparedSegment(t *testing.T) {
	dir := t.TempDir()
	opts := Options{SegmentSize: 4096}
	l := openTest(t, dir, newTestState(), opts)
	waitSpare(t, l.wal)
	appendN(t, l, 1, 40)
	for l.wal.tailPath == "" || segmentIndex(l.wal.tailPath) == 1 {
		appendN(t, l, int(l.LastIndex())+1, 10)
	}
	appendN(t, l, int(l.LastIndex())+1, 3)
	last := l.LastIndex()
	crashed := t.TempDir()
	if err := os.CopyFS(crashed, os.DirFS(dir)); err != nil {
		t.Fatal(err)
	}
	os.Remove(filepath.Join(crashed, "LOCK"))
	tailPath := filepath.Join(crashed, walDirName, filepath.Base(l.wal.tailPath))
	if fi, _ := os.Stat(tailPath); fi.Size() != 4096 {
		t.Fatalf("the crashed tail is %d bytes; the test needs a prepared segment", fi.Size())
	}

	var logBuf bytes.Buffer
	opts.Logger = slog.New(slog.NewTextHandler(&logBuf, nil))
	st := newTestState()
	l2 := openTest(t, crashed, st, opts)
	if l2.LastIndex() != last {
		t.Fatalf("LastIndex %d after the crash, want %d", l2.LastIndex(), last)
	}
	if strings.Contains(logBuf.String(), "level=WARN") {
		t.Fatalf("a prepared segment's zeros were taken for damage: %s", logBuf.String())
	}
	appendN(t, l2, int(last)+1, 2)
	if fi, _ := os.Stat(tailPath); fi.Size() != 4096 {
		t.Fatalf("appending after the crash grew the prepared tail to %d bytes", fi.Size())
	}
	if err := l2.Close(); err != nil {
		t.Fatal(err)
	}
	st3 := newTestState()
	openTest(t, crashed, st3, Options{SegmentSize: 4096})
	if _, _, applied := st3.counts(); !slices.Equal(applied, seq(1, last+2)) {
		t.Fatalf("reopen replayed %d records, want 1 to %d", len(applied), last+2)
	}
}

// A reopened tail grows as it is written; once a spare is ready the log
// moves to it without waiting for the tail to fill.
func TestReopenedTailMovesToASpare(t *testing.T) {
	dir := t.TempDir()
	opts := Options{SegmentSize: 1 << 20}
	l := openTest(t, dir, newTestState(), opts)
	appendN(t, l, 1, 3)
	l.Close()

	l2 := openTest(t, dir, newTestState(), opts)
	appendN(t, l2, 4, 1)
	waitSpare(t, l2.wal)
	appendN(t, l2, 5, 2)
	segs, _ := segmentFiles(l2.wal.walDir)
	if tail := segs[len(segs)-1]; tail.first != 5 {
		t.Fatalf("segments %v; want the records from 5 on in a spare", segs)
	}
	if fi, _ := os.Stat(segs[len(segs)-1].path); fi.Size() != 1<<20 {
		t.Fatalf("the new tail holds %d bytes; a spare holds the segment size", fi.Size())
	}
	if err := l2.Close(); err != nil {
		t.Fatal(err)
	}
	st := newTestState()
	openTest(t, dir, st, opts)
	if _, _, applied := st.counts(); !slices.Equal(applied, seq(1, 6)) {
		t.Fatalf("reopen replayed %v", applied)
	}
}

// No spare is prepared where it would leave less than two more segments
// free: the log writes into segments that grow instead, and says why.
func TestNoSpareOnAFullDisk(t *testing.T) {
	const segSize = 4096
	availableSpace = func(string) (int64, error) { return 3*segSize - 1, nil }
	t.Cleanup(func() { availableSpace = disk.Available })
	dir := t.TempDir()
	var logBuf syncbuf.Buffer
	opts := Options{SegmentSize: segSize, Logger: slog.New(slog.NewTextHandler(&logBuf, nil))}
	l := openTest(t, dir, newTestState(), opts)
	appendN(t, l, 1, 3)
	wait.For(t, 10*time.Second, "the spare to be refused", func() bool { return l.wal.spareState.Load() == spareFailed })
	if !strings.Contains(logBuf.String(), "would leave too little for the log") {
		t.Fatalf("no warning saying why: %s", logBuf.String())
	}
	if _, err := os.Stat(filepath.Join(dir, walDirName, spareName)); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("a spare was written: %v", err)
	}
	appendN(t, l, 4, 2)
	if l.LastIndex() != 5 {
		t.Fatalf("LastIndex %d", l.LastIndex())
	}
}

// segmentFrames counts the frames of the segment at path and fails t if
// anything but frames is in the file.
func segmentFrames(t *testing.T, path string) (n int, size int64) {
	t.Helper()
	starts, end, size := readFrames(t, path)
	if end != size {
		t.Fatalf("%s: %d bytes after its %d frames", path, size-end, len(starts))
	}
	return len(starts), size
}

// segmentIndex is the first index in a segment file's name.
func segmentIndex(path string) uint64 {
	n, _ := strconv.ParseUint(filepath.Base(path), 10, 64)
	return n
}

// Retention removes whole segments, oldest first, and never the tail.
func TestCompactRemovesOldSegments(t *testing.T) {
	w := openFrameWriter(t, 300)
	s := w.s
	for range 10 {
		w.write(1)
	}
	if err := s.sync(); err != nil {
		t.Fatal(err)
	}
	before, _ := segmentFiles(s.walDir)
	if len(before) < 3 {
		t.Fatalf("%d segments; the test needs a tail after older segments", len(before))
	}
	if err := s.compact(w.next-1, 1, 0, time.Now()); err != nil {
		t.Fatal(err)
	}
	after, _ := segmentFiles(s.walDir)
	if len(after) != 1 || after[0] != before[len(before)-1] {
		t.Fatalf("segments after compaction %v, want only the tail %v", after, before[len(before)-1])
	}
	if s.firstIndex() != after[0].first {
		t.Fatalf("firstIndex %d, want %d", s.firstIndex(), after[0].first)
	}
	w.write(1)
	if err := s.sync(); err != nil {
		t.Fatal(err)
	}
}

// AppendAsync answers every record once, in index order, with Apply's
// result, interleaved with blocking appends; after Close it refuses.
func TestAppendAsync(t *testing.T) {
	for _, policy := range []SyncPolicy{SyncAlways, SyncNever} {
		l := openTest(t, t.TempDir(), newTestState(), Options{Sync: policy})
		const n = 500
		var mu sync.Mutex
		var answered []uint64
		var wg sync.WaitGroup
		wg.Add(n)
		for i := range n {
			rec := testRecord(i)
			err := l.AppendAsync(rec, func(result any, err error) {
				defer wg.Done()
				mu.Lock()
				defer mu.Unlock()
				if err != nil || result != rec.Index {
					t.Errorf("record %d: result %v, err %v", rec.Index, result, err)
				}
				answered = append(answered, rec.Index)
			})
			if err != nil {
				t.Fatal(err)
			}
			if i%50 == 0 {
				if _, err := l.Append(testRecord(-i)); err != nil {
					t.Fatal(err)
				}
			}
		}
		wg.Wait()
		increasing := slices.IsSorted(answered) && len(slices.Compact(slices.Clone(answered))) == len(answered)
		if len(answered) != n || !increasing {
			t.Fatalf("sync %v: %d answers, strictly increasing %v", policy, len(answered), increasing)
		}
		if err := l.Close(); err != nil {
			t.Fatal(err)
		}
		if err := l.AppendAsync(testRecord(0), func(any, error) { t.Error("called after Close") }); !errors.Is(err, ErrClosed) {
			t.Fatalf("AppendAsync after Close: %v, want ErrClosed", err)
		}
	}
}

// AppendAsyncBatch commits each call's records together, with consecutive
// indexes, however many callers append at once, and answers each record
// with its own result; bad arguments and a closed log are refused without
// a callback.
func TestAppendAsyncBatch(t *testing.T) {
	l := openTest(t, t.TempDir(), newTestState(), Options{Sync: SyncAlways})
	const callers, calls, size = 4, 25, 7
	var mu sync.Mutex
	indexes := map[int][]uint64{} // call → its records' indexes, in answer order
	var wg sync.WaitGroup
	wg.Add(callers * calls * size)
	for c := range callers {
		go func() {
			for k := range calls {
				call := c*calls + k
				recs := make([]*Record, size)
				thens := make([]func(any, error), size)
				for i := range recs {
					rec := testRecord(call*size + i)
					recs[i] = rec
					thens[i] = func(result any, err error) {
						defer wg.Done()
						if err != nil || result != rec.Index {
							t.Errorf("call %d record %d: result %v, err %v", call, i, result, err)
						}
						mu.Lock()
						indexes[call] = append(indexes[call], rec.Index)
						mu.Unlock()
					}
				}
				if err := l.AppendAsyncBatch(recs, thens); err != nil {
					t.Error(err)
					wg.Add(-size)
				}
			}
		}()
	}
	wg.Wait()
	for call, got := range indexes {
		if len(got) != size || got[size-1]-got[0] != size-1 || !slices.IsSorted(got) {
			t.Fatalf("call %d: indexes %v, want %d consecutive ones", call, got, size)
		}
	}
	if len(indexes) != callers*calls {
		t.Fatalf("%d calls answered, want %d", len(indexes), callers*calls)
	}

	never := func(any, error) { t.Error("a refused batch called back") }
	if err := l.AppendAsyncBatch([]*Record{testRecord(1)}, nil); err == nil {
		t.Error("a record without a callback was accepted")
	}
	if err := l.AppendAsyncBatch([]*Record{testRecord(1), nil}, []func(any, error){never, never}); err == nil {
		t.Error("a nil record was accepted")
	}
	if err := l.AppendAsyncBatch([]*Record{testRecord(1)}, []func(any, error){nil}); err == nil {
		t.Error("a nil callback was accepted")
	}
	if err := l.AppendAsync(testRecord(1), nil); err == nil {
		t.Error("AppendAsync took a nil callback")
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if err := l.AppendAsyncBatch([]*Record{testRecord(1)}, []func(any, error){never}); !errors.Is(err, ErrClosed) {
		t.Fatalf("after Close: %v, want ErrClosed", err)
	}
}
