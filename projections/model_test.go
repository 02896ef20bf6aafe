package projections

import (
	"bytes"
	"testing"

	"github.com/iii-go/iii/log"
)

// A record kind no projection folds would be dropped without a word.
func TestEveryKindIsFolded(t *testing.T) {
	for _, k := range log.Kinds() {
		if !Folds(k) {
			t.Errorf("record kind %s is folded by no projection: add it to folds in model.go", k)
		}
	}
}

func TestModelSnapshotRoundTrip(t *testing.T) {
	m := NewModel()
	for _, rec := range []*log.Record{
		{Kind: log.KindWorkerConnected, Worker: "w"},
		{Kind: log.KindFunctionRegistered, Worker: "w", Function: "f"},
		{Kind: log.KindTriggerRegistered, Worker: "w", Trigger: "t", TriggerType: "stream", Function: "f", Value: []byte(`{"stream_name":"s"}`)},
		{Kind: log.KindStreamSet, Stream: "s", Group: "b", Item: "2", Value: []byte(`2`)},
		{Kind: log.KindStreamSet, Stream: "s", Group: "a", Item: "z", Value: []byte(`1`)},
		{Kind: log.KindStreamSet, Stream: "s", Group: "a", Item: "y", Value: []byte(`{"v":3}`)},
		{Kind: log.KindStateSet, Scope: "sc", Key: "k", Value: []byte(`"v"`)},
	} {
		m.Fold(rec)
	}
	var a, b bytes.Buffer
	if err := m.Snapshot(&a); err != nil {
		t.Fatal(err)
	}
	r := NewModel()
	if err := r.Restore(bytes.NewReader(a.Bytes())); err != nil {
		t.Fatal(err)
	}
	if err := r.Snapshot(&b); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(a.Bytes(), b.Bytes()) {
		t.Fatal("restored model snapshots differently")
	}
	var got []string
	for _, it := range r.Items() {
		got = append(got, it.Group+"/"+it.Item+"="+string(it.Value))
	}
	// Groups sorted, items in insertion order.
	if want := "a/z=1 a/y={\"v\":3} b/2=2"; joinSp(got) != want {
		t.Fatalf("items %q, want %q", joinSp(got), want)
	}
	if e := r.Entries(); len(e) != 1 || e[0].Scope != "sc" || string(e[0].Value) != `"v"` {
		t.Fatalf("entries %+v", e)
	}
	if subs := r.Subs.MatchStream("s", "a", "z", true); len(subs) != 1 {
		t.Fatalf("subscriptions not restored: %v", subs)
	}
}

func joinSp(s []string) string {
	var b bytes.Buffer
	for i, x := range s {
		if i > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(x)
	}
	return b.String()
}
