package projections

import (
	"reflect"
	"strings"
	"testing"

	"github.com/iii-go/iii/log"
)

func streamSet(stream, group, item, value string) *log.Record {
	return &log.Record{Kind: log.KindStreamSet, Stream: stream, Group: group, Item: item, Value: []byte(value)}
}

func streamUpdate(stream, group, item, ops string) *log.Record {
	return &log.Record{Kind: log.KindStreamUpdate, Stream: stream, Group: group, Item: item, Value: []byte(ops)}
}

func streamDelete(stream, group, item string) *log.Record {
	return &log.Record{Kind: log.KindStreamDelete, Stream: stream, Group: group, Item: item}
}

func strs(vs [][]byte) string {
	parts := make([]string, len(vs))
	for i, v := range vs {
		parts[i] = string(v)
	}
	return strings.Join(parts, " ")
}

func TestStreamsOrder(t *testing.T) {
	tests := []struct {
		name string
		recs []*log.Record
		want string
	}{
		{"insertion order", []*log.Record{
			streamSet("s", "g", "a", "1"), streamSet("s", "g", "b", "2"), streamSet("s", "g", "c", "3"),
		}, "1 2 3"},
		{"overwrite keeps position", []*log.Record{
			streamSet("s", "g", "a", "1"), streamSet("s", "g", "b", "2"), streamSet("s", "g", "a", "9"),
		}, "9 2"},
		{"update keeps position", []*log.Record{
			streamSet("s", "g", "a", "1"), streamSet("s", "g", "b", "2"), streamUpdate("s", "g", "a", `[{"type":"increment","path":"","by":1}]`),
		}, "2 2"},
		{"delete then set moves to end", []*log.Record{
			streamSet("s", "g", "a", "1"), streamSet("s", "g", "b", "2"), streamDelete("s", "g", "a"), streamSet("s", "g", "a", "3"),
		}, "2 3"},
		{"update of missing item appends", []*log.Record{
			streamSet("s", "g", "a", "1"), streamUpdate("s", "g", "b", `[]`),
		}, "1 {}"},
		{"many deletes compact without reordering", func() []*log.Record {
			var recs []*log.Record
			for i := range 100 {
				recs = append(recs, streamSet("s", "g", string(rune('A'+i)), "0"))
			}
			for i := range 99 {
				recs = append(recs, streamDelete("s", "g", string(rune('A'+i))))
			}
			return append(recs, streamSet("s", "g", "z", "1"), streamSet("s", "g", "A", "2"))
		}(), "0 1 2"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var s Streams
			for _, r := range tt.recs {
				s.Apply(r)
			}
			if got := strs(s.List("s", "g")); got != tt.want {
				t.Errorf("List = %s, want %s", got, tt.want)
			}
		})
	}
}

func TestStreamsChanges(t *testing.T) {
	var s Streams
	steps := []struct {
		rec  *log.Record
		want StreamChange
	}{
		{streamSet("todo", "todos", "a1", `{"id":"a1","done":false}`), StreamChange{New: []byte(`{"id":"a1","done":false}`)}},
		{streamSet("todo", "todos", "a1", `{"id":"a1","done":true}`), StreamChange{Existed: true, Old: []byte(`{"id":"a1","done":false}`), New: []byte(`{"id":"a1","done":true}`)}},
		{streamSet("todo", "todos", "n", `null`), StreamChange{New: []byte(`null`)}},
		{streamSet("todo", "todos", "n", `1`), StreamChange{Existed: true, Old: []byte(`null`), New: []byte(`1`)}},
		{streamUpdate("todo", "todos", "c", `[{"type":"increment","path":"count","by":5},{"type":"append","path":"count","value":1}]`), StreamChange{
			New:    []byte(`{"count":5}`),
			Errors: []OpError{{OpIndex: 1, Code: "append.type_mismatch", Message: "append at count: target is number; append needs an array, a string or null", DocURL: DocURL}},
		}},
		{streamUpdate("todo", "todos", "c", `[{"type":"set","path":"x","value":1}]`), StreamChange{Existed: true, Old: []byte(`{"count":5}`), New: []byte(`{"count":5,"x":1}`)}},
		{streamUpdate("todo", "todos", "bad", `[{"type":"nope"}]`), StreamChange{New: []byte(`{}`)}},
		{streamDelete("todo", "todos", "missing"), StreamChange{}},
		{streamDelete("todo", "nogroup", "a1"), StreamChange{}},
		{streamDelete("nostream", "todos", "a1"), StreamChange{}},
		{streamDelete("todo", "todos", "a1"), StreamChange{Existed: true, Old: []byte(`{"id":"a1","done":true}`), Deleted: true}},
		{&log.Record{Kind: log.KindStreamSend, Stream: "todo", Group: "todos", Value: []byte(`{"type":"x","data":1,"id":null}`)}, StreamChange{}},
		{&log.Record{Kind: log.KindStateSet, Scope: "todo", Key: "k", Value: []byte(`1`)}, StreamChange{}},
	}
	for i, st := range steps {
		got := s.Apply(st.rec)
		if !reflect.DeepEqual(got, st.want) {
			t.Errorf("step %d (%s): got %+v, want %+v", i, st.rec.Kind, got, st.want)
		}
	}
	if _, ok := s.Get("todo", "todos", "a1"); ok {
		t.Error("deleted item still readable")
	}
	if v, ok := s.Get("todo", "todos", "n"); !ok || string(v) != "1" {
		t.Errorf("Get n = %s %v", v, ok)
	}
	if _, ok := s.Get("todo", "nope", "n"); ok {
		t.Error("unknown group found")
	}
	if streams, groups, items := s.Counts(); streams != 1 || groups != 1 || items != 3 {
		t.Errorf("Counts = %d %d %d", streams, groups, items)
	}
}

func TestStreamsGroups(t *testing.T) {
	var s Streams
	for _, r := range []*log.Record{
		streamSet("b", "g2", "i", "1"),
		streamSet("b", "g1", "i", "1"),
		streamSet("b", "g3", "i", "1"),
		streamSet("a", "z", "i", "1"),
		streamSet("a:b", "g", "i", "1"),
		streamSet("", "", "", `""`),
		streamDelete("b", "g2", "i"),
		streamSet("b", "g2", "i", "2"), // re-created: now the newest group
	} {
		s.Apply(r)
	}
	if got := s.ListGroups("b"); !reflect.DeepEqual(got, []string{"g1", "g3", "g2"}) {
		t.Errorf("ListGroups(b) = %q", got)
	}
	if got := s.ListGroups("a"); !reflect.DeepEqual(got, []string{"z"}) {
		t.Errorf("ListGroups(a) = %q (must not see stream a:b)", got)
	}
	if got := s.ListGroups("unknown"); got == nil || len(got) != 0 {
		t.Errorf("ListGroups(unknown) = %#v, want empty non-nil", got)
	}
	if got := s.List("unknown", "g"); got == nil || len(got) != 0 {
		t.Errorf("List(unknown) = %#v, want empty non-nil", got)
	}
	if v, ok := s.Get("", "", ""); !ok || string(v) != `""` {
		t.Errorf("empty names: %s %v", v, ok)
	}
	want := []StreamGroups{{ID: "", Groups: []string{""}}, {ID: "a", Groups: []string{"z"}}, {ID: "a:b", Groups: []string{"g"}}, {ID: "b", Groups: []string{"g1", "g2", "g3"}}}
	if got := s.ListAll(); !reflect.DeepEqual(got, want) {
		t.Errorf("ListAll = %+v", got)
	}

	// Emptying the last group drops the stream.
	s.Apply(streamDelete("a", "z", "i"))
	if got := s.ListGroups("a"); len(got) != 0 {
		t.Errorf("emptied stream still has groups %q", got)
	}
	if streams, groups, items := s.Counts(); streams != 3 || groups != 5 || items != 5 {
		t.Errorf("Counts = %d %d %d", streams, groups, items)
	}
}

func TestStreamsCopyRecordBytes(t *testing.T) {
	var s Streams
	rec := streamSet("s", "g", "i", `{"a":1}`)
	s.Apply(rec)
	copy(rec.Value, `{"b":2}`) // a log reader may reuse the record's buffer
	if v, _ := s.Get("s", "g", "i"); string(v) != `{"a":1}` {
		t.Fatalf("stored value aliases the record: %s", v)
	}
}
