package log

import (
	"bytes"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"reflect"
	"strings"
	"testing"

	"github.com/oklog/ulid/v2"
	"github.com/vmihailenco/msgpack/v5"
)

func TestRecordRoundTrip(t *testing.T) {
	tests := []struct {
		name string
		rec  Record
	}{
		{"minimal", Record{V: RecordVersion, Kind: KindEngineStarted}},
		{"every field", Record{
			V: RecordVersion, ID: ulid.Make(), Time: 1_700_000_000_123_456_789, Kind: KindTriggerRegistered,
			Stream: "s", Group: "g", Item: "i", Scope: "sc", Key: "k",
			Worker: "w", Function: "f", Trigger: "tr", TriggerType: "tt",
			Value: []byte(`{"a":1}`), Meta: []byte(`{"m":true}`),
		}},
		{"binary value", Record{V: RecordVersion, Kind: KindStreamSet, Value: []byte{0, 0xff, '"'}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := tt.rec
			in.Index = 42 // not encoded
			frame, err := EncodeRecord([]byte("prefix"), &in)
			if err != nil {
				t.Fatal(err)
			}
			if string(frame[:6]) != "prefix" {
				t.Fatal("EncodeRecord did not append to dst")
			}
			// Decode into a record holding stale fields: they must not survive.
			out := Record{Index: 7, Stream: "stale", Value: []byte("stale")}
			if err := DecodeRecord(frame[6:], &out); err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(out, tt.rec) {
				t.Fatalf("round trip:\n got %+v\nwant %+v", out, tt.rec)
			}
		})
	}
}

func TestDecodeRecordRejects(t *testing.T) {
	good, _ := EncodeRecord(nil, &Record{V: RecordVersion, Kind: KindStateSet, Key: "k", Value: []byte(`1`)})
	newer, _ := EncodeRecord(nil, &Record{V: RecordVersion + 1, Kind: KindStateSet})
	flipped := append([]byte(nil), good...)
	flipped[len(flipped)-1] ^= 1
	stray, _ := EncodeRecord(nil, &Record{V: RecordVersion})
	stray = append(stray, 0xc0) // a msgpack nil after the record, under a valid checksum
	binary.LittleEndian.PutUint32(stray, crc32.Checksum(stray[frameHeaderSize:], castagnoli))

	tests := []struct {
		name  string
		frame []byte
		want  error
	}{
		{"flipped bit", flipped, ErrChecksum},
		{"too short", good[:3], ErrChecksum},
		{"truncated", good[:len(good)-1], ErrChecksum},
		{"newer version", newer, ErrVersion},
		{"stray bytes", stray, nil},
	}
	for _, tt := range tests {
		var r Record
		err := DecodeRecord(tt.frame, &r)
		if err == nil || (tt.want != nil && !errors.Is(err, tt.want)) {
			t.Errorf("%s: DecodeRecord = %v, want %v", tt.name, err, tt.want)
		}
	}
}

func TestRecordCodecMatchesReflection(t *testing.T) {
	long := strings.Repeat("x", 70000) // str32 / bin32 lengths
	recs := []Record{
		{},
		{V: RecordVersion, ID: ulid.Make(), Time: -5, Kind: KindWorkerConnected, Worker: "w1", Value: []byte(`{}`)},
		{V: 255, Time: 1 << 62, Kind: Kind(200), Stream: strings.Repeat("s", 31), Group: strings.Repeat("g", 32),
			Item: strings.Repeat("i", 300), Scope: long, Key: "k", Function: "f", Trigger: "t", TriggerType: "tt",
			Value: []byte(long), Meta: bytes.Repeat([]byte{1}, 255)},
		{V: RecordVersion, Kind: KindStreamSet, Stream: "s", Value: []byte(`1`), Cause: 1<<64 - 1, Depth: 8},
		{V: RecordVersion, Kind: KindStateSet, Key: "k", Cause: 7},
		{V: RecordVersion, Kind: KindJobFailed, Queue: "q", Job: "j1", Function: "f", Group: "g", Attempt: 70000, Value: []byte(`{}`)},
	}
	var key [8]byte
	for i, rec := range recs {
		want, err := msgpack.Marshal(&rec)
		if err != nil {
			t.Fatal(err)
		}
		frame, err := EncodeRecord(nil, &rec)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(frame[frameHeaderSize:], want) {
			t.Fatalf("record %d: hand-written encoding differs from msgpack's reflection encoding", i)
		}
		var got, viaReflection Record
		if err := decodeRecord(msgpack.NewDecoder(bytes.NewReader(want)), &got, key[:]); err != nil {
			t.Fatalf("record %d: %v", i, err)
		}
		if err := msgpack.Unmarshal(want, &viaReflection); err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, viaReflection) {
			t.Fatalf("record %d: decoded\n%+v\nreflection decodes\n%+v", i, got, viaReflection)
		}
	}
}

func TestDecodeSkipsUnknownFields(t *testing.T) {
	payload, _ := msgpack.Marshal(map[string]any{
		"v": 1, "k": 11, "id": make([]byte, 16), "t": 3, "s": "stream",
		"future": map[string]any{"nested": []int{1, 2}}, "a-rather-long-future-key": "x",
	})
	var r Record
	if err := newRecordDecoder().decodePayload(payload, &r); err != nil {
		t.Fatal(err)
	}
	if r.V != 1 || r.Kind != KindStreamSet || r.Time != 3 || r.Stream != "stream" {
		t.Fatalf("decoded %+v", r)
	}
}
