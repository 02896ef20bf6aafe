package projections

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"math/rand/v2"
	"strconv"
	"strings"
	"testing"

	"github.com/iii-go/iii/log"
)

// all is the set of projections the engine folds every record into.
type all struct {
	streams Streams
	states  States
	reg     Registry
	subs    Subscriptions
}

func (a *all) apply(r *log.Record) {
	a.streams.Apply(r)
	a.states.Apply(r)
	a.reg.Apply(r)
	a.subs.Apply(r)
}

func (a *all) parts() []snapshotter { return []snapshotter{&a.streams, &a.states, &a.reg, &a.subs} }

func (a *all) snapshot(t *testing.T) []byte {
	t.Helper()
	var buf bytes.Buffer
	for _, p := range a.parts() {
		if err := p.Snapshot(&buf); err != nil {
			t.Fatal(err)
		}
	}
	return buf.Bytes()
}

// restore reads all four snapshots back to back from one reader, as the
// engine will from its snapshot file.
func (a *all) restore(t *testing.T, b []byte) {
	t.Helper()
	r := bufio.NewReader(bytes.NewReader(b))
	for _, p := range a.parts() {
		if err := p.Restore(r); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := r.ReadByte(); err != io.EOF {
		t.Fatalf("restore left bytes unread (err %v)", err)
	}
}

var (
	names   = []string{"", "a", "b", "todo", "a:b"}
	workers = []string{"w1", "w2", "w3", log.EngineWorker}
)

// genRecords makes a reproducible mix of every record kind over a small name
// space, so overwrites, deletes, takeovers and re-registrations all happen.
func genRecords(n int, seed uint64) []*log.Record {
	rng := rand.New(rand.NewPCG(seed, seed))
	pick := func(s []string) string { return s[rng.IntN(len(s))] }
	values := []string{`{"id":"a1","title":"milk","completed":false}`, `1`, `"s"`, `null`, `[1,2]`, `{ "x" : 1.5 }`, `9223372036854775807`}
	opsList := []string{
		`[]`, `[{"type":"set","path":"completed","value":true}]`, `[{"type":"increment","path":"n","by":1}]`,
		`[{"type":"increment","path":"","by":9223372036854775807}]`, `[{"type":"append","path":["log","x"],"value":"e"}]`,
		`[{"type":"merge","value":{"m":{"k":1}}},{"type":"remove","path":"id"}]`, `[{"type":"decrement","path":"x","by":2}]`,
	}
	configs := []string{`{"stream_name":"todo"}`, `{"stream_name":"a","group_id":"b"}`, `{"stream_name":"todo","item_id":"a"}`, `{"scope":"a"}`, `{}`, `{"key":"b","condition_function_id":"c"}`}
	types := []string{"stream", "state", "webhook", "cron"}
	recs := make([]*log.Record, 0, n)
	for i := range n {
		r := &log.Record{Time: int64(i) * 1000}
		switch k := rng.IntN(20); {
		case k < 4:
			r.Kind, r.Stream, r.Group, r.Item, r.Value = log.KindStreamSet, pick(names), pick(names), pick(names), []byte(pick(values))
		case k < 6:
			r.Kind, r.Stream, r.Group, r.Item, r.Value = log.KindStreamUpdate, pick(names), pick(names), pick(names), []byte(pick(opsList))
		case k < 8:
			r.Kind, r.Stream, r.Group, r.Item = log.KindStreamDelete, pick(names), pick(names), pick(names)
		case k < 9:
			r.Kind, r.Stream, r.Group, r.Value = log.KindStreamSend, pick(names), pick(names), []byte(`{"type":"e","data":1,"id":null}`)
		case k < 10:
			r.Kind, r.Scope, r.Key, r.Value = log.KindStateSet, pick(names), pick(names), []byte(pick(values))
		case k < 11:
			r.Kind, r.Scope, r.Key, r.Value = log.KindStateUpdate, pick(names), pick(names), []byte(pick(opsList))
		case k < 12:
			r.Kind, r.Scope, r.Key = log.KindStateDelete, pick(names), pick(names)
		case k < 13:
			r.Kind, r.Worker, r.Value = log.KindWorkerConnected, pick(workers), []byte(`{"listener":"l","ip_address":"127.0.0.1"}`)
		case k < 14:
			r.Kind, r.Worker, r.Value = log.KindWorkerUpdated, pick(workers), []byte(fmt.Sprintf(`{"name":"n%d","pid":%d}`, i, i))
		case k < 15:
			if rng.IntN(8) == 0 {
				r.Kind, r.Worker = log.KindWorkerDisconnected, pick(workers)
			} else {
				r.Kind, r.Worker, r.TriggerType, r.Function = log.KindTriggerRegistered, pick(workers), pick(types[:2]), pick(names)
				r.Trigger, r.Value = fmt.Sprintf("t%d", rng.IntN(40)), []byte(pick(configs))
			}
		case k < 16:
			r.Kind, r.Worker, r.Function, r.Value = log.KindFunctionRegistered, pick(workers), pick(names), []byte(`{"description":"d","metadata":{"public":true}}`)
		case k < 17:
			r.Kind, r.Worker, r.Function = log.KindFunctionUnregistered, pick(workers), pick(names)
		case k < 18:
			r.Kind, r.Worker, r.Trigger, r.TriggerType, r.Function = log.KindTriggerRegistered, pick(workers), pick(names), pick(types), pick(names)
			r.Value = []byte(pick(configs))
			if rng.IntN(2) == 0 {
				r.Meta = []byte(`{"m":1}`)
			}
		case k < 19:
			if rng.IntN(2) == 0 {
				r.Kind, r.Worker, r.Trigger = log.KindTriggerUnregistered, pick(workers), pick(names)
			} else {
				r.Kind, r.Worker, r.TriggerType, r.Value = log.KindTriggerTypeRegistered, pick(workers), pick(types), []byte(`{"description":"t"}`)
			}
		default:
			if n := rng.IntN(100); n < 4 { // a single engine's start, or a cluster node's
				r.Kind = log.KindEngineStarted
				if n > 0 {
					r.Node = "node" + strconv.Itoa(n)
				}
			} else {
				r.Kind, r.Worker, r.TriggerType = log.KindTriggerTypeUnregistered, pick(workers), pick(types)
			}
		}
		recs = append(recs, r)
	}
	return recs
}

// dump renders every read of every projection, to compare projections
// through their public API.
func (a *all) dump() string {
	var b strings.Builder
	for _, sg := range a.streams.ListAll() {
		fmt.Fprintf(&b, "stream %q groups %q\n", sg.ID, a.streams.ListGroups(sg.ID))
		for _, g := range sg.Groups {
			fmt.Fprintf(&b, "  %q: %s\n", g, strs(a.streams.List(sg.ID, g)))
		}
	}
	sc, gc, ic := a.streams.Counts()
	fmt.Fprintln(&b, sc, gc, ic)
	for _, sc := range a.states.ListScopes() {
		fmt.Fprintf(&b, "scope %q: %s\n", sc, strs(a.states.List(sc)))
	}
	scopes, keys := a.states.Counts()
	fmt.Fprintln(&b, scopes, keys)
	fmt.Fprintf(&b, "workers %+v\nfunctions %+v\ntriggers %+v\ntypes %+v\n", a.reg.Workers(), a.reg.Functions(), a.reg.Triggers(), a.reg.TriggerTypes())
	for _, s := range names {
		for _, g := range names {
			for _, i := range names {
				fmt.Fprintf(&b, "match %q %q %q: %+v %+v\n", s, g, i, a.subs.MatchStream(s, g, i, true), a.subs.MatchState(s, g))
			}
			fmt.Fprintf(&b, "match %q %q -: %+v\n", s, g, a.subs.MatchStream(s, g, "", false))
		}
	}
	ns, nst := a.subs.Counts()
	fmt.Fprintln(&b, ns, nst)
	return b.String()
}

func TestDeterminism(t *testing.T) {
	recs := genRecords(5000, 7)
	var x, y all
	for _, r := range recs {
		x.apply(r)
	}
	for _, r := range genRecords(5000, 7) { // fresh records: no shared buffers
		y.apply(r)
	}
	if !bytes.Equal(x.snapshot(t), y.snapshot(t)) {
		t.Fatal("same records, different snapshots")
	}
	if x.dump() != y.dump() {
		t.Fatal("same records, different reads")
	}
	if !bytes.Equal(x.snapshot(t), x.snapshot(t)) {
		t.Fatal("snapshot of one projection differs between calls")
	}
}

func TestSnapshotRoundTrip(t *testing.T) {
	for _, seed := range []uint64{1, 2, 3} {
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			recs := genRecords(4000, seed)
			var live all
			for _, r := range recs[:2000] {
				live.apply(r)
			}
			_, _, items := live.streams.Counts()
			_, keys := live.states.Counts()
			streamSubs, stateSubs := live.subs.Counts()
			if items == 0 || keys == 0 || streamSubs == 0 || stateSubs == 0 || len(live.reg.Functions()) == 0 || len(live.reg.Workers()) == 0 {
				t.Fatalf("generator left too little state to test: %d %d %d %d", items, keys, streamSubs, stateSubs)
			}
			t.Logf("items %d keys %d stream subs %d state subs %d functions %d", items, keys, streamSubs, stateSubs, len(live.reg.Functions()))
			snap := live.snapshot(t)

			var restored all
			restored.restore(t, snap)
			if !bytes.Equal(restored.snapshot(t), snap) {
				t.Fatal("snapshot after restore differs")
			}
			if restored.dump() != live.dump() {
				t.Fatalf("reads differ after restore:\n%s\nvs\n%s", restored.dump(), live.dump())
			}

			// Restoring over a dirty projection replaces it entirely.
			var dirty all
			for _, r := range genRecords(500, seed+100) {
				dirty.apply(r)
			}
			dirty.restore(t, snap)
			if !bytes.Equal(dirty.snapshot(t), snap) {
				t.Fatal("restore over existing state did not replace it")
			}

			// Replaying the tail on the restored copy gives the live result:
			// orders and registration positions survived the snapshot.
			for _, r := range recs[2000:] {
				live.apply(r)
				restored.apply(r)
			}
			if !bytes.Equal(restored.snapshot(t), live.snapshot(t)) || restored.dump() != live.dump() {
				t.Fatal("restore + tail differs from live")
			}
		})
	}
}

func TestSnapshotEmptyAndErrors(t *testing.T) {
	var empty all
	snap := empty.snapshot(t)
	var r all
	r.restore(t, snap)
	if r.dump() != empty.dump() {
		t.Fatal("empty round trip differs")
	}

	var s Streams
	s.Apply(streamSet("s", "g", "i", "1"))
	var buf bytes.Buffer
	if err := s.Snapshot(&buf); err != nil {
		t.Fatal(err)
	}
	var st States
	if err := st.Restore(bytes.NewReader(buf.Bytes())); err == nil || !strings.Contains(err.Error(), `"streams"`) {
		t.Errorf("restoring a streams snapshot as states: %v", err)
	}
	var s2 Streams
	s2.Apply(streamSet("keep", "g", "i", "1"))
	if err := s2.Restore(bytes.NewReader(buf.Bytes()[:buf.Len()-1])); err == nil {
		t.Error("truncated snapshot restored")
	}
	if _, ok := s2.Get("keep", "g", "i"); !ok {
		t.Error("failed restore changed the projection")
	}
}
