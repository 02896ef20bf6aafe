//go:build !linux

package disk

import "os"

// Datasync flushes f to stable storage; without fdatasync(2) that is fsync.
func Datasync(f *os.File) error { return f.Sync() }
