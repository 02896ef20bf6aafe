package log

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io/fs"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// A snapshot file, <dir>/snapshots/<index, 20 digits>.snap, holds the
// Projection's Snapshot output after applying every record up to index:
//
//	magic "iiisnap\x00" | version u32 | index u64 | length u64 | crc32c(data) u32 | data
//
// (integers little-endian). It is written to a temp file, fsynced, renamed
// into place and the directory fsynced, so a crash leaves either the whole
// file or none; the checksum catches later damage.
const (
	snapMagic      = "iiisnap\x00"
	snapVersion    = 1
	snapHeaderSize = 32
	snapSuffix     = ".snap"
	snapTempSuffix = ".tmp"
	// snapKeep snapshots are kept, and retention only removes records
	// behind the oldest of them, so a damaged newest one still leaves a
	// complete way to rebuild state.
	snapKeep = 2
)

func snapshotPath(snapDir string, index uint64) string {
	return filepath.Join(snapDir, fmt.Sprintf("%020d%s", index, snapSuffix))
}

// snapshotIndexes lists the indexes of snapDir's snapshot files, ascending.
func snapshotIndexes(snapDir string) ([]uint64, error) {
	ents, err := os.ReadDir(snapDir)
	if err != nil {
		return nil, err
	}
	var idxs []uint64
	for _, e := range ents {
		name, ok := strings.CutSuffix(e.Name(), snapSuffix)
		if !ok || len(name) != 20 || e.IsDir() {
			continue
		}
		if idx, err := strconv.ParseUint(name, 10, 64); err == nil {
			idxs = append(idxs, idx) // ReadDir sorts by name: ascending
		}
	}
	return idxs, nil
}

func writeSnapshot(snapDir string, index uint64, data []byte) error {
	var h [snapHeaderSize]byte
	copy(h[:], snapMagic)
	binary.LittleEndian.PutUint32(h[8:], snapVersion)
	binary.LittleEndian.PutUint64(h[12:], index)
	binary.LittleEndian.PutUint64(h[20:], uint64(len(data)))
	binary.LittleEndian.PutUint32(h[28:], crc32.Checksum(data, castagnoli))

	final := snapshotPath(snapDir, index)
	tmp := final + snapTempSuffix
	if err := os.Remove(tmp); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	if err := writeFileSync(tmp, h[:], data); err != nil {
		os.Remove(tmp)
		return err
	}
	if err := os.Rename(tmp, final); err != nil {
		os.Remove(tmp)
		return err
	}
	return syncDir(snapDir)
}

// readSnapshot returns the data of the snapshot file for index after
// checking its header and checksum.
func readSnapshot(snapDir string, index uint64) ([]byte, error) {
	b, err := os.ReadFile(snapshotPath(snapDir, index))
	if err != nil {
		return nil, err
	}
	if len(b) < snapHeaderSize || string(b[:8]) != snapMagic {
		return nil, errors.New("not a snapshot file (bad magic)")
	}
	if v := binary.LittleEndian.Uint32(b[8:]); v != snapVersion {
		return nil, fmt.Errorf("snapshot format version %d, this build reads %d", v, snapVersion)
	}
	if got := binary.LittleEndian.Uint64(b[12:]); got != index {
		return nil, fmt.Errorf("header says index %d, file name says %d", got, index)
	}
	data := b[snapHeaderSize:]
	if n := binary.LittleEndian.Uint64(b[20:]); n != uint64(len(data)) {
		return nil, fmt.Errorf("header says %d bytes of data, file holds %d", n, len(data))
	}
	if want, got := binary.LittleEndian.Uint32(b[28:]), crc32.Checksum(data, castagnoli); want != got {
		return nil, fmt.Errorf("%w: stored %08x, computed %08x", ErrChecksum, want, got)
	}
	return data, nil
}

// pruneSnapshots removes all but the newest snapKeep snapshots and returns
// the index of the oldest one kept.
func pruneSnapshots(snapDir string) (uint64, error) {
	idxs, err := snapshotIndexes(snapDir)
	if err != nil || len(idxs) == 0 {
		return 0, err
	}
	for len(idxs) > snapKeep {
		if err := os.Remove(snapshotPath(snapDir, idxs[0])); err != nil {
			return 0, err
		}
		idxs = idxs[1:]
	}
	return idxs[0], syncDir(snapDir)
}

// loadSnapshot returns the newest intact snapshot the log can continue
// from: one whose index lies in [first-1, last]. Damaged ones are skipped
// with a warning; (0, nil) means start from an empty Projection. Leftover temp
// files from an interrupted write are removed.
func loadSnapshot(snapDir string, first, last uint64, logger *slog.Logger) (uint64, []byte, error) {
	ents, err := os.ReadDir(snapDir)
	if err != nil {
		return 0, nil, err
	}
	for _, e := range ents {
		if strings.HasSuffix(e.Name(), snapSuffix+snapTempSuffix) {
			if err := os.Remove(filepath.Join(snapDir, e.Name())); err != nil {
				return 0, nil, err
			}
		}
	}
	idxs, err := snapshotIndexes(snapDir)
	if err != nil {
		return 0, nil, err
	}
	for i := len(idxs) - 1; i >= 0; i-- {
		idx := idxs[i]
		if idx > last {
			logger.Warn("log: skipping a snapshot ahead of the log's last record", "snapshot", idx, "last_index", last)
			continue
		}
		if idx+1 < first {
			break // the records right after it were removed; older ones are further behind
		}
		data, err := readSnapshot(snapDir, idx)
		if err != nil {
			logger.Warn("log: skipping a damaged snapshot", "snapshot", idx, "err", err)
			continue
		}
		return idx, data, nil
	}
	return 0, nil, nil
}

// LatestSnapshotBefore returns the newest intact snapshot in the log
// directory dir taken at or before index, so a reader can rebuild Projection at
// index by restoring data and applying the records from snapIndex+1 on (see
// Scan). With no such snapshot it returns (0, nil, nil): start from an empty
// Projection and replay from the first record. Damaged snapshots are skipped.
func LatestSnapshotBefore(dir string, index uint64) (snapIndex uint64, data []byte, err error) {
	if _, err := logWALDir(dir); err != nil {
		return 0, nil, fmt.Errorf("log: snapshot: %w", err)
	}
	return newestSnapshot(filepath.Join(dir, snapshotDirName), index)
}

// newestSnapshot returns the newest intact snapshot in snapDir at or
// before index, skipping damaged ones; (0, nil, nil) when there is none.
func newestSnapshot(snapDir string, index uint64) (uint64, []byte, error) {
	idxs, err := snapshotIndexes(snapDir)
	if errors.Is(err, fs.ErrNotExist) {
		return 0, nil, nil
	}
	if err != nil {
		return 0, nil, fmt.Errorf("log: snapshot: %w", err)
	}
	for i := len(idxs) - 1; i >= 0; i-- {
		if idxs[i] > index {
			continue
		}
		if data, err := readSnapshot(snapDir, idxs[i]); err == nil {
			return idxs[i], data, nil
		}
	}
	return 0, nil, nil
}

// SaveSnapshot writes data as the snapshot at index into dir's snapshots
// folder (created owner-only if needed), in the format and with the
// durability of the log's own, and keeps the newest two. It is for a
// directory that holds snapshots of a log kept elsewhere (a cluster's).
func SaveSnapshot(dir string, index uint64, data []byte) error {
	snapDir := filepath.Join(dir, snapshotDirName)
	if err := os.MkdirAll(snapDir, 0o700); err != nil {
		return fmt.Errorf("log: save snapshot: %w", err)
	}
	if err := writeSnapshot(snapDir, index, data); err != nil {
		return fmt.Errorf("log: save snapshot %d: %w", index, err)
	}
	if _, err := pruneSnapshots(snapDir); err != nil {
		return fmt.Errorf("log: save snapshot %d: %w", index, err)
	}
	return nil
}

// NewestSnapshot returns the newest intact snapshot SaveSnapshot left in
// dir, or (0, nil, nil) when there is none. Damaged ones are skipped.
func NewestSnapshot(dir string) (index uint64, data []byte, err error) {
	return newestSnapshot(filepath.Join(dir, snapshotDirName), math.MaxUint64)
}

// Snapshot takes a snapshot of the Projection now and waits until its file is
// durable (retention may then remove segments behind it). It is a no-op
// when nothing was appended since the last snapshot, and in InMemory mode.
func (l *Log) Snapshot() error {
	if l.wal == nil {
		return nil
	}
	r := getRequest()
	r.snap = true
	defer putRequest(r)
	if err := l.submit(r); err != nil {
		return fmt.Errorf("log: snapshot: %w", err)
	}
	<-r.done
	return r.err
}

// snapJob hands a snapshot from the sequencer to the snapshot writer.
type snapJob struct {
	index uint64
	data  []byte
	req   *request // set for Snapshot calls, which wait for the file
}

// takeSnapshot runs on the sequencer goroutine between batches. It captures
// the Projection in memory and queues it for the writer; req, if not nil, is
// answered when the file is durable.
func (l *Log) takeSnapshot(req *request) {
	answer := func(err error) {
		if req != nil {
			req.answer(err)
		} else if err != nil {
			l.logger.Warn("log: snapshot failed", "err", err)
		}
	}
	l.settle()
	index := l.lastIndex.Load()
	if err := l.failed(); err != nil {
		answer(err)
		return
	}
	if index == l.snapWritten.Load() {
		answer(nil) // nothing new since the last snapshot on disk
		return
	}
	// A snapshot must never be ahead of the durable log: under SyncInterval
	// and SyncNever the records it covers are fsynced first.
	if l.dirty {
		if err := l.syncStore(); err != nil {
			answer(err)
			return
		}
		l.dirty = false
	}
	// Count from now even if Projection.Snapshot fails, so that a failing
	// Snapshot is retried after the next SnapshotEvery records rather than
	// after every batch.
	l.sinceRecords, l.sinceBytes = 0, 0
	var buf bytes.Buffer
	buf.Grow(l.lastSnapSize)
	if err := l.st.Snapshot(&buf); err != nil {
		answer(fmt.Errorf("log: snapshot at index %d: %w", index, err))
		return
	}
	l.lastSnapSize = buf.Len()
	l.snapPending.Add(1)
	l.snapJobs <- snapJob{index: index, data: buf.Bytes(), req: req}
}

// snapshotWriter writes queued snapshots, prunes old ones and applies
// retention, off the sequencer goroutine.
func (l *Log) snapshotWriter() {
	defer close(l.snapDone)
	for job := range l.snapJobs {
		err := l.persistSnapshot(job)
		l.snapPending.Add(-1)
		if job.req != nil {
			job.req.answer(err)
		} else if err != nil {
			l.logger.Warn("log: snapshot failed", "index", job.index, "err", err)
		}
	}
}

func (l *Log) persistSnapshot(job snapJob) error {
	snapDir := filepath.Join(l.dir, snapshotDirName)
	if err := writeSnapshot(snapDir, job.index, job.data); err != nil {
		return fmt.Errorf("log: write snapshot %d: %w", job.index, err)
	}
	l.snapWritten.Store(job.index)
	oldest, err := pruneSnapshots(snapDir)
	if err != nil {
		return fmt.Errorf("log: prune snapshots: %w", err)
	}
	if err := l.wal.compact(oldest, l.opts.RetainBytes, l.opts.RetainAge, time.Now()); err != nil {
		return fmt.Errorf("log: retention: %w", err)
	}
	return nil
}
