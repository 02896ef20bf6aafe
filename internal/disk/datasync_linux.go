package disk

import (
	"os"
	"syscall"
)

// Datasync flushes f's data and the metadata needed to read it back
// (fdatasync(2)). Unlike fsync it does not wait for the modification time to
// reach the journal, which is all that changes when a preallocated file is
// written.
func Datasync(f *os.File) error {
	for {
		err := syscall.Fdatasync(int(f.Fd()))
		switch err {
		case nil:
			return nil
		case syscall.EINTR:
			continue
		default:
			return os.NewSyscallError("fdatasync", err)
		}
	}
}
