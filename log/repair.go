package log

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"time"
)

// repairTail cuts the tail segment back to its last intact frame and
// returns how many frames it holds and their size in bytes.
//
// A crash can leave the tail with a torn frame (cut short, or with pages of
// it missing) or garbage after the last good one. Everything from the first
// frame that is truncated or fails its checksum to the last nonzero byte of
// the file is copied to <dir>/corrupt-<firstBadIndex>-<unixnano>.bin and
// fsynced before the segment is truncated, so nothing is dropped silently.
// Zeros after the last frame are the unused rest of a prepared segment and
// are kept for the next writes, unless anything nonzero follows them: pages
// of an unacknowledged batch that reached the disk out of order must not
// lie in wait for the frames that will be written before them. Only the
// tail is examined: a segment is fsynced before the next one is started, so
// damage anywhere else is not a torn write and is reported when replay
// reaches it.
func repairTail(dir string, tail segmentFile, logger *slog.Logger) (frames uint64, size int64, err error) {
	f, err := os.OpenFile(tail.path, os.O_RDWR, 0)
	if err != nil {
		return 0, 0, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return 0, 0, err
	}
	fileSize := fi.Size()
	sr := newSegmentReader()
	sr.reset(f, fileSize)
	var cause error
	for {
		frame, err := sr.next()
		if err == io.EOF {
			break
		}
		if err == nil {
			err = checkFrame(frame)
		}
		if err != nil {
			cause = err
			break
		}
		frames++
	}
	good := sr.last
	if good == fileSize {
		return frames, good, nil
	}
	rest := make([]byte, fileSize-good)
	if _, err := f.ReadAt(rest, good); err != nil && !errors.Is(err, io.EOF) {
		return 0, 0, fmt.Errorf("read the tail of %s: %w", tail.path, err)
	}
	bad := bytes.TrimRight(rest, "\x00")
	if len(bad) == 0 {
		return frames, good, nil // a prepared segment's zeros
	}
	if cause == nil {
		cause = errors.New("data after the zeros that end the segment")
	}
	index := tail.first + frames
	kept := filepath.Join(dir, fmt.Sprintf("corrupt-%d-%d.bin", index, time.Now().UnixNano()))
	if err := writeFileSync(kept, bad); err != nil {
		return 0, 0, fmt.Errorf("keep damaged tail aside: %w", err)
	}
	if err := syncDir(dir); err != nil {
		return 0, 0, err
	}
	if err := f.Truncate(good); err != nil {
		return 0, 0, fmt.Errorf("truncate %s: %w", tail.path, err)
	}
	if err := f.Sync(); err != nil {
		return 0, 0, fmt.Errorf("sync %s: %w", tail.path, err)
	}
	logger.Warn("log: truncated a torn or corrupt tail; the damaged bytes are kept aside",
		"index", index, "segment", tail.path, "offset", good, "bytes", len(bad), "kept", kept, "cause", cause)
	return frames, good, nil
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
