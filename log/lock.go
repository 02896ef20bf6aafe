package log

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

// ErrLocked is returned by Open for a directory another Log (in this or
// another process) has open. Two engines appending to one log would write
// over each other's records, and the next Open would cut the "torn" tail.
var ErrLocked = errors.New("log directory is in use by another engine")

// lockFileName is the file in the log directory the exclusive lock is held
// on; it holds the holder's pid, for the refusal message.
const lockFileName = "LOCK"

// dirLock is an exclusive flock(2) on a log directory. The kernel drops it
// when the process dies, so a crash never leaves the directory locked.
type dirLock struct{ f *os.File }

// lockDir takes the lock on dir or fails with ErrLocked naming the holder.
// Readers (Scan, LatestSnapshotBefore) take no lock and keep working next
// to a running engine.
func lockDir(dir string) (*dirLock, error) {
	f, err := os.OpenFile(filepath.Join(dir, lockFileName), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("log: lock %s: %w", dir, err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		holder, _ := io.ReadAll(io.LimitReader(f, 32))
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			pid := strings.TrimSpace(string(holder))
			if pid == "" {
				pid = "unknown"
			}
			return nil, fmt.Errorf("log: open %s: %w (pid %s); run one engine per data directory", dir, ErrLocked, pid)
		}
		return nil, fmt.Errorf("log: lock %s: %w", dir, err)
	}
	if err := f.Truncate(0); err == nil {
		_, err = f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	}
	return &dirLock{f: f}, nil
}

// release drops the lock.
func (l *dirLock) release() {
	syscall.Flock(int(l.f.Fd()), syscall.LOCK_UN)
	l.f.Close()
}

// LockDir creates dir (owner-only) if needed and takes the same exclusive
// lock Open takes, for a directory that holds the local part of a log kept
// elsewhere (a cluster node's snapshots). The returned func releases it.
func LockDir(dir string) (release func(), err error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("log: lock %s: %w", dir, err)
	}
	l, err := lockDir(dir)
	if err != nil {
		return nil, err
	}
	return l.release, nil
}
