package disk

import (
	"bytes"
	"os"
	"path/filepath"
	"runtime"
	"testing"
)

func TestPreallocate(t *testing.T) {
	for _, size := range []int64{1, 4096, 3<<20 + 5} {
		path := filepath.Join(t.TempDir(), "f")
		f, err := os.Create(path)
		if err != nil {
			t.Fatal(err)
		}
		f.WriteString("old")
		if err := Preallocate(f, size); err != nil {
			t.Fatal(err)
		}
		f.Close()
		b, _ := os.ReadFile(path)
		if want := max(size, 3); int64(len(b)) != want || bytes.Count(b[:size], []byte{0}) != int(size) {
			t.Fatalf("size %d: file of %d bytes, %d zeros in the first %d", size, len(b), bytes.Count(b[:size], []byte{0}), size)
		}
	}
}

// An Appender writes back to back, wraps around at its size and never
// grows the file.
func TestAppenderWraps(t *testing.T) {
	path := filepath.Join(t.TempDir(), "raw")
	a, err := NewAppender(path, 10)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{"abcd", "efgh", "ijkl"} {
		if err := a.Append([]byte(s)); err != nil {
			t.Fatal(err)
		}
	}
	a.Close()
	if b, _ := os.ReadFile(path); string(b) != "ijklefgh\x00\x00" {
		t.Fatalf("file holds %q", b)
	}
	if _, err := NewAppender(path, 10); err == nil {
		t.Fatal("NewAppender took an existing file")
	}
}

func TestAvailable(t *testing.T) {
	free, err := Available(t.TempDir())
	if err != nil || free <= 0 {
		t.Fatalf("Available = %d, %v", free, err)
	}
	if _, err := Available(filepath.Join(t.TempDir(), "missing")); err == nil && runtime.GOOS == "linux" {
		t.Fatal("Available of a missing path: no error")
	}
}
