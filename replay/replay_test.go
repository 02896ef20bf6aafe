package replay

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/iii-go/iii/history"
	"github.com/iii-go/iii/projections"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/iii-go/iii/log"
)

// jsonLines is the --format json line of each record of testLog, by index.
var jsonLines = map[uint64]string{
	1:  `{"index":1,"id":"01KDZ2CP780000000000000001","time":"2026-01-02T10:00:01Z","kind":"engine.started","value":{"version":"0.1.0"}}`,
	2:  `{"index":2,"id":"01KDZ2CQ6G0000000000000002","time":"2026-01-02T10:00:02Z","kind":"worker.connected","worker":"w1","value":{"listener":"0.0.0.0:49134","ip_address":"127.0.0.1","rbac":false}}`,
	3:  `{"index":3,"id":"01KDZ2CR5R0000000000000003","time":"2026-01-02T10:00:03Z","kind":"function.registered","worker":"w1","function":"todos::create","value":{"description":"create a todo"}}`,
	4:  `{"index":4,"id":"01KDZ2CS500000000000000004","time":"2026-01-02T10:00:04Z","kind":"function.registered","worker":"w1","function":"todos::list"}`,
	5:  `{"index":5,"id":"01KDZ2CT480000000000000005","time":"2026-01-02T10:00:05Z","kind":"trigger.registered","worker":"w1","function":"todos::list","trigger":"t1","trigger_type":"stream","value":{"stream_name":"todo","group_id":"inbox"},"meta":{"owner":"ui"}}`,
	6:  `{"index":6,"id":"01KDZ2CV3G0000000000000006","time":"2026-01-02T10:00:06Z","kind":"stream.set","stream":"todo","group":"inbox","item":"a","value":{"title":"buy milk","done":false}}`,
	7:  `{"index":7,"id":"01KDZ2CW2R0000000000000007","time":"2026-01-02T10:00:07Z","kind":"stream.set","stream":"todo","group":"inbox","item":"b","value":{"title":"walk dog","done":false}}`,
	8:  `{"index":8,"id":"01KDZ2CX200000000000000008","time":"2026-01-02T10:00:08Z","kind":"stream.update","stream":"todo","group":"inbox","item":"a","value":[{"type":"set","path":"done","value":true}]}`,
	9:  `{"index":9,"id":"01KDZ2CY180000000000000009","time":"2026-01-02T10:00:09Z","kind":"stream.set","stream":"notes","group":"personal","item":"n1","value":{"text":"hello"}}`,
	10: `{"index":10,"id":"01KDZ2CZ0G000000000000000A","time":"2026-01-02T10:00:10Z","kind":"state.set","scope":"settings","key":"theme","value":"dark"}`,
	11: `{"index":11,"id":"01KDZ2CZZR000000000000000B","time":"2026-01-02T10:00:11Z","kind":"stream.delete","stream":"todo","group":"inbox","item":"b"}`,
	12: `{"index":12,"id":"01KDZ2D0Z0000000000000000C","time":"2026-01-02T10:00:12Z","kind":"worker.disconnected","worker":"w1"}`,
	13: `{"index":13,"id":"01KDZ2D1Y8000000000000000D","time":"2026-01-02T10:00:13Z","kind":"engine.started","value":{"version":"0.1.0"}}`,
	14: `{"index":14,"id":"01KDZ2D2XG000000000000000E","time":"2026-01-02T10:00:14Z","kind":"worker.connected","worker":"w2","value":{"listener":"0.0.0.0:49134","ip_address":"10.0.0.2"}}`,
	15: `{"index":15,"id":"01KDZ2D3WR000000000000000F","time":"2026-01-02T10:00:15Z","kind":"function.registered","worker":"w2","function":"todos::create","value":{"description":"create a todo, v2"}}`,
	16: `{"index":16,"id":"01KDZ2D4W0000000000000000G","time":"2026-01-02T10:00:16Z","kind":"stream.set","stream":"todo","group":"inbox","item":"c","value":{"title":"read","done":false}}`,
	17: `{"index":17,"id":"01KDZ2D5V8000000000000000H","time":"2026-01-02T10:00:17Z","kind":"stream.set","stream":"notes","group":"personal","item":"n1","value":{"text":"hello world","tags":["a"]}}`,
}

func jsonOf(indexes ...uint64) string {
	var b strings.Builder
	for _, i := range indexes {
		b.WriteString(jsonLines[i] + "\n")
	}
	return b.String()
}

func TestRecordsFilters(t *testing.T) {
	dir := writeLog(t, testLog, 10)
	tests := []struct {
		name  string
		spec  history.FilterSpec
		want  []uint64
		table string
	}{
		{"all", history.FilterSpec{}, []uint64{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17}, `
INDEX  TIME                      KIND                 SUBJECT            DETAIL
    1  2026-01-02T10:00:01.000Z  engine.started                          {"version":"0.1.0"}
    2  2026-01-02T10:00:02.000Z  worker.connected     w1                 {"listener":"0.0.0.0:49134","ip_address":"127.0.0.1","rbac":false}
    3  2026-01-02T10:00:03.000Z  function.registered  todos::create      worker=w1 {"description":"create a todo"}
    4  2026-01-02T10:00:04.000Z  function.registered  todos::list        worker=w1
    5  2026-01-02T10:00:05.000Z  trigger.registered   t1                 worker=w1 function=todos::list type=stream {"stream_name":"todo","group_id":"inbox"} meta={"owner":"ui"}
    6  2026-01-02T10:00:06.000Z  stream.set           todo/inbox/a       {"title":"buy milk","done":false}
    7  2026-01-02T10:00:07.000Z  stream.set           todo/inbox/b       {"title":"walk dog","done":false}
    8  2026-01-02T10:00:08.000Z  stream.update        todo/inbox/a       [{"type":"set","path":"done","value":true}]
    9  2026-01-02T10:00:09.000Z  stream.set           notes/personal/n1  {"text":"hello"}
   10  2026-01-02T10:00:10.000Z  state.set            settings/theme     "dark"
   11  2026-01-02T10:00:11.000Z  stream.delete        todo/inbox/b
   12  2026-01-02T10:00:12.000Z  worker.disconnected  w1
   13  2026-01-02T10:00:13.000Z  engine.started                          {"version":"0.1.0"}
   14  2026-01-02T10:00:14.000Z  worker.connected     w2                 {"listener":"0.0.0.0:49134","ip_address":"10.0.0.2"}
   15  2026-01-02T10:00:15.000Z  function.registered  todos::create      worker=w2 {"description":"create a todo, v2"}
   16  2026-01-02T10:00:16.000Z  stream.set           todo/inbox/c       {"title":"read","done":false}
   17  2026-01-02T10:00:17.000Z  stream.set           notes/personal/n1  {"text":"hello world","tags":["a"]}
`},
		{"stream", history.FilterSpec{Stream: "todo"}, []uint64{6, 7, 8, 11, 16}, `
INDEX  TIME                      KIND           SUBJECT       DETAIL
    6  2026-01-02T10:00:06.000Z  stream.set     todo/inbox/a  {"title":"buy milk","done":false}
    7  2026-01-02T10:00:07.000Z  stream.set     todo/inbox/b  {"title":"walk dog","done":false}
    8  2026-01-02T10:00:08.000Z  stream.update  todo/inbox/a  [{"type":"set","path":"done","value":true}]
   11  2026-01-02T10:00:11.000Z  stream.delete  todo/inbox/b
   16  2026-01-02T10:00:16.000Z  stream.set     todo/inbox/c  {"title":"read","done":false}
`},
		{"kinds", history.FilterSpec{Kind: "stream.set,stream.delete"}, []uint64{6, 7, 9, 11, 16, 17}, `
INDEX  TIME                      KIND           SUBJECT            DETAIL
    6  2026-01-02T10:00:06.000Z  stream.set     todo/inbox/a       {"title":"buy milk","done":false}
    7  2026-01-02T10:00:07.000Z  stream.set     todo/inbox/b       {"title":"walk dog","done":false}
    9  2026-01-02T10:00:09.000Z  stream.set     notes/personal/n1  {"text":"hello"}
   11  2026-01-02T10:00:11.000Z  stream.delete  todo/inbox/b
   16  2026-01-02T10:00:16.000Z  stream.set     todo/inbox/c       {"title":"read","done":false}
   17  2026-01-02T10:00:17.000Z  stream.set     notes/personal/n1  {"text":"hello world","tags":["a"]}
`},
		{"function.registered", history.FilterSpec{Kind: "function.registered"}, []uint64{3, 4, 15}, `
INDEX  TIME                      KIND                 SUBJECT        DETAIL
    3  2026-01-02T10:00:03.000Z  function.registered  todos::create  worker=w1 {"description":"create a todo"}
    4  2026-01-02T10:00:04.000Z  function.registered  todos::list    worker=w1
   15  2026-01-02T10:00:15.000Z  function.registered  todos::create  worker=w2 {"description":"create a todo, v2"}
`},
		{"worker.disconnected", history.FilterSpec{Kind: "worker.disconnected"}, []uint64{12}, `
INDEX  TIME                      KIND                 SUBJECT  DETAIL
   12  2026-01-02T10:00:12.000Z  worker.disconnected  w1
`},
		{"worker", history.FilterSpec{Worker: "w1"}, []uint64{2, 3, 4, 5, 12}, `
INDEX  TIME                      KIND                 SUBJECT        DETAIL
    2  2026-01-02T10:00:02.000Z  worker.connected     w1             {"listener":"0.0.0.0:49134","ip_address":"127.0.0.1","rbac":false}
    3  2026-01-02T10:00:03.000Z  function.registered  todos::create  worker=w1 {"description":"create a todo"}
    4  2026-01-02T10:00:04.000Z  function.registered  todos::list    worker=w1
    5  2026-01-02T10:00:05.000Z  trigger.registered   t1             worker=w1 function=todos::list type=stream {"stream_name":"todo","group_id":"inbox"} meta={"owner":"ui"}
   12  2026-01-02T10:00:12.000Z  worker.disconnected  w1
`},
		{"function", history.FilterSpec{Function: "todos::create"}, []uint64{3, 15}, `
INDEX  TIME                      KIND                 SUBJECT        DETAIL
    3  2026-01-02T10:00:03.000Z  function.registered  todos::create  worker=w1 {"description":"create a todo"}
   15  2026-01-02T10:00:15.000Z  function.registered  todos::create  worker=w2 {"description":"create a todo, v2"}
`},
		{"group and item", history.FilterSpec{Group: "inbox", Item: "a"}, []uint64{6, 8}, `
INDEX  TIME                      KIND           SUBJECT       DETAIL
    6  2026-01-02T10:00:06.000Z  stream.set     todo/inbox/a  {"title":"buy milk","done":false}
    8  2026-01-02T10:00:08.000Z  stream.update  todo/inbox/a  [{"type":"set","path":"done","value":true}]
`},
		{"index range", history.FilterSpec{FromIndex: "5", ToIndex: "7"}, []uint64{5, 6, 7}, `
INDEX  TIME                      KIND                SUBJECT       DETAIL
    5  2026-01-02T10:00:05.000Z  trigger.registered  t1            worker=w1 function=todos::list type=stream {"stream_name":"todo","group_id":"inbox"} meta={"owner":"ui"}
    6  2026-01-02T10:00:06.000Z  stream.set          todo/inbox/a  {"title":"buy milk","done":false}
    7  2026-01-02T10:00:07.000Z  stream.set          todo/inbox/b  {"title":"walk dog","done":false}
`},
		{"time range", history.FilterSpec{Since: "2026-01-02T10:00:10Z", Until: "2026-01-02T10:00:12Z"}, []uint64{10, 11, 12}, `
INDEX  TIME                      KIND                 SUBJECT         DETAIL
   10  2026-01-02T10:00:10.000Z  state.set            settings/theme  "dark"
   11  2026-01-02T10:00:11.000Z  stream.delete        todo/inbox/b
   12  2026-01-02T10:00:12.000Z  worker.disconnected  w1
`},
		{"since duration", history.FilterSpec{Since: "2s"}, []uint64{15, 16, 17}, `
INDEX  TIME                      KIND                 SUBJECT            DETAIL
   15  2026-01-02T10:00:15.000Z  function.registered  todos::create      worker=w2 {"description":"create a todo, v2"}
   16  2026-01-02T10:00:16.000Z  stream.set           todo/inbox/c       {"title":"read","done":false}
   17  2026-01-02T10:00:17.000Z  stream.set           notes/personal/n1  {"text":"hello world","tags":["a"]}
`},
		{"limit", history.FilterSpec{Stream: "todo", Limit: "2"}, []uint64{6, 7}, `
INDEX  TIME                      KIND        SUBJECT       DETAIL
    6  2026-01-02T10:00:06.000Z  stream.set  todo/inbox/a  {"title":"buy milk","done":false}
    7  2026-01-02T10:00:07.000Z  stream.set  todo/inbox/b  {"title":"walk dog","done":false}
`},
		{"no match", history.FilterSpec{Stream: "nope"}, nil, ``},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, err := history.ParseFilter(tt.spec, at(17)) // "2s" is 2s before record 17
			if err != nil {
				t.Fatal(err)
			}
			if got := render(t, "table", func(w Writer) error { return Records(dir, f, w.Record) }); got != strings.TrimPrefix(tt.table, "\n") {
				t.Errorf("table:\n%s\nwant:\n%s", got, tt.table)
			}
			if got := render(t, "json", func(w Writer) error { return Records(dir, f, w.Record) }); got != jsonOf(tt.want...) {
				t.Errorf("json:\n%s\nwant:\n%s", got, jsonOf(tt.want...))
			}
		})
	}
}

const state9Table = `state at index 9 (2026-01-02T10:00:09.000Z)

STREAM  GROUP     ITEM  VALUE
notes   personal  n1    {"text":"hello"}
todo    inbox     a     {"title":"buy milk","done":true}
todo    inbox     b     {"title":"walk dog","done":false}

WORKER  NAME  CONNECTED                 FUNCTIONS
w1            2026-01-02T10:00:02.000Z  2

FUNCTION       WORKER
todos::create  w1
todos::list    w1

TRIGGER  TYPE    FUNCTION     WORKER  CONFIG
t1       stream  todos::list  w1      {"stream_name":"todo","group_id":"inbox"}
`

const state9JSON = `{"index":9,"time":"2026-01-02T10:00:09Z","items":[{"stream":"notes","group":"personal","item":"n1","value":{"text":"hello"}},{"stream":"todo","group":"inbox","item":"a","value":{"title":"buy milk","done":true}},{"stream":"todo","group":"inbox","item":"b","value":{"title":"walk dog","done":false}}],"state":[],"workers":[{"id":"w1","listener":"0.0.0.0:49134","ip_address":"127.0.0.1","connected_at":"2026-01-02T10:00:02Z"}],"functions":[{"id":"todos::create","worker":"w1","description":"create a todo"},{"id":"todos::list","worker":"w1"}],"triggers":[{"id":"t1","type":"stream","function":"todos::list","worker":"w1","config":{"stream_name":"todo","group_id":"inbox"},"metadata":{"owner":"ui"}}],"trigger_types":[]}
`

const state17Table = `state at index 17 (2026-01-02T10:00:17.000Z)

STREAM  GROUP     ITEM  VALUE
notes   personal  n1    {"text":"hello world","tags":["a"]}
todo    inbox     a     {"title":"buy milk","done":true}
todo    inbox     c     {"title":"read","done":false}

SCOPE     KEY    VALUE
settings  theme  "dark"

WORKER  NAME  CONNECTED                 FUNCTIONS
w2            2026-01-02T10:00:14.000Z  1

FUNCTION       WORKER
todos::create  w2
`

const state17JSON = `{"index":17,"time":"2026-01-02T10:00:17Z","items":[{"stream":"notes","group":"personal","item":"n1","value":{"text":"hello world","tags":["a"]}},{"stream":"todo","group":"inbox","item":"a","value":{"title":"buy milk","done":true}},{"stream":"todo","group":"inbox","item":"c","value":{"title":"read","done":false}}],"state":[{"scope":"settings","key":"theme","value":"dark"}],"workers":[{"id":"w2","listener":"0.0.0.0:49134","ip_address":"10.0.0.2","connected_at":"2026-01-02T10:00:14Z"}],"functions":[{"id":"todos::create","worker":"w2","description":"create a todo, v2"}],"triggers":[],"trigger_types":[]}
`

const state0JSON = `{"index":0,"items":[],"state":[],"workers":[],"functions":[],"triggers":[],"trigger_types":[]}
`

func TestViewAt(t *testing.T) {
	// With a snapshot after record 10 (used for points from 10 on) and
	// without any (every point rebuilt from the first record).
	for _, snaps := range [][]int{{10}, nil} {
		dir := writeLog(t, testLog, snaps...)
		tests := []struct {
			name        string
			at          Point
			table, json string
		}{
			// Item b is deleted at 11 but still there at 9; todos::create
			// belongs to w1 at 9 and to w2 at 17.
			{"index 9", Point{Index: 9}, state9Table, state9JSON},
			{"time between 9 and 10", Point{Time: at(9).Add(500 * time.Millisecond)}, state9Table, state9JSON},
			{"index 17", Point{Index: 17}, state17Table, state17JSON},
			{"time after the end", Point{Time: at(100)}, state17Table, state17JSON},
			{"index 0", Point{Index: 0}, "state at index 0\n(empty)\n", state0JSON},
			{"time before the start", Point{Time: at(0)}, "state at index 0\n(empty)\n", state0JSON},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				st, err := ViewAt(dir, tt.at)
				if err != nil {
					t.Fatal(err)
				}
				if got := render(t, "table", func(w Writer) error { return w.View(st) }); got != tt.table {
					t.Errorf("table:\n%s\nwant:\n%s", got, tt.table)
				}
				if got := render(t, "json", func(w Writer) error { return w.View(st) }); got != tt.json {
					t.Errorf("json:\n%s\nwant:\n%s", got, tt.json)
				}
			})
		}
	}
}

func TestSnapshotFor(t *testing.T) {
	dir := writeLog(t, testLog, 10)
	tests := []struct {
		at   Point
		want uint64
	}{
		{Point{Index: 9}, 0},
		{Point{Index: 10}, 10},
		{Point{Index: 12}, 10},
		{Point{Time: at(9)}, 0},
		{Point{Time: at(10)}, 10},
		{Point{Time: at(12)}, 10},
	}
	for _, tt := range tests {
		got, _, err := snapshotFor(DirSource(dir), tt.at)
		if err != nil || got != tt.want {
			t.Errorf("snapshotFor(%s) = %d, %v; want %d", tt.at, got, err, tt.want)
		}
	}
	// A state right at the snapshot still knows its record's time.
	st, err := ViewAt(dir, Point{Index: 10})
	if err != nil || st.Index != 10 || !st.Time.Equal(at(10)) {
		t.Errorf("ViewAt(10) = index %d, time %s, %v", st.Index, st.Time, err)
	}
}

// A source without snapshots (a cluster's stream) rebuilds the same views
// and diffs from the first record.
func TestSourceWithoutSnapshots(t *testing.T) {
	dir := writeLog(t, testLog, 10)
	plain := Source{Source: dirSource(dir)}
	for _, p := range []Point{{Index: 9}, {Index: 10}, {Index: 12}, {Time: at(12)}} {
		want, err := ViewAt(dir, p)
		if err != nil {
			t.Fatal(err)
		}
		got, err := ViewAtSource(plain, p)
		if err != nil {
			t.Fatal(err)
		}
		w := render(t, "json", func(w Writer) error { return w.View(want) })
		if g := render(t, "json", func(w Writer) error { return w.View(got) }); g != w || got.Index != want.Index {
			t.Errorf("at %s without snapshots:\n%s\nwant:\n%s", p, g, w)
		}
	}
	want, err := Diff(dir, Point{Index: 7}, Point{Index: 17})
	if err != nil {
		t.Fatal(err)
	}
	got, err := DiffSource(plain, Point{Index: 7}, Point{Index: 17})
	if err != nil || fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("diff without snapshots: %v, %v; want %v", got, err, want)
	}
}

const diff7to17Table = `changes from 7 to 17: 2 created, 1 changed, 1 deleted

CHANGE   ITEM               FIELD  OLD                                NEW
created  notes/personal/n1                                            {"text":"hello world","tags":["a"]}
changed  todo/inbox/a       done   false                              true
deleted  todo/inbox/b              {"title":"walk dog","done":false}
created  todo/inbox/c                                                 {"title":"read","done":false}
`

const diff7to17JSON = `{"change":"created","stream":"notes","group":"personal","item":"n1","new":{"text":"hello world","tags":["a"]}}
{"change":"changed","stream":"todo","group":"inbox","item":"a","old":{"title":"buy milk","done":false},"new":{"title":"buy milk","done":true},"fields":[{"path":"done","old":false,"new":true}]}
{"change":"deleted","stream":"todo","group":"inbox","item":"b","old":{"title":"walk dog","done":false}}
{"change":"created","stream":"todo","group":"inbox","item":"c","new":{"title":"read","done":false}}
`

const diff9to17Table = `changes from 9 to 17: 1 created, 1 changed, 1 deleted

CHANGE   ITEM               FIELD  OLD                                NEW
changed  notes/personal/n1  tags                                      ["a"]
                            text   "hello"                            "hello world"
deleted  todo/inbox/b              {"title":"walk dog","done":false}
created  todo/inbox/c                                                 {"title":"read","done":false}
`

const diff9to17JSON = `{"change":"changed","stream":"notes","group":"personal","item":"n1","old":{"text":"hello"},"new":{"text":"hello world","tags":["a"]},"fields":[{"path":"tags","new":["a"]},{"path":"text","old":"hello","new":"hello world"}]}
{"change":"deleted","stream":"todo","group":"inbox","item":"b","old":{"title":"walk dog","done":false}}
{"change":"created","stream":"todo","group":"inbox","item":"c","new":{"title":"read","done":false}}
`

func TestDiff(t *testing.T) {
	dir := writeLog(t, testLog, 10)
	tests := []struct {
		name        string
		from, to    Point
		table, json string
	}{
		{"7 to 17", Point{Index: 7}, Point{Index: 17}, diff7to17Table, diff7to17JSON},
		{"9 to 17 across the snapshot", Point{Index: 9}, Point{Index: 17}, diff9to17Table, diff9to17JSON},
		{"by time", Point{Time: at(9)}, Point{Time: at(17)}, strings.Replace(diff9to17Table, "from 9 to 17",
			"from 2026-01-02T10:00:09Z to 2026-01-02T10:00:17Z", 1), diff9to17JSON},
		// b is created and deleted in between: not a change.
		{"created and deleted", Point{Index: 6}, Point{Index: 11}, `changes from 6 to 11: 1 created, 1 changed, 0 deleted

CHANGE   ITEM               FIELD  OLD    NEW
created  notes/personal/n1                {"text":"hello"}
changed  todo/inbox/a       done   false  true
`, `{"change":"created","stream":"notes","group":"personal","item":"n1","new":{"text":"hello"}}
{"change":"changed","stream":"todo","group":"inbox","item":"a","old":{"title":"buy milk","done":false},"new":{"title":"buy milk","done":true},"fields":[{"path":"done","old":false,"new":true}]}
`},
		{"nothing", Point{Index: 12}, Point{Index: 15}, "no changes from 12 to 15\n", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			changes, err := Diff(dir, tt.from, tt.to)
			if err != nil {
				t.Fatal(err)
			}
			if got := render(t, "table", func(w Writer) error { return w.Diff(tt.from, tt.to, changes) }); got != tt.table {
				t.Errorf("table:\n%s\nwant:\n%s", got, tt.table)
			}
			if got := render(t, "json", func(w Writer) error { return w.Diff(tt.from, tt.to, changes) }); got != tt.json {
				t.Errorf("json:\n%s\nwant:\n%s", got, tt.json)
			}
		})
	}
}

func TestFieldDiff(t *testing.T) {
	tests := []struct{ a, b, want string }{
		{`{"a":1,"b":{"c":2,"d":3}}`, `{"b":{"d":3,"c":4},"a":1}`, `[{"path":"b.c","old":2,"new":4}]`},
		{`{"a":[1,2]}`, `{"a":[1, 2]}`, `null`},
		{`{"a":[1,2]}`, `{"a":[2,1]}`, `[{"path":"a","old":[1,2],"new":[2,1]}]`},
		{`{"a":{"x":1}}`, `{"a":5}`, `[{"path":"a","old":{"x":1},"new":5}]`},
		{`"x"`, `{"a":1}`, `[{"path":"","old":"x","new":{"a":1}}]`},
		{`{"a":null}`, `{}`, `[{"path":"a","old":null}]`},
	}
	for _, tt := range tests {
		got, err := json.Marshal(fieldDiff([]byte(tt.a), []byte(tt.b)))
		if err != nil || string(got) != tt.want {
			t.Errorf("fieldDiff(%s, %s) = %s, %v; want %s", tt.a, tt.b, got, err, tt.want)
		}
	}
}

func TestBadInput(t *testing.T) {
	dir := writeLog(t, testLog)
	empty := t.TempDir()
	now := at(17)
	tests := []struct {
		name string
		run  func() error
		want string
		is   error
	}{
		{"unknown kind", func() error {
			_, err := history.ParseFilter(history.FilterSpec{Kind: "stream.set,stream.sett"}, now)
			return err
		},
			`kind: unknown record kind "stream.sett" (known: engine.started, worker.connected, worker.updated, worker.disconnected, function.registered, function.unregistered, trigger.registered, trigger.unregistered, triggertype.registered, triggertype.unregistered, stream.set, stream.update, stream.delete, stream.send, state.set, state.update, state.delete, queue.enqueued, queue.failed, queue.done, queue.dead, queue.redriven, queue.discarded, node.lost, or family.*)`, nil},
		{"malformed since", func() error { _, err := history.ParseFilter(history.FilterSpec{Since: "yesterday"}, now); return err },
			`since: "yesterday" is neither an RFC 3339 time (2026-11-29T10:42:00Z) nor a duration (15m, 2h)`, nil},
		{"negative duration", func() error { _, err := history.ParseFilter(history.FilterSpec{Until: "-5m"}, now); return err },
			`until: "-5m": a duration means that long before now and must not be negative`, nil},
		{"malformed index", func() error { _, err := history.ParseFilter(history.FilterSpec{FromIndex: "x1"}, now); return err },
			`from_index "x1": not a record index (a whole number)`, nil},
		{"reversed indexes", func() error {
			_, err := history.ParseFilter(history.FilterSpec{FromIndex: "9", ToIndex: "3"}, now)
			return err
		},
			`from_index 9 is after to_index 3`, nil},
		{"malformed point", func() error { _, err := ParsePoint("10:42", now); return err },
			`point "10:42" is neither an RFC 3339 time (2026-11-29T10:42:00Z) nor a duration (15m, 2h)`, nil},
		{"from index past the end", func() error { return Records(dir, history.Filter{FromIndex: 18}, nop) },
			`from_index 18 is past the end of the log (last index 17)`, ErrPastEnd},
		{"to index past the end", func() error { return Records(dir, history.Filter{FromIndex: 3, ToIndex: 40}, nop) },
			`to_index 40 is past the end of the log (last index 17)`, ErrPastEnd},
		{"state past the end", func() error { _, err := ViewAt(dir, Point{Index: 18}); return err },
			`index 18 is past the end of the log (last index 17)`, ErrPastEnd},
		{"diff past the end", func() error { _, err := Diff(dir, Point{Index: 3}, Point{Index: 99}); return err },
			`to: index 99 is past the end of the log (last index 17)`, ErrPastEnd},
		{"diff backwards", func() error { _, err := Diff(dir, Point{Index: 9}, Point{Index: 3}); return err },
			`to 3 is before from 9`, nil},
		{"not a log", func() error { _, err := LogDir(empty); return err },
			empty + `: not a log directory (no wal/ subdirectory); nor is ` + filepath.Join(empty, "log"), log.ErrNotALog},
		{"scan of not a log", func() error { return Records(empty, history.Filter{}, nop) },
			`log: scan: ` + empty + `: not a log directory (no wal/ subdirectory)`, log.ErrNotALog},
		{"state of not a log", func() error { _, err := ViewAt(empty, Point{Index: 1}); return err },
			`log: snapshot: ` + empty + `: not a log directory (no wal/ subdirectory)`, log.ErrNotALog},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.run()
			if err == nil || err.Error() != tt.want {
				t.Fatalf("error %v\nwant %s", err, tt.want)
			}
			if strings.Contains(err.Error(), "\n") {
				t.Errorf("error spans lines: %q", err)
			}
			if tt.is != nil && !errors.Is(err, tt.is) {
				t.Errorf("error %v is not %v", err, tt.is)
			}
		})
	}
}

func nop(*log.Record) error { return nil }

func TestEmptyLog(t *testing.T) {
	dir := writeLog(t, nil)
	if got := render(t, "table", func(w Writer) error { return Records(dir, history.Filter{}, w.Record) }); got != "" {
		t.Errorf("records of an empty log: %q", got)
	}
	st, err := ViewAt(dir, Point{Index: 0})
	if err != nil || st.Index != 0 {
		t.Fatalf("ViewAt(0) = %v, %v", st, err)
	}
	if err := Records(dir, history.Filter{FromIndex: 1}, nop); err == nil || err.Error() != "from_index 1 is past the end of the log (the log is empty)" {
		t.Errorf("from_index on an empty log: %v", err)
	}
}

func TestLogDir(t *testing.T) {
	data := writeLog(t, testLog[:1])
	// The engine's default layout: <data-dir>/log.
	parent := t.TempDir()
	if err := os.Rename(data, filepath.Join(parent, "log")); err != nil {
		t.Fatal(err)
	}
	for _, dir := range []string{parent, filepath.Join(parent, "log")} {
		got, err := LogDir(dir)
		if err != nil || got != filepath.Join(parent, "log") {
			t.Errorf("LogDir(%s) = %s, %v", dir, got, err)
		}
	}
}

func TestFilterJSON(t *testing.T) {
	var f history.Filter
	err := json.Unmarshal([]byte(`{"stream":"todo","group":"inbox","item":"a","kind":"stream.set,stream.update",
		"worker":"w1","function":"todos::create","from_index":2,"to_index":9,
		"since":"2026-01-02T10:00:01Z","until":"2026-01-02T10:00:09.5Z","limit":3}`), &f)
	if err != nil {
		t.Fatal(err)
	}
	want, err := history.ParseFilter(history.FilterSpec{Stream: "todo", Group: "inbox", Item: "a", Kind: "stream.set,stream.update",
		Worker: "w1", Function: "todos::create", FromIndex: "2", ToIndex: "9",
		Since: "2026-01-02T10:00:01Z", Until: "2026-01-02T10:00:09.5Z", Limit: "3"}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if a, b := f.Compile(), want.Compile(); *a != *b || f.Limit != want.Limit {
		t.Errorf("decoded %+v\nwant    %+v", f, want)
	}
	for _, tt := range []struct{ in, want string }{
		{`{"stream":"todo","kinds":"stream.set"}`, `history query: json: unknown field "kinds"`},
		{`{"kind":"nope"}`, `kind: unknown record kind "nope" (known: `},
		{`{"since":"soon"}`, `since: "soon" is neither`},
		{`{"from_index":"3"}`, `history query: json: cannot unmarshal string into Go struct field`},
		{`{"from_index":5,"to_index":4}`, `from_index 5 is after to_index 4`},
		{`{"limit":-1}`, `limit -1: must not be negative`},
	} {
		var f history.Filter
		if err := json.Unmarshal([]byte(tt.in), &f); err == nil || !strings.HasPrefix(err.Error(), tt.want) {
			t.Errorf("%s: error %v, want prefix %s", tt.in, err, tt.want)
		}
	}
}

func TestQuery(t *testing.T) {
	dir := writeLog(t, testLog)
	for _, tt := range []struct {
		limit, filterLimit int
		want               []uint64
	}{
		{0, 0, []uint64{6, 7, 8, 11, 16}},
		{2, 0, []uint64{6, 7}},
		{0, 3, []uint64{6, 7, 8}},
		{4, 3, []uint64{6, 7, 8}},
		{1, 3, []uint64{6}},
	} {
		rows, err := history.Query(dirSource(dir), history.Filter{Stream: "todo", Limit: tt.filterLimit}, tt.limit)
		if err != nil {
			t.Fatal(err)
		}
		// A Row marshals exactly as a --format json line.
		var got strings.Builder
		for _, r := range rows {
			b, err := json.Marshal(r)
			if err != nil {
				t.Fatal(err)
			}
			got.Write(append(b, '\n'))
		}
		if got.String() != jsonOf(tt.want...) {
			t.Errorf("Query limit %d, filter limit %d:\n%s\nwant:\n%s", tt.limit, tt.filterLimit, got.String(), jsonOf(tt.want...))
		}
	}
	if rows, err := history.Query(dirSource(dir), history.Filter{Stream: "nope"}, 0); err != nil || rows == nil || len(rows) != 0 {
		t.Errorf("no match: %v, %v (want an empty, non-nil slice)", rows, err)
	}
}

func TestFollow(t *testing.T) {
	dir := t.TempDir()
	l, err := log.Open(dir, projections.NewModel(), log.Options{Sync: log.SyncNever})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	appendN := func(from, to int) {
		for i := from; i < to; i++ {
			rec := testLog[i]
			if _, err := l.Append(&rec); err != nil {
				t.Fatal(err)
			}
		}
	}
	appendN(0, 8)

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	got := make(chan uint64, 100)
	done := make(chan error, 1)
	go func() {
		done <- Follow(ctx, dir, history.Filter{Stream: "todo"}, func(rec *log.Record) error {
			got <- rec.Index
			return nil
		}, func() error {
			got <- 0 // caught up
			return nil
		})
	}()
	next := func() uint64 {
		t.Helper()
		select {
		case i := <-got:
			return i
		case <-time.After(10 * time.Second):
			t.Fatal("nothing followed within 10s")
		}
		return 0
	}
	// expect takes the indexes in want, skipping caught-up marks between
	// them (polls may split a burst), and then the caught-up mark.
	expect := func(want ...uint64) {
		t.Helper()
		for _, w := range want {
			i := next()
			for i == 0 {
				i = next()
			}
			if i != w {
				t.Fatalf("followed index %d, want %d", i, w)
			}
		}
		if i := next(); i != 0 {
			t.Fatalf("followed index %d, want the caught-up mark", i)
		}
	}
	expect(6, 7, 8) // history
	appendN(8, 17)  // written while following
	expect(11, 16)
	cancel()
	if err := <-done; err != nil {
		t.Errorf("Follow after cancel: %v", err)
	}

	// A follow bounded by to_index ends by itself, here once 17 is written.
	err = Follow(context.Background(), dir, history.Filter{FromIndex: 16, ToIndex: 17}, func(rec *log.Record) error {
		got <- rec.Index
		return nil
	}, func() error {
		got <- 0
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	expect(16, 17)
}

func TestTableColour(t *testing.T) {
	dir := writeLog(t, testLog[:2])
	var b strings.Builder
	w := NewTableWriter(&b, true)
	if err := Records(dir, history.Filter{}, w.Record); err != nil {
		t.Fatal(err)
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	want := "\x1b[1mINDEX\x1b[0m  \x1b[1mTIME\x1b[0m                      \x1b[1mKIND\x1b[0m              \x1b[1mSUBJECT\x1b[0m  \x1b[1mDETAIL\x1b[0m\n" +
		"    1  2026-01-02T10:00:01.000Z  \x1b[36mengine.started\x1b[0m             {\"version\":\"0.1.0\"}\n" +
		"    2  2026-01-02T10:00:02.000Z  \x1b[32mworker.connected\x1b[0m  w1       {\"listener\":\"0.0.0.0:49134\",\"ip_address\":\"127.0.0.1\",\"rbac\":false}\n"
	if b.String() != want {
		t.Errorf("got  %q\nwant %q", b.String(), want)
	}
}

func TestMatchAllocatesNothing(t *testing.T) {
	f, err := history.ParseFilter(history.FilterSpec{Stream: "todo", Kind: "stream.set,stream.update", Since: "2026-01-02T10:00:00Z"}, at(0))
	if err != nil {
		t.Fatal(err)
	}
	m := f.Compile()
	recs := append([]log.Record(nil), testLog...)
	for i := range recs {
		recs[i].Time = at(i + 1).UnixNano()
	}
	n := 0
	allocs := testing.AllocsPerRun(100, func() {
		for i := range recs {
			if m.Match(&recs[i]) {
				n++
			}
		}
	})
	if allocs != 0 {
		t.Errorf("match allocates %v times per pass", allocs)
	}
	if n != 101*4 { // 6, 7, 8 and 16, once per run plus the warm-up
		t.Errorf("matched %d", n)
	}
}

func TestProgress(t *testing.T) {
	var b strings.Builder
	p := &Progress{w: &b}
	p.set(250)
	p.draw(1000)
	if want := "\r\x1b[Kscanning [#######.......................]  25%  250/1000"; b.String() != want {
		t.Errorf("bar %q, want %q", b.String(), want)
	}
	// Output through HideWriter clears the bar first.
	b.Reset()
	io.WriteString(p.HideWriter(&b), "row\n")
	if b.String() != "\r\x1b[Krow\n" {
		t.Errorf("hide: %q", b.String())
	}
	// A scan shorter than the delay draws nothing.
	b.Reset()
	p = StartProgress(&b, func() (uint64, error) { return 10, nil })
	p.Stop()
	if b.String() != "" {
		t.Errorf("quick scan drew %q", b.String())
	}
}

// The hand-built JSON line must be exactly what encoding/json makes of a
// Row, so Query's answer and --format json agree.
func TestJSONLineMatchesRow(t *testing.T) {
	odd := []string{"", "plain", `q"uote\back`, "ctl\x00\x01\x1f\b\f\n\r\t", "<html>&amp;", "é ü 日本 🎉",
		"bad\xffutf8\xc3", "\u2028line\u2029sep", "\x7f del"}
	values := []string{"", `{"a":1}`, "{\n  \"a\" : [1, 2 ]\n}", `"<b>"`, `not json`, "{\"x\":\"\u2028\"}", "nul\x00l", `1e400`}
	recs := []log.Record{}
	for i := range testLog {
		recs = append(recs, testLog[i])
	}
	for i, s := range odd {
		recs = append(recs, log.Record{Kind: log.KindTriggerRegistered, Stream: s, Group: s, Item: s, Scope: s, Key: s,
			Worker: s, Function: s, Trigger: s, TriggerType: s,
			Value: []byte(values[i%len(values)]), Meta: []byte(values[(i+3)%len(values)])})
	}
	for i := range recs {
		recs[i].Index, recs[i].ID, recs[i].Time = uint64(i)*977, testID(i), at(i).UnixNano()+int64(i)*1001
		var want strings.Builder
		enc := json.NewEncoder(&want)
		enc.SetEscapeHTML(false)
		if err := enc.Encode(history.NewRow(&recs[i])); err != nil {
			t.Fatal(err)
		}
		var got strings.Builder
		w := NewJSONWriter(&got)
		if err := w.Record(&recs[i]); err != nil {
			t.Fatal(err)
		}
		w.Flush()
		if got.String() != want.String() {
			t.Errorf("record %d:\ngot  %s\nwant %s", i, got.String(), want.String())
		}
	}
}

// Once retention has removed the oldest records, points before the oldest
// snapshot cannot be rebuilt; later ones still can, and records reads what
// is left.
func TestRetention(t *testing.T) {
	dir := t.TempDir()
	l, err := log.Open(dir, projections.NewModel(), log.Options{Sync: log.SyncNever, SegmentSize: 300, RetainBytes: 1})
	if err != nil {
		t.Fatal(err)
	}
	for i := range testLog {
		rec := testLog[i]
		rec.ID, rec.Time = testID(i+1), at(i+1).UnixNano()
		if _, err := l.Append(&rec); err != nil {
			t.Fatal(err)
		}
		if i+1 == 9 || i+1 == 14 {
			if err := l.Snapshot(); err != nil {
				t.Fatal(err)
			}
		}
	}
	first := l.FirstIndex()
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if first == 1 || first > 10 {
		t.Fatalf("retention kept from index %d; the test needs 1 < first <= 10", first)
	}
	var got []uint64
	if err := Records(dir, history.Filter{}, func(rec *log.Record) error { got = append(got, rec.Index); return nil }); err != nil || got[0] != first {
		t.Errorf("records from %v, %v; want from %d", got, err, first)
	}
	if _, err := ViewAt(dir, Point{Index: 1}); err == nil || !strings.Contains(err.Error(), "were removed by retention") {
		t.Errorf("state at the first record, removed with no snapshot at it: %v", err)
	}
	st, err := ViewAt(dir, Point{Index: 12})
	if err != nil {
		t.Fatal(err)
	}
	if f, _ := st.Registry.Function("todos::create"); st.Index != 12 || f.Worker != "" {
		t.Errorf("state at 12: index %d, todos::create owned by %q", st.Index, f.Worker)
	}
}
