package log

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"sync"

	"github.com/vmihailenco/msgpack/v5"
)

// A frame is one record as stored in a segment entry (behind the entry's
// length prefix):
//
//	crc32c(payload) uint32 little-endian | payload = msgpack(Record)
//
// The checksum is what tells a torn or bit-flipped tail apart from a
// record.
const frameHeaderSize = 4

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

var (
	// ErrChecksum reports a frame whose CRC-32C does not match its payload
	// (a torn write or flipped bits). Such a frame is never read as data.
	ErrChecksum = errors.New("frame checksum mismatch")
	// ErrVersion reports a record written by a newer build (V > RecordVersion).
	ErrVersion = errors.New("record version is newer than this build understands")
)

// EncodeRecord appends r's frame (checksum + msgpack) to dst and returns the
// extended slice. r.Index is not encoded. On error dst is returned unchanged.
func EncodeRecord(dst []byte, r *Record) ([]byte, error) {
	e := encoderPool.Get().(*recordEncoder)
	out, err := e.encode(dst, r)
	encoderPool.Put(e)
	if err != nil {
		return dst, fmt.Errorf("log: encode record: %w", err)
	}
	return out, nil
}

// DecodeRecord verifies frame's checksum and decodes it into r, which is
// reset first (r.Index becomes 0; the caller knows the index). The decoded
// strings and byte slices are fresh allocations, never aliases of frame. It
// fails with ErrChecksum for a damaged frame and ErrVersion for a record
// newer than RecordVersion.
func DecodeRecord(frame []byte, r *Record) error {
	d := decoderPool.Get().(*recordDecoder)
	err := d.decode(frame, r)
	decoderPool.Put(d)
	if err != nil {
		return fmt.Errorf("log: decode record: %w", err)
	}
	return nil
}

// appendWriter lets a msgpack.Encoder append straight into a caller's slice.
type appendWriter struct{ b []byte }

func (w *appendWriter) Write(p []byte) (int, error) {
	w.b = append(w.b, p...)
	return len(p), nil
}

func (w *appendWriter) WriteByte(c byte) error {
	w.b = append(w.b, c)
	return nil
}

// recordEncoder is a reusable msgpack encoder bound to an appendWriter. The
// sequencer owns one; EncodeRecord borrows one from encoderPool.
type recordEncoder struct {
	w   appendWriter
	enc *msgpack.Encoder
}

func newRecordEncoder() *recordEncoder {
	e := &recordEncoder{}
	e.enc = msgpack.NewEncoder(&e.w)
	return e
}

var encoderPool = sync.Pool{New: func() any { return newRecordEncoder() }}

func (e *recordEncoder) encode(dst []byte, r *Record) ([]byte, error) {
	start := len(dst)
	e.w.b = append(dst, 0, 0, 0, 0)
	err := encodeRecord(e.enc, r)
	out := e.w.b
	e.w.b = nil
	if err != nil {
		return dst, err
	}
	binary.LittleEndian.PutUint32(out[start:], crc32.Checksum(out[start+frameHeaderSize:], castagnoli))
	return out, nil
}

// recordDecoder is a reusable msgpack decoder reading from a bytes.Reader.
type recordDecoder struct {
	rd  bytes.Reader
	dec *msgpack.Decoder
	key [8]byte // scratch for map keys
}

func newRecordDecoder() *recordDecoder {
	d := &recordDecoder{}
	d.dec = msgpack.NewDecoder(&d.rd)
	return d
}

var decoderPool = sync.Pool{New: func() any { return newRecordDecoder() }}

func (d *recordDecoder) decode(frame []byte, r *Record) error {
	if err := checkFrame(frame); err != nil {
		return err
	}
	return d.decodePayload(frame[frameHeaderSize:], r)
}

// decodePayload decodes a frame's payload whose checksum the caller has
// already verified (or that never left memory).
func (d *recordDecoder) decodePayload(payload []byte, r *Record) error {
	// Reset so fields absent from this record do not keep a previous
	// record's values.
	*r = Record{}
	d.rd.Reset(payload)
	if err := decodeRecord(d.dec, r, d.key[:]); err != nil {
		return fmt.Errorf("msgpack: %w", err)
	}
	if n := d.rd.Len(); n != 0 {
		return fmt.Errorf("%d stray bytes after the record", n)
	}
	if r.V > RecordVersion {
		return fmt.Errorf("%w: record v%d, this build reads up to v%d", ErrVersion, r.V, RecordVersion)
	}
	return nil
}

// checkFrame verifies a frame's checksum without decoding it.
func checkFrame(frame []byte) error {
	if len(frame) < frameHeaderSize {
		return fmt.Errorf("%w: %d-byte frame is shorter than its checksum", ErrChecksum, len(frame))
	}
	want := binary.LittleEndian.Uint32(frame)
	if got := crc32.Checksum(frame[frameHeaderSize:], castagnoli); got != want {
		return fmt.Errorf("%w: stored %08x, computed %08x", ErrChecksum, want, got)
	}
	return nil
}
