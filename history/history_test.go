package history

import (
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/iii-go/iii/log"
)

// discard is a log.Projection that keeps nothing.
type discard struct{}

func (discard) Apply(*log.Record) any     { return nil }
func (discard) Snapshot(io.Writer) error  { return nil }
func (discard) Restore(r io.Reader) error { return nil }

// memLog is an in-memory log holding sets of items a0..a4 on stream s and
// one registry record.
func memLog(t *testing.T) *log.Log {
	t.Helper()
	l, err := log.Open("", discard{}, log.Options{InMemory: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	recs := []*log.Record{{Kind: log.KindWorkerConnected, Worker: "w1"}}
	for _, item := range []string{"a0", "a1", "a2", "a3", "a4"} {
		recs = append(recs, &log.Record{Kind: log.KindStreamSet, Stream: "s", Group: "g", Item: item, Value: []byte(`1`)})
	}
	recs = append(recs, &log.Record{Kind: log.KindJobEnqueued, Queue: "q", Job: "j1", Function: "f"},
		&log.Record{Kind: log.KindJobEnqueued, Queue: "q", Job: "j2", Function: "f"},
		&log.Record{Kind: log.KindJobDone, Queue: "q", Job: "j1", Attempt: 1})
	if _, err := l.AppendBatch(recs); err != nil {
		t.Fatal(err)
	}
	return l
}

func TestQueryLiveLog(t *testing.T) {
	src := LiveLog(memLog(t))
	tests := []struct {
		name    string
		f       Filter
		limit   int
		want    string // items of the rows, or the error's start
		wantErr error
	}{
		{"every stream record", Filter{Stream: "s"}, 0, "a0 a1 a2 a3 a4", nil},
		{"kind", Filter{Kinds: []log.Kind{log.KindWorkerConnected}}, 0, "", nil},
		{"every stream record, not the jobs", Filter{Kinds: []log.Kind{log.KindStreamSet}}, 0, "a0 a1 a2 a3 a4", nil},
		{"index bounds", Filter{FromIndex: 3, ToIndex: 4}, 0, "a1 a2", nil},
		{"limit", Filter{Stream: "s"}, 2, "a0 a1", nil},
		{"filter limit below the caller's", Filter{Stream: "s", Limit: 1}, 2, "a0", nil},
		{"one job's life", Filter{Job: "j1"}, 0, "j1:queue.enqueued j1:queue.done", nil},
		{"a queue family", Filter{Queue: "q", Kinds: []log.Kind{log.KindJobEnqueued}}, 0, "j1:queue.enqueued j2:queue.enqueued", nil},
		{"from past the end", Filter{FromIndex: 10}, 0, "from_index 10 is past the end of the log (last index 9)", ErrPastEnd},
		{"to past the end", Filter{ToIndex: 12}, 0, "to_index 12 is past the end of the log (last index 9)", ErrPastEnd},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rows, err := Query(src, tt.f, tt.limit)
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) || err.Error() != tt.want {
					t.Fatalf("error %v, want %q", err, tt.want)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var items []string
			for _, r := range rows {
				if r.Job != "" {
					items = append(items, r.Job+":"+r.Kind)
				} else {
					items = append(items, r.Item)
				}
			}
			if got := strings.Join(items, " "); got != tt.want {
				t.Fatalf("items %q, want %q", got, tt.want)
			}
		})
	}
}

func TestSelectSeesEveryIndexRead(t *testing.T) {
	var seen []uint64
	err := Select(LiveLog(memLog(t)), Filter{Item: "a2"}, func(i uint64) { seen = append(seen, i) }, func(*log.Record) error { return nil })
	if err != nil || len(seen) != 9 {
		t.Fatalf("seen %v, %v; want the 9 indexes read", seen, err)
	}
}
