package log

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"time"
)

// repairTail cuts the last segment of walDir back to its last intact frame.
//
// A crash can leave the segment being appended to with a torn frame (cut
// short) or garbage after the last good one, and tidwall/wal refuses to open
// such a segment (ErrCorrupt). Everything from the first frame that is
// truncated or fails its checksum to the end of the file is copied to
// <dir>/corrupt-<firstBadIndex>-<unixnano>.bin and fsynced before the segment
// is truncated, so nothing is dropped silently. Only the tail is examined:
// tidwall fsyncs a segment before starting the next, so damage anywhere else
// is not a torn write and is reported when replay reaches it.
func repairTail(dir, walDir string, logger *slog.Logger) error {
	segs, err := segmentFiles(walDir)
	if err != nil || len(segs) == 0 {
		return err
	}
	tail := segs[len(segs)-1]
	f, err := os.OpenFile(tail.path, os.O_RDWR, 0)
	if err != nil {
		return err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return err
	}
	size := fi.Size()
	sr := newSegmentReader()
	sr.reset(f, size)
	index := tail.first
	var cause error
	for {
		frame, err := sr.next()
		if err == io.EOF {
			return nil
		}
		if err == nil {
			err = checkFrame(frame)
		}
		if err != nil {
			cause = err
			break
		}
		index++
	}

	bad := make([]byte, size-sr.last)
	if _, err := f.ReadAt(bad, sr.last); err != nil && !errors.Is(err, io.EOF) {
		return fmt.Errorf("read damaged tail of %s: %w", tail.path, err)
	}
	kept := filepath.Join(dir, fmt.Sprintf("corrupt-%d-%d.bin", index, time.Now().UnixNano()))
	if err := writeFileSync(kept, bad); err != nil {
		return fmt.Errorf("keep damaged tail aside: %w", err)
	}
	if err := syncDir(dir); err != nil {
		return err
	}
	if err := f.Truncate(sr.last); err != nil {
		return fmt.Errorf("truncate %s: %w", tail.path, err)
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("sync %s: %w", tail.path, err)
	}
	logger.Warn("log: truncated a torn or corrupt tail; the damaged bytes are kept aside",
		"index", index, "segment", tail.path, "offset", sr.last, "bytes", len(bad), "kept", kept, "cause", cause)
	return nil
}

// writeFileSync creates name (which must not exist), writes data and fsyncs
// it. The caller fsyncs the directory.
func writeFileSync(name string, data ...[]byte) error {
	f, err := os.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o640)
	if err != nil {
		return err
	}
	for _, d := range data {
		if _, err := f.Write(d); err != nil {
			f.Close()
			return err
		}
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
