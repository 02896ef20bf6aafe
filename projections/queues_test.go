package projections

import (
	"bytes"
	"testing"

	"github.com/iii-go/iii/log"
	"github.com/vmihailenco/msgpack/v5"
)

func TestQueuesLifeOfAJob(t *testing.T) {
	var q Queues
	steps := []struct {
		rec  log.Record
		want string // "pending n", "dead n" or "gone"
	}{
		{log.Record{Kind: log.KindJobEnqueued, Queue: "q", Job: "a", Function: "f", Group: "g1", Value: []byte(`{"x":1}`), Time: 5}, "pending 0"},
		{log.Record{Kind: log.KindJobEnqueued, Queue: "q", Job: "a", Function: "other"}, "pending 0"}, // one id, one job
		{log.Record{Kind: log.KindJobFailed, Queue: "q", Job: "a", Attempt: 1, Value: []byte(`{"error":{"code":"x"},"retry_at":99}`)}, "pending 1"},
		{log.Record{Kind: log.KindJobDead, Queue: "q", Job: "a", Attempt: 3, Value: []byte(`{"error":{"code":"y"}}`), Time: 7}, "dead 3"},
		{log.Record{Kind: log.KindJobRedriven, Queue: "q", Job: "a"}, "pending 0"},
		{log.Record{Kind: log.KindJobDone, Queue: "q", Job: "a", Attempt: 1}, "gone"},
		{log.Record{Kind: log.KindJobFailed, Queue: "q", Job: "a", Attempt: 2}, "gone"}, // late records for a done job change nothing
	}
	for i, st := range steps {
		q.Apply(&st.rec)
		j, ok := q.Job("q", "a")
		got := "gone"
		switch {
		case ok && j.Dead:
			got = "dead " + itoa(j.Attempts)
		case ok:
			got = "pending " + itoa(j.Attempts)
		}
		if got != st.want {
			t.Fatalf("step %d (%s): %s, want %s", i, st.rec.Kind, got, st.want)
		}
		if ok && (j.Function != "f" || string(j.Payload) != `{"x":1}` || j.EnqueuedAt != 5 || j.Group != "g1") {
			t.Fatalf("step %d: job %+v", i, j)
		}
		if i == 2 && (j.RetryAt != 99 || string(j.LastError) != `{"code":"x"}`) {
			t.Fatalf("failed: %+v", j)
		}
	}
	if names := q.Names(); len(names) != 0 {
		t.Fatalf("an empty queue is kept: %v", names)
	}
}

func itoa(n uint32) string { return string(rune('0' + n)) }

func TestQueuesSnapshotKeepsOrderAndState(t *testing.T) {
	var q Queues
	for _, id := range []string{"c", "a", "b"} {
		q.Apply(&log.Record{Kind: log.KindJobEnqueued, Queue: "q", Job: id, Function: "f"})
	}
	q.Apply(&log.Record{Kind: log.KindJobDead, Queue: "q", Job: "a", Attempt: 2})
	var buf bytes.Buffer
	if err := q.Snapshot(&buf); err != nil {
		t.Fatal(err)
	}
	var r Queues
	if err := r.Restore(&buf); err != nil {
		t.Fatal(err)
	}
	var order string
	r.Jobs("q", func(j *Job) bool { order += j.ID; return true })
	if pending, dead := r.Counts("q"); order != "cab" || pending != 2 || dead != 1 {
		t.Fatalf("restored order %q, %d pending, %d dead", order, pending, dead)
	}
}

// A model snapshot written before queues existed (layout 1) still restores.
func TestModelRestoresLayoutOne(t *testing.T) {
	m := NewModel()
	m.Fold(&log.Record{Kind: log.KindStreamSet, Stream: "s", Group: "g", Item: "i", Value: []byte(`1`)})
	var buf bytes.Buffer
	enc := msgpack.NewEncoder(&buf)
	enc.EncodeUint(1)
	for _, p := range m.parts()[:4] {
		var part bytes.Buffer
		if err := p.Snapshot(&part); err != nil {
			t.Fatal(err)
		}
		enc.EncodeBytes(part.Bytes())
	}
	r := NewModel()
	if err := r.Restore(&buf); err != nil {
		t.Fatal(err)
	}
	if v, ok := r.Streams.Get("s", "g", "i"); !ok || string(v) != "1" || len(r.Queues.Names()) != 0 {
		t.Fatalf("layout 1: item %s %v, queues %v", v, ok, r.Queues.Names())
	}
}
