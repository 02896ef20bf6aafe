package replay

import (
	"bytes"
	"fmt"
	"testing"
	"time"

	"github.com/iii-go/iii/log"
	"github.com/iii-go/iii/projections"
	"github.com/oklog/ulid/v2"
)

// t0 is the time of record 0; record i is written at t0 + i seconds.
var t0 = time.Date(2026, 1, 2, 10, 0, 0, 0, time.UTC)

func at(i int) time.Time { return t0.Add(time.Duration(i) * time.Second) }

// testLog is the test log, one record per line; record i+1 is testLog[i].
var testLog = []log.Record{
	{Kind: log.KindEngineStarted, Value: []byte(`{"version":"0.1.0"}`)},
	{Kind: log.KindWorkerConnected, Worker: "w1", Value: []byte(`{"listener":"0.0.0.0:49134","ip_address":"127.0.0.1","rbac":false}`)},
	{Kind: log.KindFunctionRegistered, Worker: "w1", Function: "todos::create", Value: []byte(`{"description":"create a todo"}`)},
	{Kind: log.KindFunctionRegistered, Worker: "w1", Function: "todos::list"},
	{Kind: log.KindTriggerRegistered, Worker: "w1", Trigger: "t1", TriggerType: "stream", Function: "todos::list",
		Value: []byte(`{"stream_name":"todo","group_id":"inbox"}`), Meta: []byte(`{"owner":"ui"}`)},
	{Kind: log.KindStreamSet, Stream: "todo", Group: "inbox", Item: "a", Value: []byte(`{"title":"buy milk","done":false}`)},
	{Kind: log.KindStreamSet, Stream: "todo", Group: "inbox", Item: "b", Value: []byte(`{"title":"walk dog","done":false}`)},
	{Kind: log.KindStreamUpdate, Stream: "todo", Group: "inbox", Item: "a", Value: []byte(`[{"type":"set","path":"done","value":true}]`)},
	{Kind: log.KindStreamSet, Stream: "notes", Group: "personal", Item: "n1", Value: []byte(`{"text":"hello"}`)},
	{Kind: log.KindStateSet, Scope: "settings", Key: "theme", Value: []byte(`"dark"`)},
	{Kind: log.KindStreamDelete, Stream: "todo", Group: "inbox", Item: "b"},
	{Kind: log.KindWorkerDisconnected, Worker: "w1"},
	{Kind: log.KindEngineStarted, Value: []byte(`{"version":"0.1.0"}`)},
	{Kind: log.KindWorkerConnected, Worker: "w2", Value: []byte(`{"listener":"0.0.0.0:49134","ip_address":"10.0.0.2"}`)},
	{Kind: log.KindFunctionRegistered, Worker: "w2", Function: "todos::create", Value: []byte(`{"description":"create a todo, v2"}`)},
	{Kind: log.KindStreamSet, Stream: "todo", Group: "inbox", Item: "c", Value: []byte(`{"title":"read","done":false}`)},
	{Kind: log.KindStreamSet, Stream: "notes", Group: "personal", Item: "n1", Value: []byte(`{"text":"hello world","tags":["a"]}`)},
}

// testID is record i's id: its time and its number, so goldens are stable.
func testID(i int) ulid.ULID {
	var id ulid.ULID
	id[15] = byte(i)
	if err := id.SetTime(ulid.Timestamp(at(i))); err != nil {
		panic(err)
	}
	return id
}

// writeLog writes recs (stamped with testID and at) to a new log in a temp
// directory, taking a snapshot after the records listed in snapAfter, and
// returns the directory.
func writeLog(t testing.TB, recs []log.Record, snapAfter ...int) string {
	t.Helper()
	dir := t.TempDir()
	l, err := log.Open(dir, projections.NewModel(), log.Options{Sync: log.SyncNever})
	if err != nil {
		t.Fatal(err)
	}
	snaps := map[int]bool{}
	for _, n := range snapAfter {
		snaps[n] = true
	}
	for i := range recs {
		rec := recs[i]
		rec.ID, rec.Time = testID(i+1), at(i+1).UnixNano()
		if _, err := l.Append(&rec); err != nil {
			t.Fatal(err)
		}
		if snaps[i+1] {
			if err := l.Snapshot(); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	return dir
}

// render runs fn against a writer of the given format and returns what it
// printed.
func render(t *testing.T, format string, fn func(Writer) error) string {
	t.Helper()
	var buf bytes.Buffer
	var w Writer
	switch format {
	case "table":
		w = NewTableWriter(&buf, false)
	case "json":
		w = NewJSONWriter(&buf)
	default:
		panic(fmt.Sprint("format ", format))
	}
	if err := fn(w); err != nil {
		t.Fatal(err)
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	return buf.String()
}
