package log

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"os"
	"slices"
	"sync"
	"testing"
	"time"
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
	l.wal.w.Close() // make the next write fail underneath the log
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
	t    *testing.T
	s    *walStore
	enc  *recordEncoder
	next uint64
}

// openFrameWriter opens a walStore in a fresh directory with segments of
// segSize bytes, closed when the test ends.
func openFrameWriter(t *testing.T, segSize int) *frameWriter {
	s, _, err := openWAL(t.TempDir(), segSize, quietLogger())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.close() })
	return &frameWriter{t: t, s: s, enc: newRecordEncoder(), next: 1}
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

func TestSegmentCycleMirror(t *testing.T) {
	// The walStore predicts tidwall's segment cycles to know when to fsync
	// the directory; check the prediction against the files tidwall makes.
	w := openFrameWriter(t, 300)
	s := w.s
	for _, size := range []int{1, 1, 3, 1, 7, 2, 1, 1, 12, 1, 4, 1, 1, 1, 9} {
		before, _ := segmentFiles(s.walDir)
		cycles := s.cycles.Load()
		w.write(size)
		after, _ := segmentFiles(s.walDir)
		if made, predicted := uint64(len(after)-len(before)), s.cycles.Load()-cycles; made != predicted {
			t.Fatalf("batch of %d: tidwall made %d new segments, store predicted %d", size, made, predicted)
		}
		if err := s.sync(); err != nil {
			t.Fatal(err)
		}
		if tail := after[len(after)-1].path; s.tailPath != tail {
			t.Fatalf("batch of %d: sync fsyncs %s, the tail is %s", size, s.tailPath, tail)
		}
	}
}

// Compaction can cut into the tail segment, and tidwall then replaces the
// tail file with a copy: sync must follow it to the new file, or it would
// fsync a file nothing is written to any more.
func TestSyncFollowsTheTailThroughCompaction(t *testing.T) {
	w := openFrameWriter(t, 300)
	s := w.s
	write := func(n int) {
		t.Helper()
		w.write(n)
		if err := s.sync(); err != nil {
			t.Fatal(err)
		}
	}
	write(10)
	segs, _ := segmentFiles(s.walDir)
	if len(segs) < 2 {
		t.Fatalf("%d segments; the test needs a tail after older segments", len(segs))
	}
	before, _ := s.tail.Stat()
	if err := s.compact(w.next-1, 1, 0, time.Now()); err != nil {
		t.Fatal(err)
	}
	if after, _ := segmentFiles(s.walDir); len(after) != 1 {
		t.Fatalf("%d segments after compaction, want only the tail", len(after))
	}
	named, _ := os.Stat(s.tailPath)
	if os.SameFile(before, named) {
		t.Fatal("compaction kept the tail file; the test needs it rewritten")
	}
	write(1)
	open, _ := s.tail.Stat()
	if named, _ = os.Stat(s.tailPath); !os.SameFile(open, named) {
		t.Fatal("sync still fsyncs the tail file compaction replaced")
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
