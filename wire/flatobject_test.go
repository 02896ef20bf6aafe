package wire

import (
	"bytes"
	"encoding/json"
	"testing"
)

// streamWrite is the shape the engine reads with DecodeFlatObject: a
// stream::set payload.
type streamWrite struct {
	Stream, Group, Item string
	Data                []byte
}

var streamWriteKeys = []string{"stream_name", "group_id", "item_id"}

func decodeStreamWrite(b []byte, w *streamWrite) bool {
	var strs [3]string
	raw, ok := DecodeFlatObject(b, streamWriteKeys, strs[:], "data")
	if ok {
		*w = streamWrite{strs[0], strs[1], strs[2], raw}
	}
	return ok
}

// generalStreamWrite decodes b the way the engine's general path does.
func generalStreamWrite(b []byte) (w streamWrite, ok bool) {
	var in struct {
		StreamName *string         `json:"stream_name"`
		GroupID    *string         `json:"group_id"`
		ItemID     *string         `json:"item_id"`
		Data       json.RawMessage `json:"data"`
	}
	if json.Unmarshal(b, &in) != nil || in.StreamName == nil || in.GroupID == nil || in.ItemID == nil || in.Data == nil {
		return w, false
	}
	return streamWrite{*in.StreamName, *in.GroupID, *in.ItemID, in.Data}, true
}

func TestDecodeFlatObject(t *testing.T) {
	for _, tc := range []struct {
		in   string
		fast bool // taken by the fast path
	}{
		{`{"stream_name":"todo","group_id":"g","item_id":"1","data":{"title":"x","done":false}}`, true},
		{` { "data" : [1,2] , "item_id":"", "group_id":"g", "stream_name":"s" } `, true},
		{`{"stream_name":"s","group_id":"g","item_id":"i","data":"é"}`, true},
		{`{"stream_name":"s","group_id":"g","item_id":"i","data":null}`, false},
		{`{"stream_name":"s","group_id":"g","item_id":"i"}`, false},
		{`{"stream_name":"s","group_id":"g","data":1}`, false},
		{`{"stream_name":1,"group_id":"g","item_id":"i","data":1}`, false},
		{`{"stream_name":null,"group_id":"g","item_id":"i","data":1}`, false},
		{`{"stream_name":"s","group_id":"g","item_id":"i","data":1,"extra":true}`, false},
		{`{"Stream_Name":"s","group_id":"g","item_id":"i","data":1}`, false},
		{`{"stream_name":"s","stream_name":"t","group_id":"g","item_id":"i","data":1}`, false},
		{`{"stream_name":"a\"b","group_id":"g","item_id":"i","data":1}`, false},
		{`{"stream_name":"s","group_id":"g","item_id":"i","data":"\u00e9"}`, false},
		{"{\"stream_name\":\"\xff\",\"group_id\":\"g\",\"item_id\":\"i\",\"data\":1}", false},
		{`[1]`, false},
		{``, false},
	} {
		var w streamWrite
		got := decodeStreamWrite([]byte(tc.in), &w)
		if got != tc.fast {
			t.Errorf("%s: fast path %v, want %v", tc.in, got, tc.fast)
			continue
		}
		if want, ok := generalStreamWrite([]byte(tc.in)); got && (!ok || !sameWrite(w, want)) {
			t.Errorf("%s: fast path %+v, general decoder %+v (ok %v)", tc.in, w, want, ok)
		}
	}
}

func sameWrite(a, b streamWrite) bool {
	return a.Stream == b.Stream && a.Group == b.Group && a.Item == b.Item && bytes.Equal(a.Data, b.Data)
}

// FuzzDecodeFlatObject checks that whatever the fast path accepts, the
// general decoder reads the same way.
func FuzzDecodeFlatObject(f *testing.F) {
	f.Add([]byte(`{"stream_name":"todo","group_id":"g","item_id":"1","data":{"t":"x"}}`))
	f.Add([]byte(`{"data":[1,{"a":null}],"item_id":"","group_id":"g","stream_name":"s"}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		if !json.Valid(b) {
			return // the codec only hands over valid JSON
		}
		orig := bytes.Clone(b)
		var w streamWrite
		if !decodeStreamWrite(b, &w) {
			if !bytes.Equal(b, orig) {
				t.Fatalf("the payload was modified: %q -> %q", orig, b)
			}
			return
		}
		want, ok := generalStreamWrite(b)
		if !ok || !sameWrite(w, want) {
			t.Fatalf("%q: fast path %+v, general decoder %+v (ok %v)", b, w, want, ok)
		}
	})
}

func BenchmarkDecodeFlatObject(b *testing.B) {
	payload := []byte(`{"stream_name":"todo","group_id":"inbox","item_id":"01J9Z","data":{"id":"01J9Z","title":"buy milk","completed":false}}`)
	b.Run("fast", func(b *testing.B) {
		b.ReportAllocs()
		var w streamWrite
		for b.Loop() {
			if !decodeStreamWrite(payload, &w) {
				b.Fatal("not taken")
			}
		}
	})
	b.Run("encoding_json", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, ok := generalStreamWrite(payload); !ok {
				b.Fatal("not decoded")
			}
		}
	})
}
