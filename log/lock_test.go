package log

import (
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// One engine per log directory: a second Open is refused, naming the
// holder; readers keep working; Close (or the holder's death) frees it.
func TestOneLogPerDirectory(t *testing.T) {
	dir := t.TempDir()
	first := openTest(t, dir, newTestState(), Options{})
	if _, err := first.Append(testRecord(1)); err != nil {
		t.Fatal(err)
	}
	_, err := Open(dir, newTestState(), Options{Logger: quietLogger()})
	if !errors.Is(err, ErrLocked) || !strings.Contains(err.Error(), "pid "+strconv.Itoa(os.Getpid())) || !strings.Contains(err.Error(), dir) {
		t.Fatalf("second Open: %v; want ErrLocked naming %s and pid %d", err, dir, os.Getpid())
	}
	n := 0
	if err := Scan(dir, 1, func(*Record) error { n++; return nil }); err != nil || n != 1 {
		t.Fatalf("Scan next to the open log: %d records, %v", n, err)
	}
	if err := first.Close(); err != nil {
		t.Fatal(err)
	}
	again := openTest(t, dir, newTestState(), Options{})
	if again.LastIndex() != 1 {
		t.Fatalf("reopened at %d", again.LastIndex())
	}
}

func TestLogDirectoryIsOwnerOnly(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data", "log")
	openTest(t, dir, newTestState(), Options{})
	for _, d := range []string{filepath.Dir(dir), dir, filepath.Join(dir, walDirName)} {
		fi, err := os.Stat(d)
		if err != nil {
			t.Fatal(err)
		}
		if perm := fi.Mode().Perm(); perm&0o077 != 0 {
			t.Errorf("%s has mode %v; want no access for group and others", d, perm)
		}
	}
}

// A segment removed while the log runs is noticed at the next fsync: the
// write is not acknowledged and the log fails.
func TestRemovedSegmentFailsTheLog(t *testing.T) {
	dir := t.TempDir()
	l := openTest(t, dir, newTestState(), Options{Sync: SyncAlways})
	if _, err := l.Append(testRecord(1)); err != nil {
		t.Fatal(err)
	}
	segs, err := segmentFiles(filepath.Join(dir, walDirName))
	if err != nil || len(segs) == 0 {
		t.Fatal(segs, err)
	}
	if err := os.Remove(segs[len(segs)-1].path); err != nil {
		t.Fatal(err)
	}
	_, err = l.Append(testRecord(2))
	if !errors.Is(err, ErrFailed) || !strings.Contains(err.Error(), "was removed from under the log") {
		t.Fatalf("append after the segment was removed: %v", err)
	}
}
