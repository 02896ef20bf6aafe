package projections

import (
	"reflect"
	"testing"

	"github.com/iii-go/iii/log"
)

func stateSet(scope, key, value string) *log.Record {
	return &log.Record{Kind: log.KindStateSet, Scope: scope, Key: key, Value: []byte(value)}
}

func stateUpdate(scope, key, ops string) *log.Record {
	return &log.Record{Kind: log.KindStateUpdate, Scope: scope, Key: key, Value: []byte(ops)}
}

func stateDelete(scope, key string) *log.Record {
	return &log.Record{Kind: log.KindStateDelete, Scope: scope, Key: key}
}

func TestStates(t *testing.T) {
	var s States
	steps := []struct {
		rec  *log.Record
		want StateChange
	}{
		{stateSet("b", "k1", `{"value":1}`), StateChange{New: []byte(`{"value":1}`)}},
		{stateSet("b", "k1", `{"value":2}`), StateChange{Existed: true, Old: []byte(`{"value":1}`), New: []byte(`{"value":2}`)}},
		{stateSet("b", "k2", `"x"`), StateChange{New: []byte(`"x"`)}},
		{stateUpdate("a", "n", `[{"type":"increment","path":"","by":2}]`), StateChange{New: []byte(`2`)}},
		{stateUpdate("a", "n", `[{"type":"decrement","path":"","by":3}]`), StateChange{Existed: true, Old: []byte(`2`), New: []byte(`-1`)}},
		{stateUpdate("a", "m", `[]`), StateChange{New: []byte(`{}`)}},
		{stateSet("", "", `null`), StateChange{New: []byte(`null`)}},
		{stateDelete("b", "missing"), StateChange{}},
		{stateDelete("zz", "missing"), StateChange{}},
		{stateDelete("b", "k1"), StateChange{Existed: true, Old: []byte(`{"value":2}`)}},
		{streamSet("b", "g", "i", "1"), StateChange{}},
	}
	for i, st := range steps {
		if got := s.Apply(st.rec); !reflect.DeepEqual(got, st.want) {
			t.Errorf("step %d: got %+v, want %+v", i, got, st.want)
		}
	}
	if got := strs(s.List("a")); got != `-1 {}` {
		t.Errorf("List(a) = %s", got)
	}
	if got := s.ListScopes(); !reflect.DeepEqual(got, []string{"", "a", "b"}) {
		t.Errorf("ListScopes = %q", got)
	}
	s.Apply(stateDelete("b", "k2"))
	if got := s.ListScopes(); !reflect.DeepEqual(got, []string{"", "a"}) {
		t.Errorf("ListScopes after emptying b = %q", got)
	}
	if got := s.List("b"); got == nil || len(got) != 0 {
		t.Errorf("List(b) = %#v", got)
	}
	if v, ok := s.Get("a", "n"); !ok || string(v) != "-1" {
		t.Errorf("Get = %s %v", v, ok)
	}
	if scopes, keys := s.Counts(); scopes != 2 || keys != 3 {
		t.Errorf("Counts = %d %d", scopes, keys)
	}

	// Insertion order per scope, as for streams.
	var o States
	for _, r := range []*log.Record{stateSet("s", "a", "1"), stateSet("s", "b", "2"), stateSet("s", "a", "3"), stateDelete("s", "b"), stateSet("s", "b", "4")} {
		o.Apply(r)
	}
	if got := strs(o.List("s")); got != "3 4" {
		t.Errorf("order = %s", got)
	}
}
