package log

import (
	"bytes"
	"encoding/binary"
	"hash/crc32"
	"reflect"
	"testing"

	"github.com/oklog/ulid/v2"
)

// FuzzDecodeRecord: no frame, however damaged, makes the decoder panic or
// hand back a record that does not survive its own round trip.
func FuzzDecodeRecord(f *testing.F) {
	for _, rec := range []*Record{
		{V: RecordVersion, ID: ulid.Make(), Time: 1, Kind: KindStreamSet, Stream: "s", Group: "g", Item: "i", Value: []byte(`{"a":1}`)},
		{V: RecordVersion, Kind: KindTriggerRegistered, Worker: "w", Trigger: "t", TriggerType: "stream", Function: "f", Value: []byte(`{}`), Meta: []byte(`{"m":1}`)},
		{V: RecordVersion, Kind: KindStateUpdate, Scope: "sc", Key: "k", Value: []byte(`[]`), Cause: 42, Depth: 3},
	} {
		frame, err := EncodeRecord(nil, rec)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(frame, false)
		f.Add(frame[:len(frame)-1], true)                         // torn
		f.Add(append(bytes.Clone(frame[:8]), frame[9:]...), true) // a byte lost
		f.Add(append(bytes.Clone(frame), 0xc1), true)             // trailing garbage
	}
	f.Add([]byte{}, false)
	f.Fuzz(func(t *testing.T, frame []byte, fixChecksum bool) {
		// With a fixed checksum the fuzzer reaches the msgpack decoder
		// instead of stopping at ErrChecksum.
		if fixChecksum && len(frame) >= frameHeaderSize {
			frame = bytes.Clone(frame) // the fuzzer's input is not ours to change
			binary.LittleEndian.PutUint32(frame, crc32.Checksum(frame[frameHeaderSize:], castagnoli))
		}
		var rec Record
		if err := DecodeRecord(frame, &rec); err != nil {
			return
		}
		again, err := EncodeRecord(nil, &rec)
		if err != nil {
			t.Fatalf("decoded record does not encode: %v (%+v)", err, rec)
		}
		var back Record
		if err := DecodeRecord(again, &back); err != nil {
			t.Fatalf("re-encoded record does not decode: %v", err)
		}
		if !reflect.DeepEqual(normal(rec), normal(back)) {
			t.Fatalf("round trip changed the record:\n%+v\n%+v", rec, back)
		}
	})
}

// normal makes empty byte slices nil: encoding leaves empty fields out.
func normal(r Record) Record {
	if len(r.Value) == 0 {
		r.Value = nil
	}
	if len(r.Meta) == 0 {
		r.Meta = nil
	}
	return r
}
