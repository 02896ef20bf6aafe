package projections

import (
	"bufio"
	"fmt"
	"io"

	"github.com/vmihailenco/msgpack/v5"
)

// bucket is one stream group or one state scope: item id -> raw JSON value,
// in insertion order. Streams and States share it and the write rules below.
type bucket = omap[[]byte]

// cloneBytes copies b, so projections never alias a record's buffers (a log
// reader may decode the next record into the same memory). Empty is nil.
func cloneBytes(b []byte) []byte {
	if len(b) == 0 {
		return nil
	}
	return append(make([]byte, 0, len(b)), b...)
}

// itemWrite is the outcome of one write to a bucket.
type itemWrite struct {
	existed  bool
	old, new []byte
	errs     []OpError
}

func setItem(b *bucket, id string, v []byte) itemWrite {
	v = cloneBytes(v)
	if v == nil {
		v = nullLit // a set always stores a value; absent reads as null
	}
	old, existed := b.set(id, v)
	return itemWrite{existed: existed, old: old, new: v}
}

// updateItem re-parses the logged ops (validated before logging; if they
// somehow fail to parse they count as no ops) and applies them.
func updateItem(b *bucket, id string, rawOps []byte) itemWrite {
	old, existed := b.get(id)
	ops, err := ParseOps(rawOps)
	if err != nil {
		ops = nil
	}
	nv, errs := ApplyOps(old, existed, ops)
	b.set(id, nv)
	return itemWrite{existed: existed, old: old, new: nv, errs: errs}
}

// Snapshot framing: every projection writes its name and a format version
// first, so restoring the wrong stream or an unknown version fails loudly.
const snapshotVersion = 1

func writeSnapshot(w io.Writer, name string, body func(*msgpack.Encoder) error) error {
	bw := bufio.NewWriter(w)
	enc := msgpack.NewEncoder(bw)
	enc.SetSortMapKeys(true) // equal projections give equal bytes, maps included
	if err := enc.EncodeString(name); err != nil {
		return err
	}
	if err := enc.EncodeUint(snapshotVersion); err != nil {
		return err
	}
	if err := body(enc); err != nil {
		return err
	}
	return bw.Flush()
}

func readSnapshot(r io.Reader, name string, body func(*msgpack.Decoder) error) error {
	dec := msgpack.NewDecoder(r)
	got, err := dec.DecodeString()
	if err != nil {
		return fmt.Errorf("projections: restore %s: %w", name, err)
	}
	if got != name {
		return fmt.Errorf("projections: restore %s: snapshot holds %q", name, got)
	}
	v, err := dec.DecodeUint64()
	if err != nil {
		return fmt.Errorf("projections: restore %s: %w", name, err)
	}
	if v != snapshotVersion {
		return fmt.Errorf("projections: restore %s: unsupported snapshot version %d", name, v)
	}
	if err := body(dec); err != nil {
		return fmt.Errorf("projections: restore %s: %w", name, err)
	}
	return nil
}

// encodeBucket writes name, then the bucket's items in order.
func encodeBucket(enc *msgpack.Encoder, name string, b *bucket) error {
	if err := enc.EncodeString(name); err != nil {
		return err
	}
	if err := enc.EncodeArrayLen(b.len()); err != nil {
		return err
	}
	for id, v := range b.all() {
		if err := enc.EncodeString(id); err != nil {
			return err
		}
		if err := enc.EncodeBytes(v); err != nil {
			return err
		}
	}
	return nil
}

func decodeBucket(dec *msgpack.Decoder) (string, *bucket, error) {
	name, err := dec.DecodeString()
	if err != nil {
		return "", nil, err
	}
	n, err := decodeLen(dec)
	if err != nil {
		return "", nil, err
	}
	b := &bucket{}
	for range n {
		id, err := dec.DecodeString()
		if err != nil {
			return "", nil, err
		}
		v, err := dec.DecodeBytes()
		if err != nil {
			return "", nil, err
		}
		if v == nil {
			v = nullLit
		}
		b.set(id, v)
	}
	return name, b, nil
}

// decodeLen reads an array length; a nil array counts as empty.
func decodeLen(dec *msgpack.Decoder) (int, error) {
	n, err := dec.DecodeArrayLen()
	if n < 0 {
		n = 0
	}
	return n, err
}
