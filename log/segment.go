package log

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
)

// On-disk layout under a log directory.
const (
	walDirName      = "wal"
	snapshotDirName = "snapshots"
)

// segmentFile is one segment: a file named by the 20-digit decimal index of
// its first frame, holding frames back to back as uvarint(length) + frame,
// then possibly zeros (the unused rest of a prepared segment).
type segmentFile struct {
	first uint64
	path  string
}

// AppendEntry appends frame (an EncodeRecord output) to dst as a segment
// entry, behind its uvarint length.
func AppendEntry(dst, frame []byte) []byte {
	return append(binary.AppendUvarint(dst, uint64(len(frame))), frame...)
}

// startSuffix marks the complete copy tidwall/wal, the segment store of
// logs written before this package kept its own, wrote while truncating the
// front of the log; it is renamed over the plain name afterwards, and Open
// finishes the rename if a crash interrupted it.
const startSuffix = ".START"

// segmentFiles lists walDir's segments in index order. Where a ".START" copy
// exists it stands in for the plain file of the same index. Other files (the
// spare, ".TEMP" and ".END" files of tidwall/wal) are ignored.
func segmentFiles(walDir string) ([]segmentFile, error) {
	ents, err := os.ReadDir(walDir)
	if err != nil {
		return nil, err
	}
	var segs []segmentFile
	for _, e := range ents {
		name := e.Name()
		if e.IsDir() || len(name) < 20 || (len(name) != 20 && name[20:] != startSuffix) {
			continue
		}
		first, err := strconv.ParseUint(name[:20], 10, 64)
		if err != nil || first == 0 {
			continue
		}
		seg := segmentFile{first: first, path: filepath.Join(walDir, name)}
		// ReadDir sorts by name, so "X.START" directly follows "X".
		if n := len(segs); n > 0 && segs[n-1].first == first {
			segs[n-1] = seg
			continue
		}
		segs = append(segs, seg)
	}
	return segs, nil
}

// errTorn reports a frame cut short by the end of the file (or a length
// prefix that is garbage): the signature of a write interrupted by a crash,
// or of a write still in progress when a reader looks.
var errTorn = errors.New("torn frame")

// segmentReader walks the frames of one segment file. It never reads past the
// size the file had when it was opened, so a concurrent append is either
// wholly invisible or seen as a torn tail.
type segmentReader struct {
	br     *bufio.Reader
	remain int64 // unread bytes of the file, as sized at open
	off    int64 // file offset of the next frame
	last   int64 // file offset of the frame last returned or found torn
	buf    []byte
}

func newSegmentReader() *segmentReader {
	return &segmentReader{br: bufio.NewReaderSize(nil, 64<<10)}
}

func (s *segmentReader) reset(r io.Reader, size int64) {
	s.br.Reset(r)
	s.remain = size
	s.off, s.last = 0, 0
}

// next returns the next frame, valid until the following call. It returns
// io.EOF at a clean end (the end of the file, or a zero where a length
// belongs: no frame is empty) and errTorn for a truncated frame; it does not
// check the frame's checksum.
func (s *segmentReader) next() ([]byte, error) {
	s.last = s.off
	if s.remain == 0 {
		return nil, io.EOF
	}
	var size uint64
	var n int64
	for shift := uint(0); ; shift += 7 {
		if n == s.remain || shift > 63 {
			return nil, errTorn
		}
		c, err := s.br.ReadByte()
		if err != nil {
			return nil, fmt.Errorf("%w: %w", errTorn, err)
		}
		if c == 0 && shift == 0 {
			return nil, io.EOF
		}
		n++
		size |= uint64(c&0x7f) << shift
		if c < 0x80 {
			break
		}
	}
	if size > uint64(s.remain-n) {
		return nil, errTorn
	}
	if uint64(cap(s.buf)) < size {
		s.buf = make([]byte, size)
	}
	frame := s.buf[:size]
	if _, err := io.ReadFull(s.br, frame); err != nil {
		return nil, fmt.Errorf("%w: %w", errTorn, err)
	}
	s.remain -= n + int64(size)
	s.off += n + int64(size)
	return frame, nil
}

// syncDir fsyncs a directory so that entries created, renamed or removed in
// it survive a crash.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}
