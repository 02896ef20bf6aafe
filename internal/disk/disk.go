// Package disk holds the two file operations the log's segment store is
// built on, shared with the benchmarks that measure its raw limit.
package disk

import (
	"fmt"
	"os"
)

// Preallocate writes size zero bytes to f from its start and fsyncs it, so
// that later writes within size change no file metadata. Space reserved by
// fallocate(2) alone would not do: its extents are marked unwritten, and the
// first write to each must be recorded in the file system's journal.
func Preallocate(f *os.File, size int64) error {
	zeros := make([]byte, min(size, 1<<20))
	for off := int64(0); off < size; off += int64(len(zeros)) {
		n := min(size-off, int64(len(zeros)))
		if _, err := f.WriteAt(zeros[:n], off); err != nil {
			return fmt.Errorf("preallocate %s: %w", f.Name(), err)
		}
	}
	return f.Sync()
}
