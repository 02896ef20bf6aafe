package cluster

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/iii-go/iii/internal/natstest"
	"github.com/iii-go/iii/internal/wait"
	"github.com/iii-go/iii/log"
)

// sumFold is a projection that keeps, per key, how many records it saw and
// the indexes in the order applied; Apply returns the count before.
type sumFold struct {
	mu      sync.Mutex
	counts  map[string]uint64
	indexes []uint64
}

func newSumFold() *sumFold { return &sumFold{counts: map[string]uint64{}} }

func (f *sumFold) Apply(rec *log.Record) any {
	f.mu.Lock()
	defer f.mu.Unlock()
	old := f.counts[rec.Item]
	f.counts[rec.Item] = old + 1
	f.indexes = append(f.indexes, rec.Index)
	return old
}

func (f *sumFold) Snapshot(w io.Writer) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	for k, v := range f.counts {
		fmt.Fprintf(w, "%s=%d\n", k, v)
	}
	return nil
}

func (f *sumFold) Restore(r io.Reader) error {
	b, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	for _, line := range strings.Fields(string(b)) {
		var n uint64
		k, v, _ := strings.Cut(line, "=")
		fmt.Sscan(v, &n)
		f.counts[k] = n
	}
	return nil
}

func (f *sumFold) count(k string) uint64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.counts[k]
}

// openNode opens and starts a node; snapshots are taken only when a test
// asks (TestAutomaticSnapshots covers the others).
func openNode(t *testing.T, url, node, dir string, st log.Projection) *Log {
	t.Helper()
	return openNodeWith(t, Options{URL: url, Node: node, Dir: dir, SnapshotEvery: 1 << 40}, st)
}

// openNodeWith opens and starts a node with opts.
func openNodeWith(t *testing.T, opts Options, st log.Projection) *Log {
	t.Helper()
	l, err := Open(opts, st)
	if err != nil {
		t.Fatal(err)
	}
	l.Start()
	return l
}

func set(item string) *log.Record {
	return &log.Record{Kind: log.KindStreamSet, Stream: "s", Group: "g", Item: item}
}

func TestTwoNodesApplyOneOrder(t *testing.T) {
	ns := natstest.Start(t)
	fa, fb := newSumFold(), newSumFold()
	a := openNode(t, ns.ClientURL(), "a", t.TempDir(), fa)
	b := openNode(t, ns.ClientURL(), "b", t.TempDir(), fb)
	defer a.Close()
	defer b.Close()

	// Concurrent appends to one key from both nodes (a one by one, b in
	// batches): every answer is the count before it at its own index, so the
	// answers are 0..n-1 exactly once.
	const per, batch = 200, 10
	seen := make([]bool, 2*per)
	var mu sync.Mutex
	var wg sync.WaitGroup
	answer := func(res any, err error) {
		defer wg.Done()
		if err != nil {
			t.Error(err)
			return
		}
		mu.Lock()
		defer mu.Unlock()
		n := res.(uint64)
		if seen[n] {
			t.Errorf("answer %d given twice", n)
		}
		seen[n] = true
	}
	wg.Add(2 * per)
	for range per {
		if err := a.AppendAsync(set("k"), answer); err != nil {
			t.Fatal(err)
		}
	}
	for range per / batch {
		recs, thens := make([]*log.Record, batch), make([]func(any, error), batch)
		for i := range recs {
			recs[i], thens[i] = set("k"), answer
		}
		if err := b.AppendAsyncBatch(recs, thens); err != nil {
			t.Fatal(err)
		}
	}
	wg.Wait()
	if _, err := a.Append(set("fence")); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "node b applying the fence", func() bool { return fb.count("fence") == 1 })
	if fa.count("k") != 2*per || fb.count("k") != 2*per {
		t.Fatalf("counts a=%d b=%d, want %d", fa.count("k"), fb.count("k"), 2*per)
	}
	fa.mu.Lock()
	fb.mu.Lock()
	if fmt.Sprint(fa.indexes) != fmt.Sprint(fb.indexes) {
		t.Error("the nodes applied different index sequences")
	}
	for i, idx := range fa.indexes {
		if idx != uint64(i+1) {
			t.Fatalf("applied index %d at position %d", idx, i)
		}
	}
	fa.mu.Unlock()
	fb.mu.Unlock()

	// The records say which node wrote them.
	nodes := map[string]int{}
	if err := a.Read(1, func(r *log.Record) error { nodes[r.Node]++; return nil }); err != nil {
		t.Fatal(err)
	}
	if nodes["a"] != per+1 || nodes["b"] != per {
		t.Errorf("records by node: %v", nodes)
	}
}

func TestRestartFromSnapshotAndEmptyDir(t *testing.T) {
	ns := natstest.Start(t)
	dir := t.TempDir()
	fa := newSumFold()
	a := openNode(t, ns.ClientURL(), "a", dir, fa)
	for i := range 120 {
		if _, err := a.Append(set(fmt.Sprint(i % 3))); err != nil {
			t.Fatal(err)
		}
	}
	if err := a.Snapshot(); err != nil {
		t.Fatal(err)
	}
	for range 5 {
		if _, err := a.Append(set("0")); err != nil {
			t.Fatal(err)
		}
	}
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}

	// Same directory: from the local snapshot plus the 5 after it.
	f2 := newSumFold()
	a2 := openNode(t, ns.ClientURL(), "a", dir, f2)
	if got := f2.count("0"); got != 45 {
		t.Errorf("restarted: count 0 = %d, want 45", got)
	}
	if got := len(f2.indexes); got != 5 {
		t.Errorf("restarted: replayed %d records after the snapshot, want 5", got)
	}
	a2.Close()

	// Empty directory: from the published snapshot.
	f3 := newSumFold()
	c := openNode(t, ns.ClientURL(), "c", t.TempDir(), f3)
	defer c.Close()
	if got := f3.count("0"); got != 45 {
		t.Errorf("new node: count 0 = %d, want 45", got)
	}
	if got := len(f3.indexes); got != 5 {
		t.Errorf("new node: replayed %d records, want 5 (after the published snapshot)", got)
	}
}

func TestDirectoryLockedAndNATSUnreachable(t *testing.T) {
	ns := natstest.Start(t)
	dir := t.TempDir()
	a := openNode(t, ns.ClientURL(), "a", dir, newSumFold())
	defer a.Close()
	if _, err := Open(Options{URL: ns.ClientURL(), Node: "a2", Dir: dir}, newSumFold()); err == nil || !strings.Contains(err.Error(), "in use") {
		t.Errorf("second open of one directory: %v", err)
	}
	_, err := Open(Options{URL: "nats://127.0.0.1:1", Node: "x", Dir: t.TempDir()}, newSumFold())
	if err == nil || !strings.Contains(err.Error(), "cannot connect to NATS at nats://127.0.0.1:1") {
		t.Errorf("unreachable NATS: %v", err)
	}
	plain := natstest.StartWith(t, &server.Options{}) // no JetStream
	_, err = Open(Options{URL: plain.ClientURL(), Node: "x", Dir: t.TempDir()}, newSumFold())
	if err == nil || !strings.Contains(err.Error(), "JetStream is not enabled") {
		t.Errorf("NATS without JetStream: %v", err)
	}
}

// A record that is published twice with the same id (a retried publish)
// is stored and applied once.
func TestRetriedPublishIsAppliedOnce(t *testing.T) {
	ns := natstest.Start(t)
	f := newSumFold()
	a := openNode(t, ns.ClientURL(), "a", t.TempDir(), f)
	defer a.Close()
	rec := set("once")
	if _, err := a.Append(rec); err != nil {
		t.Fatal(err)
	}
	frame, _ := log.EncodeRecord(nil, rec)
	js, _ := jetstream.New(a.Conn())
	ack, err := js.Publish(context.Background(), Subject("iii"), frame, jetstream.WithMsgID(rec.ID.String()))
	if err != nil {
		t.Fatal(err)
	}
	if !ack.Duplicate {
		t.Error("republish not reported as a duplicate")
	}
	if _, err := a.Append(set("fence")); err != nil {
		t.Fatal(err)
	}
	if got := f.count("once"); got != 1 {
		t.Errorf("applied %d times", got)
	}
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	wait.For(t, 10*time.Second, what, cond)
}

func TestReaderReadsTheClusterLog(t *testing.T) {
	ns := natstest.Start(t)
	a := openNode(t, ns.ClientURL(), "a", t.TempDir(), newSumFold())
	for i := range 10 {
		if _, err := a.Append(set(fmt.Sprint(i))); err != nil {
			t.Fatal(err)
		}
	}
	a.Close()
	r, err := OpenReader(ns.ClientURL(), "", "iii")
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	var items []string
	if err := r.Read(4, func(rec *log.Record) error {
		items = append(items, fmt.Sprintf("%d:%s:%s", rec.Index, rec.Item, rec.Node))
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(items, " "); got != "4:3:a 5:4:a 6:5:a 7:6:a 8:7:a 9:8:a 10:9:a" {
		t.Errorf("read from 4: %s", got)
	}
	if _, err := OpenReader(ns.ClientURL(), "", "nope"); err == nil || !strings.Contains(err.Error(), `no stream "nope"`) {
		t.Errorf("missing stream: %v", err)
	}
}

func TestRecordOverMaxPayloadFailsAtOnce(t *testing.T) {
	ns := natstest.Start(t)
	a := openNode(t, ns.ClientURL(), "a", t.TempDir(), newSumFold())
	defer a.Close()
	rec := set("big")
	rec.Value = bytes.Repeat([]byte("x"), int(a.Conn().MaxPayload())+1)
	start := time.Now()
	_, err := a.Append(rec)
	if err == nil || !strings.Contains(err.Error(), "max_payload") {
		t.Fatalf("oversized record: %v", err)
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("refused after %s, want at once", d)
	}
	if _, err := a.Append(set("small")); err != nil {
		t.Errorf("the next append: %v", err)
	}
}

// A consumer that stops delivering while the stream moves on (in a
// JetStream cluster: its server died and its name stayed assigned there)
// is replaced by the watchdog.
func TestStalledConsumerIsReplaced(t *testing.T) {
	ns := natstest.Start(t)
	fa := newSumFold()
	a := openNode(t, ns.ClientURL(), "a", t.TempDir(), fa)
	defer a.Close()
	b := openNode(t, ns.ClientURL(), "b", t.TempDir(), newSumFold())
	defer b.Close()
	a.consMu.Lock()
	a.cc.Stop()
	a.consMu.Unlock()
	if _, err := b.Append(set("after")); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the replaced consumer applying the write", func() bool { return fa.count("after") == 1 })
}

func TestForeignStreamIsRefused(t *testing.T) {
	ns := natstest.Start(t)
	nc, err := Connect(ns.ClientURL(), "", "test", slog.Default())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	if _, err := js.CreateStream(context.Background(), jetstream.StreamConfig{Name: "orders", Subjects: []string{"orders.>"}}); err != nil {
		t.Fatal(err)
	}
	_, err = Open(Options{URL: ns.ClientURL(), Node: "a", Stream: "orders", Dir: t.TempDir()}, newSumFold())
	if err == nil || !strings.Contains(err.Error(), "is not an iii log") {
		t.Errorf("a stream that is not an iii log: %v", err)
	}
}

func TestAutomaticSnapshots(t *testing.T) {
	ns := natstest.Start(t)
	dir := t.TempDir()
	a := openNodeWith(t, Options{URL: ns.ClientURL(), Node: "a", Dir: dir, SnapshotEvery: 10}, newSumFold())
	defer a.Close()
	for i := range 25 {
		if _, err := a.Append(set(fmt.Sprint(i))); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, "a snapshot at index 10 or later", func() bool {
		index, _, err := log.NewestSnapshot(dir)
		return err == nil && index >= 10
	})
}

// A snapshot beyond the stream's end (the stream was deleted and created
// again under the node) is refused at Open: applying the new stream on top
// of it would drop its records as already applied, and appends would hang.
func TestSnapshotNewerThanTheStreamIsRefused(t *testing.T) {
	ns := natstest.Start(t)
	dir := t.TempDir()
	a := openNode(t, ns.ClientURL(), "a", dir, newSumFold())
	for range 3 {
		if _, err := a.Append(set("x")); err != nil {
			t.Fatal(err)
		}
	}
	if err := a.Snapshot(); err != nil {
		t.Fatal(err)
	}
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	nc, err := nats.Connect(ns.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	if err := js.DeleteStream(context.Background(), "iii"); err != nil {
		t.Fatal(err)
	}
	_, err = Open(Options{URL: ns.ClientURL(), Node: "a", Dir: dir}, newSumFold())
	if err == nil || !strings.Contains(err.Error(), "snapshot is at index 3 but stream iii ends at 0") {
		t.Fatalf("open over a recreated stream: %v", err)
	}
}
