package log

import (
	"fmt"

	"github.com/vmihailenco/msgpack/v5"
)

// The msgpack form of a Record is a map keyed by the msgpack tags in
// record.go, in field order, with empty omitempty fields left out: exactly
// what msgpack's reflection encoder produces for the struct
// (TestRecordCodecMatchesReflection holds the two together). It is written
// with the encoder's primitives because the reflection path allocates for
// every omitempty check (14 allocations per record); this one allocates
// nothing to encode and only the decoded strings and byte slices to decode.

// stringField pairs a string field of a Record with its msgpack key.
type stringField struct {
	key string
	val *string
}

func recordStrings(r *Record) [12]stringField {
	return [12]stringField{
		{"s", &r.Stream}, {"g", &r.Group}, {"i", &r.Item}, {"sc", &r.Scope}, {"ky", &r.Key},
		{"w", &r.Worker}, {"f", &r.Function}, {"tr", &r.Trigger}, {"tt", &r.TriggerType},
		{"q", &r.Queue}, {"j", &r.Job}, {"nd", &r.Node},
	}
}

// fieldEncoder keeps the first error of a run of encoder calls.
type fieldEncoder struct {
	e   *msgpack.Encoder
	err error
}

func (f *fieldEncoder) str(s string) {
	if f.err == nil {
		f.err = f.e.EncodeString(s)
	}
}

func (f *fieldEncoder) bytes(b []byte) {
	if f.err == nil {
		f.err = f.e.EncodeBytes(b)
	}
}

func (f *fieldEncoder) uint8(n uint8) {
	if f.err == nil {
		f.err = f.e.EncodeUint8(n)
	}
}

func encodeRecord(e *msgpack.Encoder, r *Record) error {
	strs := recordStrings(r)
	n := 4 // v, id, t, k are always present
	for _, s := range strs {
		if *s.val != "" {
			n++
		}
	}
	if len(r.Value) > 0 {
		n++
	}
	if len(r.Meta) > 0 {
		n++
	}
	if r.Cause != 0 {
		n++
	}
	if r.Depth != 0 {
		n++
	}
	if r.Attempt != 0 {
		n++
	}
	f := fieldEncoder{e: e}
	f.err = e.EncodeMapLen(n)
	f.str("v")
	f.uint8(r.V)
	f.str("id")
	f.bytes(r.ID[:])
	f.str("t")
	if f.err == nil {
		f.err = e.EncodeInt64(r.Time)
	}
	f.str("k")
	f.uint8(uint8(r.Kind))
	for _, s := range strs {
		if *s.val != "" {
			f.str(s.key)
			f.str(*s.val)
		}
	}
	if len(r.Value) > 0 {
		f.str("val")
		f.bytes(r.Value)
	}
	if len(r.Meta) > 0 {
		f.str("m")
		f.bytes(r.Meta)
	}
	if r.Cause != 0 {
		f.str("cz")
		if f.err == nil {
			f.err = e.EncodeUint64(r.Cause)
		}
	}
	if r.Depth != 0 {
		f.str("dp")
		f.uint8(r.Depth)
	}
	if r.Attempt != 0 {
		f.str("n")
		if f.err == nil {
			f.err = e.EncodeUint32(r.Attempt)
		}
	}
	return f.err
}

// decodeRecord decodes one record map into r (which must be zero). key is
// scratch space for map keys; keys longer than it are not Record fields and
// are skipped along with their values, as are unknown short keys.
func decodeRecord(d *msgpack.Decoder, r *Record, key []byte) error {
	n, err := d.DecodeMapLen()
	if err != nil {
		return err
	}
	if n < 0 {
		return fmt.Errorf("record is nil, not a map")
	}
	strs := recordStrings(r)
	for i := 0; i < n; i++ {
		kl, err := d.DecodeBytesLen()
		if err != nil {
			return fmt.Errorf("field %d key: %w", i, err)
		}
		if kl > len(key) || kl < 0 {
			for left := kl; left > 0; left -= len(key) {
				if err := d.ReadFull(key[:min(left, len(key))]); err != nil {
					return fmt.Errorf("field %d key: %w", i, err)
				}
			}
			if err := d.Skip(); err != nil {
				return fmt.Errorf("field %d: %w", i, err)
			}
			continue
		}
		if err := d.ReadFull(key[:kl]); err != nil {
			return fmt.Errorf("field %d key: %w", i, err)
		}
		if err := decodeField(d, r, string(key[:kl]), &strs); err != nil {
			return fmt.Errorf("field %q: %w", key[:kl], err)
		}
	}
	return nil
}

func decodeField(d *msgpack.Decoder, r *Record, key string, strs *[12]stringField) error {
	var err error
	switch key {
	case "v":
		r.V, err = d.DecodeUint8()
	case "id":
		var n int
		if n, err = d.DecodeBytesLen(); err == nil {
			if n != len(r.ID) {
				return fmt.Errorf("ULID is %d bytes, want %d", n, len(r.ID))
			}
			err = d.ReadFull(r.ID[:])
		}
	case "t":
		r.Time, err = d.DecodeInt64()
	case "k":
		var k uint8
		k, err = d.DecodeUint8()
		r.Kind = Kind(k)
	case "val":
		r.Value, err = d.DecodeBytes()
	case "m":
		r.Meta, err = d.DecodeBytes()
	case "cz":
		r.Cause, err = d.DecodeUint64()
	case "dp":
		r.Depth, err = d.DecodeUint8()
	case "n":
		r.Attempt, err = d.DecodeUint32()
	default:
		for _, s := range strs {
			if s.key == key {
				*s.val, err = d.DecodeString()
				return err
			}
		}
		err = d.Skip() // a field from a newer build of the same version
	}
	return err
}
