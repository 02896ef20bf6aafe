package log

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"sort"
)

var (
	// ErrNotALog is returned by Scan and LatestSnapshotBefore for a
	// directory that has no wal/ subdirectory.
	ErrNotALog = errors.New("not a log directory (no wal/ subdirectory)")
	// ErrCompacted reports that retention removed records a Scan or Read
	// was about to deliver; start again from the first index kept.
	ErrCompacted = errors.New("records were removed by retention during the read")
	// ErrCorrupt reports a damaged frame, or a gap between segments, before
	// the tail of the log: not a torn write, so it is not repaired.
	ErrCorrupt = errors.New("log is corrupt before its tail")
)

// Scan calls fn for every record in the log directory dir with index >= from,
// in index order, reading the segment files directly. It takes no locks and
// never writes, so it is safe on a directory a live Log is appending to: it
// reads up to the end as it finds it and stops quietly at a torn or
// in-progress tail. Records older than the first one retention kept are
// skipped; if retention removes records the scan has not reached yet it
// fails with ErrCompacted. The *Record passed to fn is reused between calls; its fields may
// be kept, the pointer may not. An error from fn stops the scan and is
// returned as is.
func Scan(dir string, from uint64, fn func(*Record) error) error {
	walDir, err := logWALDir(dir)
	if err != nil {
		return fmt.Errorf("log: scan: %w", err)
	}
	d := newRecordDecoder()
	var rec Record
	return scanSegments(walDir, from, math.MaxUint64, false, func(index uint64, frame []byte) error {
		if err := d.decodePayload(frame[frameHeaderSize:], &rec); err != nil {
			return fmt.Errorf("log: scan %s: index %d: %w", dir, index, err)
		}
		rec.Index = index
		return fn(&rec)
	})
}

// logWALDir returns dir's segment directory, or ErrNotALog.
func logWALDir(dir string) (string, error) {
	walDir := filepath.Join(dir, walDirName)
	if fi, err := os.Stat(walDir); err != nil || !fi.IsDir() {
		return "", fmt.Errorf("%s: %w", dir, ErrNotALog)
	}
	return walDir, nil
}

// scanSegments calls fn with every checksum-verified frame whose index is in
// [from, upto]. In strict mode every such index must be present and intact;
// otherwise a torn or damaged last segment ends the scan quietly. Records
// before the first one kept are skipped, but retention removing records
// after the scan started is ErrCompacted. A segment that disappears while
// being opened (retention, or the rename of an older log's START file) is
// looked up again.
// fn's errors are returned unwrapped.
func scanSegments(walDir string, from, upto uint64, strict bool, fn func(uint64, []byte) error) error {
	next := max(from, 1)
	start := next // next != start once something was delivered
	sr := newSegmentReader()
	var finished uint64 // first index of the segment last read to a clean end
	var reread uint64   // first index of a finished segment read again
	for misses := 0; next <= upto; {
		segs, err := segmentFiles(walDir)
		if err != nil {
			return fmt.Errorf("log: list segments: %w", err)
		}
		if len(segs) == 0 {
			break
		}
		i := sort.Search(len(segs), func(i int) bool { return segs[i].first > next }) - 1
		if i < 0 {
			// Older records were removed by retention: start at the first
			// one kept, unless that would leave a hole in what was delivered.
			if next != start {
				return fmt.Errorf("log: records %d to %d: %w", next, segs[0].first-1, ErrCompacted)
			}
			next, start, i = segs[0].first, segs[0].first, 0
			if next > upto {
				break
			}
		}
		seg := segs[i]
		if seg.first == finished {
			if i+1 == len(segs) {
				break // the end of the log as found
			}
			// A successor exists but does not start where the segment
			// ended. The segment may have grown since it was read (a
			// segment is complete before the next is created), so read it
			// once more; if that does not close the gap, it is real.
			if reread == seg.first {
				return fmt.Errorf("log: segment %s starts at %d, expected %d: %w", segs[i+1].path, segs[i+1].first, next, ErrCorrupt)
			}
			reread = seg.first
		}
		f, err := os.Open(seg.path)
		if errors.Is(err, fs.ErrNotExist) && misses < 10 {
			misses++
			continue
		}
		if err != nil {
			return fmt.Errorf("log: open segment: %w", err)
		}
		misses = 0
		index, damage, err := readSegment(f, sr, seg.first, &next, upto, fn)
		f.Close()
		if err != nil {
			return err
		}
		if damage != nil {
			if !strict && i == len(segs)-1 {
				return nil // torn tail: the end of the log as far as a reader can tell
			}
			return fmt.Errorf("log: segment %s: index %d at offset %d: %w: %w", seg.path, index, sr.last, ErrCorrupt, damage)
		}
		finished = seg.first
	}
	if strict && next <= upto {
		return fmt.Errorf("log: records %d to %d are missing from %s: %w", next, upto, walDir, ErrCorrupt)
	}
	return nil
}

// readSegment delivers f's frames with index in [*next, upto] to fn,
// advancing *next. It returns the index it stopped at, the damage that
// stopped it (a torn frame or a checksum failure) if any, and err for a
// failure to read or an error from fn.
func readSegment(f *os.File, sr *segmentReader, first uint64, next *uint64, upto uint64, fn func(uint64, []byte) error) (index uint64, damage, err error) {
	fi, err := f.Stat()
	if err != nil {
		return first, nil, fmt.Errorf("log: stat segment: %w", err)
	}
	sr.reset(f, fi.Size())
	for index = first; index <= upto; index++ {
		frame, ferr := sr.next()
		if ferr == io.EOF {
			break
		}
		if ferr == nil {
			ferr = checkFrame(frame)
		}
		if ferr != nil {
			return index, ferr, nil
		}
		if index >= *next {
			if err := fn(index, frame); err != nil {
				return index, nil, err
			}
			*next = index + 1
		}
	}
	return index, nil, nil
}
