package projections

import (
	"reflect"
	"strings"
	"testing"

	"github.com/iii-go/iii/log"
)

func TestParseStreamTriggerConfig(t *testing.T) {
	tests := []struct {
		raw  string
		want StreamFilter
		err  string
	}{
		{`{"stream_name":"todo"}`, StreamFilter{Stream: "todo"}, ""},
		{`{"stream_name":"todo","group_id":"todos","item_id":"a","condition_function_id":"c","other":1}`, StreamFilter{"todo", "todos", "a", "c"}, ""},
		{`{"stream_name":"","group_id":null,"item_id":null,"condition_function_id":null}`, StreamFilter{}, ""},
		{` { "stream_name" : "s" } `, StreamFilter{Stream: "s"}, ""},
		{`{}`, StreamFilter{}, "stream trigger config: stream_name is missing"},
		{`{"group_id":"g"}`, StreamFilter{}, "stream_name is missing"},
		{`{"stream_name":5}`, StreamFilter{}, "stream trigger config: stream_name must be a string, got number"},
		{`{"stream_name":null}`, StreamFilter{}, "stream_name must be a string, got null"},
		{`{"stream_name":"s","group_id":1}`, StreamFilter{}, "group_id must be a string, got number"},
		{`{"stream_name":"s","item_id":[]}`, StreamFilter{}, "item_id must be a string, got array"},
		{`{"stream_name":"s","condition_function_id":{}}`, StreamFilter{}, "condition_function_id must be a string, got object"},
		{`null`, StreamFilter{}, "stream trigger config: must be an object, got null"},
		{``, StreamFilter{}, "must be an object, got null"},
		{`"todo"`, StreamFilter{}, "must be an object, got string"},
	}
	for _, tt := range tests {
		got, err := ParseStreamTriggerConfig([]byte(tt.raw))
		switch {
		case tt.err == "" && err != nil:
			t.Errorf("%s: unexpected error %v", tt.raw, err)
		case tt.err != "" && (err == nil || !strings.Contains(err.Error(), tt.err)):
			t.Errorf("%s: error %v, want %q", tt.raw, err, tt.err)
		case tt.err == "" && got != tt.want:
			t.Errorf("%s: got %+v, want %+v", tt.raw, got, tt.want)
		}
	}
}

func TestParseStateTriggerConfig(t *testing.T) {
	tests := []struct {
		raw  string
		want StateFilter
		err  string
	}{
		{`{}`, StateFilter{}, ""},
		{`{"scope":"s","key":"k","condition_function_id":"c"}`, StateFilter{Scope: "s", Key: "k", HasScope: true, HasKey: true, Condition: "c"}, ""},
		{`{"scope":""}`, StateFilter{HasScope: true}, ""},
		{`{"scope":null,"key":null}`, StateFilter{}, ""},
		{`{"scope":1}`, StateFilter{}, "state trigger config: scope must be a string, got number"},
		{`{"key":true}`, StateFilter{}, "key must be a string, got boolean"},
		{`[]`, StateFilter{}, "state trigger config: must be an object, got array"},
		{`null`, StateFilter{}, "must be an object, got null"},
	}
	for _, tt := range tests {
		got, err := ParseStateTriggerConfig([]byte(tt.raw))
		switch {
		case tt.err == "" && err != nil:
			t.Errorf("%s: unexpected error %v", tt.raw, err)
		case tt.err != "" && (err == nil || !strings.Contains(err.Error(), tt.err)):
			t.Errorf("%s: error %v, want %q", tt.raw, err, tt.err)
		case tt.err == "" && got != tt.want:
			t.Errorf("%s: got %+v, want %+v", tt.raw, got, tt.want)
		}
	}
}

func subIDs(subs []Sub) string {
	return strings.Join(ids(subs, func(s Sub) string { return s.TriggerID }), ",")
}

func TestMatchStream(t *testing.T) {
	var s Subscriptions
	for _, r := range []*log.Record{
		trigRegistered("w1", "any", "stream", "f", `{"stream_name":"todo"}`, `{"m":1}`),
		trigRegistered("w1", "group", "stream", "f", `{"stream_name":"todo","group_id":"todos"}`, ""),
		trigRegistered("w2", "item-any-group", "stream", "f", `{"stream_name":"todo","group_id":"","item_id":"a"}`, ""),
		trigRegistered("w2", "group-item", "stream", "f", `{"stream_name":"todo","group_id":"todos","item_id":"b","condition_function_id":"cond"}`, ""),
		trigRegistered("w2", "other", "stream", "f", `{"stream_name":"other"}`, ""),
		trigRegistered("w2", "empty-name", "stream", "f", `{"stream_name":""}`, ""),
		trigRegistered("w2", "bad", "stream", "f", `{"group_id":"todos"}`, ""),
		trigRegistered("w2", "cron", "cron", "f", `{"stream_name":"todo"}`, ""),
	} {
		s.Apply(r)
	}
	tests := []struct {
		stream, group, item string
		hasItem             bool
		want                string
	}{
		{"todo", "todos", "a", true, "any,group,item-any-group"},
		{"todo", "todos", "b", true, "any,group,group-item"},
		{"todo", "todos", "", false, "any,group"},
		{"todo", "todos", "", true, "any,group"},
		{"todo", "other-group", "a", true, "any,item-any-group"},
		{"todo", "other-group", "b", true, "any"},
		{"other", "x", "y", true, "other"},
		{"", "", "", false, "empty-name"},
		{"Todo", "todos", "a", true, ""},
		{"nothing", "g", "i", true, ""},
	}
	for _, tt := range tests {
		if got := subIDs(s.MatchStream(tt.stream, tt.group, tt.item, tt.hasItem)); got != tt.want {
			t.Errorf("MatchStream(%q,%q,%q,%v) = %s, want %s", tt.stream, tt.group, tt.item, tt.hasItem, got, tt.want)
		}
	}
	subs := s.MatchStream("todo", "todos", "b", true)
	if !reflect.DeepEqual(subs[0], Sub{TriggerID: "any", Function: "f", Worker: "w1", Metadata: []byte(`{"m":1}`)}) ||
		!reflect.DeepEqual(subs[2], Sub{TriggerID: "group-item", Function: "f", Worker: "w2", Condition: "cond"}) {
		t.Errorf("subs = %+v", subs)
	}
	if stream, state := s.Counts(); stream != 6 || state != 0 {
		t.Errorf("Counts = %d %d", stream, state)
	}
}

func TestSubscriptionsLifecycle(t *testing.T) {
	var s Subscriptions
	var g Registry
	apply := func(r *log.Record) bool { g.Apply(r); return s.Apply(r) }
	apply(trigRegistered("w1", "t1", "stream", "f1", `{"stream_name":"s"}`, ""))
	apply(trigRegistered("w2", "t2", "stream", "f2", `{"stream_name":"s"}`, ""))
	apply(trigRegistered("w1", "t3", "stream", "f3", `{"stream_name":"s"}`, ""))
	match := func() string { return subIDs(s.MatchStream("s", "g", "i", true)) }

	// Re-registering keeps the place; the latest config counts once.
	if !apply(trigRegistered("w1", "t1", "stream", "f1b", `{"stream_name":"s"}`, "")) {
		t.Error("re-registration not reported as a change")
	}
	if got := match(); got != "t1,t2,t3" {
		t.Errorf("after re-register: %s", got)
	}
	if subs := s.MatchStream("s", "g", "i", true); subs[0].Function != "f1b" {
		t.Errorf("replacement not applied: %+v", subs[0])
	}
	// Moving to another stream keeps the registration position too.
	apply(trigRegistered("w1", "t1", "stream", "f1", `{"stream_name":"elsewhere"}`, ""))
	apply(trigRegistered("w1", "t1", "stream", "f1", `{"stream_name":"s"}`, ""))
	if got := match(); got != "t1,t2,t3" {
		t.Errorf("after moving back: %s", got)
	}
	// Re-registered under a non-indexed type: gone from matching, place kept.
	apply(trigRegistered("w1", "t1", "webhook", "f1", `{"stream_name":"s"}`, ""))
	if got := match(); got != "t2,t3" {
		t.Errorf("after type change: %s", got)
	}
	apply(trigRegistered("w1", "t1", "stream", "f1", `{"stream_name":"s"}`, ""))
	if got := match(); got != "t1,t2,t3" {
		t.Errorf("after type change back: %s", got)
	}
	// Unregister and register again: moves to the end.
	if !apply(trigUnregistered("anyone", "t1", "stream")) {
		t.Error("unregister not reported")
	}
	if apply(trigUnregistered("anyone", "t1", "stream")) {
		t.Error("unregister of unknown id reported a change")
	}
	apply(trigRegistered("w1", "t1", "stream", "f1", `{"stream_name":"s"}`, ""))
	if got := match(); got != "t2,t3,t1" {
		t.Errorf("after unregister+register: %s", got)
	}
	// Same order as the registry's.
	var regOrder []string
	for _, tr := range g.Triggers() {
		regOrder = append(regOrder, tr.ID)
	}
	if got := match(); got != strings.Join(regOrder, ",") {
		t.Errorf("order %s differs from registry %q", got, regOrder)
	}
	// A worker's triggers go with it.
	apply(trigRegistered("w1", "st", "state", "f", `{"scope":"a"}`, ""))
	if !apply(workerGone("w1")) {
		t.Error("disconnect not reported")
	}
	if got := match(); got != "t2" {
		t.Errorf("after disconnect: %s", got)
	}
	if got := s.MatchState("a", "k"); len(got) != 0 {
		t.Errorf("state sub survived disconnect: %+v", got)
	}
	if apply(workerGone("w1")) {
		t.Error("second disconnect reported a change")
	}
	// engine.started forgets everything.
	apply(trigRegistered("w3", "st", "state", "f", `{}`, ""))
	if !apply(engineStarted()) {
		t.Error("engine.started not reported")
	}
	if got := match(); got != "" || len(s.MatchState("x", "y")) != 0 {
		t.Errorf("after engine.started: %s", got)
	}
	if stream, state := s.Counts(); stream != 0 || state != 0 {
		t.Errorf("Counts = %d %d", stream, state)
	}
}

func TestMatchState(t *testing.T) {
	var s Subscriptions
	for _, r := range []*log.Record{
		trigRegistered("w", "all", "state", "f", `{}`, ""),
		trigRegistered("w", "scope", "state", "f", `{"scope":"todo"}`, ""),
		trigRegistered("w", "key", "state", "f", `{"key":"k"}`, ""),
		trigRegistered("w", "both", "state", "f", `{"scope":"todo","key":"k","condition_function_id":"c"}`, ""),
		trigRegistered("w", "empty-scope", "state", "f", `{"scope":""}`, ""),
		trigRegistered("w", "bad", "state", "f", `[]`, ""),
		trigRegistered("w", "stream", "stream", "f", `{"stream_name":"todo"}`, ""),
	} {
		s.Apply(r)
	}
	tests := []struct{ scope, key, want string }{
		{"todo", "k", "all,scope,key,both"},
		{"todo", "x", "all,scope"},
		{"other", "k", "all,key"},
		{"", "z", "all,empty-scope"},
	}
	for _, tt := range tests {
		if got := subIDs(s.MatchState(tt.scope, tt.key)); got != tt.want {
			t.Errorf("MatchState(%q,%q) = %s, want %s", tt.scope, tt.key, got, tt.want)
		}
	}
	if subs := s.MatchState("todo", "k"); subs[3].Condition != "c" {
		t.Errorf("condition lost: %+v", subs[3])
	}
}

func TestAppendMatchStreamAllocations(t *testing.T) {
	var s Subscriptions
	s.Apply(trigRegistered("w", "t", "stream", "f", `{"stream_name":"todo","group_id":"todos"}`, ""))
	dst := make([]Sub, 0, 4)
	tests := []struct {
		name string
		fn   func()
	}{
		{"no subscribers", func() { _ = s.AppendMatchStream(nil, "nothing", "g", "i", true) }},
		{"no match", func() { _ = s.AppendMatchStream(nil, "todo", "other", "i", true) }},
		{"match into reused slice", func() { dst = s.AppendMatchStream(dst[:0], "todo", "todos", "i", true) }},
	}
	for _, tt := range tests {
		if n := testing.AllocsPerRun(100, tt.fn); n != 0 {
			t.Errorf("%s: %v allocations", tt.name, n)
		}
	}
}
