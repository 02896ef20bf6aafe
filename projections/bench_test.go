package projections

import (
	"bytes"
	"encoding/json"
	"fmt"
	"testing"

	"github.com/iii-go/iii/log"
)

var todoItem = []byte(`{"id":"0e59e8a2-bc46-42f0-b09d-50aeeabd55ef","title":"buy milk","completed":false}`)

// BenchmarkApplyOpsSetKey measures the seed's toggle (a set of one key on a
// small object) against a naive encoding/json decode-modify-encode baseline
// run in the same process.
func BenchmarkApplyOpsSetKey(b *testing.B) {
	raw := []byte(`[{"type":"set","path":"completed","value":true}]`)
	ops, err := ParseOps(raw)
	if err != nil {
		b.Fatal(err)
	}
	b.Run("ApplyOps", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			ApplyOps(todoItem, true, ops)
		}
	})
	b.Run("ParseOps+ApplyOps", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			ops, _ := ParseOps(raw)
			ApplyOps(todoItem, true, ops)
		}
	})
	b.Run("baseline-encoding-json", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			var m map[string]any
			d := json.NewDecoder(bytes.NewReader(todoItem))
			d.UseNumber()
			if err := d.Decode(&m); err != nil {
				b.Fatal(err)
			}
			m["completed"] = true
			if _, err := json.Marshal(m); err != nil {
				b.Fatal(err)
			}
		}
	})
}

func BenchmarkStreamsApplySet(b *testing.B) {
	const n = 1000
	var s Streams
	recs := make([]*log.Record, n)
	for i := range recs {
		recs[i] = streamSet("todo", "todos", fmt.Sprintf("item-%d", i), string(todoItem))
		s.Apply(recs[i])
	}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		s.Apply(recs[i%n]) // overwrite: the steady state of a live stream
		i++
	}
}

func BenchmarkStreamsApplyUpdate(b *testing.B) {
	const n = 1000
	var s Streams
	recs := make([]*log.Record, n)
	for i := range recs {
		item := fmt.Sprintf("item-%d", i)
		s.Apply(streamSet("todo", "todos", item, string(todoItem)))
		recs[i] = streamUpdate("todo", "todos", item, `[{"type":"set","path":"completed","value":true}]`)
	}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		s.Apply(recs[i%n])
		i++
	}
}

// BenchmarkMatchStream: 1000 stream triggers over 100 streams; the event's
// stream has 10 triggers, 4 of which match.
func BenchmarkMatchStream(b *testing.B) {
	var s Subscriptions
	for i := range 1000 {
		stream := fmt.Sprintf("stream-%d", i%100)
		cfg := fmt.Sprintf(`{"stream_name":%q}`, stream)
		switch i / 100 % 3 {
		case 1:
			cfg = fmt.Sprintf(`{"stream_name":%q,"group_id":"g%d"}`, stream, i%2)
		case 2:
			cfg = fmt.Sprintf(`{"stream_name":%q,"group_id":"g0","item_id":"other"}`, stream)
		}
		s.Apply(trigRegistered("w", fmt.Sprintf("t%d", i), "stream", "f", cfg, ""))
	}
	if got := len(s.MatchStream("stream-7", "g0", "item", true)); got != 4 {
		b.Fatalf("fixture matches %d", got)
	}
	dst := make([]Sub, 0, 16)
	b.Run("match", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			dst = s.AppendMatchStream(dst[:0], "stream-7", "g0", "item", true)
		}
	})
	b.Run("no-subscribers", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			dst = s.AppendMatchStream(dst[:0], "unwatched", "g0", "item", true)
		}
	})
}
