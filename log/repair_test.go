package log

import (
	"bytes"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// tailSegment returns the last segment of dir's log, the offset of its last
// frame and the number of frames in it.
func tailSegment(t *testing.T, dir string) (seg segmentFile, lastOff int64, frames int) {
	t.Helper()
	segs, err := segmentFiles(filepath.Join(dir, walDirName))
	if err != nil || len(segs) == 0 {
		t.Fatalf("segments: %v %v", segs, err)
	}
	seg = segs[len(segs)-1]
	starts, _, _ := readFrames(t, seg.path)
	if len(starts) > 0 {
		lastOff = starts[len(starts)-1]
	}
	return seg, lastOff, len(starts)
}

// closedLog writes records 1..n to a new log and closes it; it returns the
// log's directory, its last segment and the offset of that segment's last
// frame.
func closedLog(t *testing.T, n int) (dir string, seg segmentFile, lastOff int64) {
	t.Helper()
	dir = t.TempDir()
	l := openTest(t, dir, newTestState(), Options{})
	appendN(t, l, 1, n)
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	seg, lastOff, _ = tailSegment(t, dir)
	return dir, seg, lastOff
}

// readFrames walks the frames of the segment file at path to its clean end
// and returns their offsets, where they end and the file's size. A torn
// frame fails t.
func readFrames(t *testing.T, path string) (starts []int64, end, size int64) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	fi, _ := f.Stat()
	sr := newSegmentReader()
	sr.reset(f, fi.Size())
	for {
		off := sr.off
		if _, err := sr.next(); err == io.EOF {
			return starts, sr.last, fi.Size()
		} else if err != nil {
			t.Fatal(err)
		}
		starts = append(starts, off)
	}
}

func TestRepairTail(t *testing.T) {
	tests := []struct {
		name    string
		segSize int
		// damage changes the tail segment and returns the bytes that must be
		// kept aside and how many records after the last frame's index the
		// first bad one is (0: the last frame itself).
		damage func(t *testing.T, path string, lastOff int64) (kept []byte, badAfter uint64)
	}{
		{"torn last record", 0, func(t *testing.T, path string, lastOff int64) ([]byte, uint64) {
			b, _ := os.ReadFile(path)
			cut := lastOff + (int64(len(b))-lastOff)/2
			if err := os.Truncate(path, cut); err != nil {
				t.Fatal(err)
			}
			return b[lastOff:cut], 0
		}},
		{"corrupt last record", 0, func(t *testing.T, path string, lastOff int64) ([]byte, uint64) {
			b, _ := os.ReadFile(path)
			b[len(b)-3] ^= 0x40
			if err := os.WriteFile(path, b, 0o640); err != nil {
				t.Fatal(err)
			}
			return b[lastOff:], 0
		}},
		{"a frame after zeros", 0, func(t *testing.T, path string, lastOff int64) ([]byte, uint64) {
			// An unacknowledged batch whose first page never reached the
			// disk: what did must not pass for the frames written next.
			b, _ := os.ReadFile(path)
			stale := append(make([]byte, 512), b[lastOff:]...)
			f, _ := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
			f.Write(append(stale, make([]byte, 100)...))
			f.Close()
			return bytes.TrimRight(stale, "\x00"), 1
		}},
		{"torn length prefix, many segments", 600, func(t *testing.T, path string, lastOff int64) ([]byte, uint64) {
			b, _ := os.ReadFile(path)
			torn := []byte{0x80} // a uvarint cut after its first byte
			if err := os.WriteFile(path, append(b, torn...), 0o640); err != nil {
				t.Fatal(err)
			}
			return torn, 1
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			opts := Options{SegmentSize: tt.segSize}
			l := openTest(t, dir, newTestState(), opts)
			appendN(t, l, 1, 12)
			if _, _, frames := tailSegment(t, dir); frames == 0 {
				appendN(t, l, 13, 1) // a segment cycle left the tail empty
			}
			last := l.LastIndex()
			if err := l.Close(); err != nil {
				t.Fatal(err)
			}
			seg, lastOff, _ := tailSegment(t, dir)
			kept, badAfter := tt.damage(t, seg.path, lastOff)
			firstBad := last + badAfter

			var logBuf bytes.Buffer
			st := newTestState()
			opts.Logger = slog.New(slog.NewTextHandler(&logBuf, nil))
			l2 := openTest(t, dir, st, opts)
			if got := l2.LastIndex(); got != firstBad-1 {
				t.Fatalf("LastIndex after repair %d, want %d", got, firstBad-1)
			}
			if applies, _, _ := st.counts(); uint64(applies) != firstBad-1 {
				t.Fatalf("replayed %d records, want %d", applies, firstBad-1)
			}
			matches, _ := filepath.Glob(filepath.Join(dir, "corrupt-"+strconv.FormatUint(firstBad, 10)+"-*.bin"))
			if len(matches) != 1 {
				ents, _ := os.ReadDir(dir)
				t.Fatalf("want one corrupt-%d-*.bin, dir holds %v", firstBad, ents)
			}
			if got, _ := os.ReadFile(matches[0]); !bytes.Equal(got, kept) {
				t.Fatalf("kept-aside bytes differ:\n got %x\nwant %x", got, kept)
			}
			if msg := logBuf.String(); !strings.Contains(msg, "level=WARN") || !strings.Contains(msg, "index="+strconv.FormatUint(firstBad, 10)) {
				t.Fatalf("no warning naming index %d: %s", firstBad, msg)
			}
			res, err := l2.Append(testRecord(int(firstBad)))
			if err != nil || res != firstBad {
				t.Fatalf("Append after repair: %v, %v (want index %d)", res, err, firstBad)
			}
			if err := l2.Close(); err != nil {
				t.Fatal(err)
			}
			st3 := newTestState()
			openTest(t, dir, st3, Options{SegmentSize: tt.segSize})
			if _, _, applied := st3.counts(); len(applied) != int(firstBad) {
				t.Fatalf("after repair and append, reopen replayed %d records, want %d", len(applied), firstBad)
			}
		})
	}
}

func TestRepairIntactTailIsUntouched(t *testing.T) {
	dir := t.TempDir()
	l := openTest(t, dir, newTestState(), Options{})
	appendN(t, l, 1, 5)
	l.Close()
	l2 := openTest(t, dir, newTestState(), Options{})
	if m, _ := filepath.Glob(filepath.Join(dir, "corrupt-*")); len(m) != 0 {
		t.Fatalf("intact log produced %v", m)
	}
	if l2.wal.spareState.Load() != spareNone {
		t.Fatal("reopening a log prepares a spare segment before anything is written")
	}
}

// Zeros after the last frame are a prepared segment's unused rest, not
// damage: Open keeps them and appends into them.
func TestRepairKeepsZeroTail(t *testing.T) {
	dir, seg, _ := closedLog(t, 5)
	f, _ := os.OpenFile(seg.path, os.O_WRONLY|os.O_APPEND, 0)
	f.Write(make([]byte, 4096))
	f.Close()
	fi, _ := os.Stat(seg.path)

	var logBuf bytes.Buffer
	l2 := openTest(t, dir, newTestState(), Options{Logger: slog.New(slog.NewTextHandler(&logBuf, nil))})
	if l2.LastIndex() != 5 || strings.Contains(logBuf.String(), "level=WARN") {
		t.Fatalf("LastIndex %d, log %q", l2.LastIndex(), logBuf.String())
	}
	if m, _ := filepath.Glob(filepath.Join(dir, "corrupt-*")); len(m) != 0 {
		t.Fatalf("zeros kept aside as %v", m)
	}
	appendN(t, l2, 6, 1)
	if now, _ := os.Stat(seg.path); now.Size() != fi.Size() {
		t.Fatalf("the tail grew from %d to %d bytes; the append belongs in its zeros", fi.Size(), now.Size())
	}
}
