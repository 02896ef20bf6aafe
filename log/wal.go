package log

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tidwall/wal"
)

// store is where the sequencer puts frames: segment files (walStore) or
// memory (memStore).
type store interface {
	// write appends the frames buf[ends[i-1]:ends[i]] at indexes first, first+1, ...
	write(first uint64, buf []byte, ends []int) error
	// sync makes every written frame durable.
	sync() error
	// read calls fn for each frame with index in [from, upto], in order,
	// starting at the first index still held if from is older.
	read(from, upto uint64, fn func(index uint64, frame []byte) error) error
	// firstIndex is the oldest index held (lastIndex+1 when empty).
	firstIndex() uint64
	close() error
}

// walStore keeps frames in tidwall/wal segment files under <dir>/wal. It
// opens tidwall with NoSync and fsyncs itself, so one fsync covers a whole
// group-committed batch.
type walStore struct {
	dir    string
	walDir string
	lock   *dirLock
	w      *wal.Log
	batch  wal.Batch
	logger *slog.Logger

	first atomic.Uint64

	// Owned by write (the sequencer). tidwall/wal creates a new segment file
	// without fsyncing the directory, so the store mirrors tidwall's cycling
	// rule to know when a sync must also fsync walDir and find the new tail.
	segSize   int
	tailBytes int
	cycles    atomic.Uint64 // segments started by write since open, counted once created

	// sync fsyncs the tail through a descriptor of its own: tidwall's Sync
	// holds the lock WriteBatch needs, and the sequencer must be able to
	// write the next batch while this one is fsynced. Compaction can replace
	// the tail file (tidwall removes it and renames a copy over it): tailMu
	// keeps sync from seeing that half done, and tailMoved makes the next
	// sync follow the copy.
	tailMu       sync.Mutex
	tailMoved    bool
	syncedCycles uint64
	tailPath     string // the segment being written
	tail         *os.File
}

// openWAL creates the directory layout if needed, repairs a damaged tail and
// opens the segments. It returns the store and its last index.
func openWAL(dir string, segSize int, logger *slog.Logger) (*walStore, uint64, error) {
	walDir := filepath.Join(dir, walDirName)
	// Owner only: the log holds every value the engine was given.
	for _, d := range []string{dir, walDir, filepath.Join(dir, snapshotDirName)} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return nil, 0, fmt.Errorf("log: open %s: %w", dir, err)
		}
	}
	lock, err := lockDir(dir)
	if err != nil {
		return nil, 0, err
	}
	if err := repairTail(dir, walDir, logger); err != nil {
		lock.release()
		return nil, 0, fmt.Errorf("log: open %s: repair tail: %w", dir, err)
	}
	w, err := wal.Open(walDir, &wal.Options{
		NoSync:      true,
		SegmentSize: segSize,
		LogFormat:   wal.Binary,
		AllowEmpty:  true, // a tail repaired down to nothing is still a log
	})
	if err != nil {
		lock.release()
		return nil, 0, fmt.Errorf("log: open %s: segments: %w", dir, err)
	}
	s := &walStore{dir: dir, walDir: walDir, w: w, logger: logger, segSize: segSize, lock: lock}
	if err := s.init(); err != nil {
		w.Close()
		lock.release()
		return nil, 0, fmt.Errorf("log: open %s: %w", dir, err)
	}
	last, err := w.LastIndex()
	if err != nil {
		w.Close()
		lock.release()
		return nil, 0, fmt.Errorf("log: open %s: %w", dir, err)
	}
	return s, last, nil
}

func (s *walStore) init() error {
	// tidwall may just have created the first segment or finished a
	// START rename: make those directory entries durable.
	for _, d := range []string{s.walDir, filepath.Join(s.dir, snapshotDirName), s.dir} {
		if err := syncDir(d); err != nil {
			return err
		}
	}
	first, err := s.w.FirstIndex()
	if err != nil {
		return err
	}
	s.first.Store(first)
	segs, err := segmentFiles(s.walDir)
	if err != nil || len(segs) == 0 {
		return err
	}
	fi, err := os.Stat(segs[len(segs)-1].path)
	if err != nil {
		return err
	}
	s.tailBytes = int(fi.Size())
	return s.openTail(segs[len(segs)-1].path)
}

// openTail points sync's descriptor at the segment file named path.
func (s *walStore) openTail(path string) error {
	f, err := os.Open(path) // fsync works on a read-only descriptor
	if err != nil {
		return err
	}
	if s.tail != nil {
		s.tail.Close()
	}
	s.tail, s.tailPath = f, path
	return nil
}

func (s *walStore) write(first uint64, buf []byte, ends []int) error {
	// Mirror of tidwall/wal v1.2.1 writeBatch: a tail already over the
	// target size is cycled before the batch, and a tail reaching it during
	// the batch is cycled right after that entry.
	var cycled uint64
	if s.tailBytes > s.segSize {
		s.tailBytes = 0
		cycled++
	}
	start := 0
	for i, end := range ends {
		n := end - start
		s.batch.Write(first+uint64(i), buf[start:end])
		if s.tailBytes += uvarintLen(n) + n; s.tailBytes >= s.segSize {
			s.tailBytes = 0
			cycled++
		}
		start = end
	}
	if err := s.w.WriteBatch(&s.batch); err != nil {
		s.batch.Clear()
		return err
	}
	// Only now do the new segments exist: a sync running meanwhile that saw
	// the count would look for them, not find them and never look again.
	s.cycles.Add(cycled)
	return nil
}

func uvarintLen(n int) int {
	var b [binary.MaxVarintLen64]byte
	return binary.PutUvarint(b[:], uint64(n))
}

// sync makes every frame written before the call durable. It may run while
// write adds the next batch: a frame written meanwhile may or may not be
// covered, which is never a problem, because a batch is only acknowledged
// after a sync that started after its write.
func (s *walStore) sync() error {
	// tidwall fsyncs a segment itself when it starts the next one, so only
	// the tail can hold unsynced frames. Loading cycles first means every
	// segment a batch written before this call started is found below.
	cycles := s.cycles.Load()
	s.tailMu.Lock()
	defer s.tailMu.Unlock()
	if cycles != s.syncedCycles || s.tailMoved {
		segs, err := segmentFiles(s.walDir)
		if err != nil {
			return err
		}
		if len(segs) > 0 && (s.tailMoved || segs[len(segs)-1].path != s.tailPath) {
			if err := s.openTail(segs[len(segs)-1].path); err != nil {
				return err
			}
		}
		s.tailMoved = false
	}
	// A segment deleted under the log still takes writes (the open file
	// outlives its name) and then vanishes at the next start: refuse to call
	// that durable.
	if _, err := os.Stat(s.tailPath); errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("segment %s was removed from under the log", s.tailPath)
	} else if err != nil {
		return err
	}
	if err := s.tail.Sync(); err != nil {
		return err
	}
	if cycles != s.syncedCycles {
		if err := syncDir(s.walDir); err != nil {
			return err
		}
		s.syncedCycles = cycles
	}
	return nil
}

func (s *walStore) read(from, upto uint64, fn func(uint64, []byte) error) error {
	return scanSegments(s.walDir, from, upto, true, fn)
}

func (s *walStore) firstIndex() uint64 { return s.first.Load() }

func (s *walStore) close() error {
	err := s.w.Close() // fsyncs the tail
	if err == nil && s.cycles.Load() != s.syncedCycles {
		err = syncDir(s.walDir)
	}
	if s.tail != nil {
		s.tail.Close()
	}
	s.lock.release()
	return err
}

// compact removes the oldest segments that lie entirely at or before
// covered (an index a retained snapshot includes) and beyond the retention
// limits (see Options.RetainBytes). The tail segment is never removed.
func (s *walStore) compact(covered uint64, retainBytes int64, retainAge time.Duration, now time.Time) error {
	if retainBytes <= 0 && retainAge <= 0 {
		return nil
	}
	segs, err := segmentFiles(s.walDir)
	if err != nil {
		return err
	}
	sizes := make([]int64, len(segs))
	mtimes := make([]time.Time, len(segs))
	for i, seg := range segs {
		fi, err := os.Stat(seg.path)
		if err != nil {
			return err
		}
		sizes[i], mtimes[i] = fi.Size(), fi.ModTime()
	}
	var after int64 // bytes in the segments following segs[i]
	for _, n := range sizes[1:] {
		after += n
	}
	cut := 0
	for i := 0; i < len(segs)-1; i++ {
		if segs[i+1].first-1 > covered {
			break
		}
		overBytes := retainBytes > 0 && after >= retainBytes
		overAge := retainAge > 0 && now.Sub(mtimes[i]) > retainAge
		if !overBytes && !overAge {
			break
		}
		cut = i + 1
		after -= sizes[i+1]
	}
	if cut == 0 {
		return nil
	}
	keep := segs[cut].first
	s.tailMu.Lock()
	err = s.w.TruncateFront(keep)
	s.tailMoved = s.tailMoved || cut == len(segs)-1 // tidwall rewrote the tail
	s.tailMu.Unlock()
	if err != nil {
		return fmt.Errorf("truncate front to %d: %w", keep, err)
	}
	s.first.Store(keep)
	if err := syncDir(s.walDir); err != nil {
		return err
	}
	s.logger.Info("log: removed old segments", "segments", cut, "first_index", keep)
	return nil
}
