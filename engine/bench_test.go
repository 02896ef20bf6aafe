package engine

import (
	"bytes"
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/iii-go/iii/engine/config"
	"github.com/iii-go/iii/wire"
)

// setLoad is a raw client keeping stream::set calls in flight: each result
// that comes back sends the next call, so the allocations and time per
// operation are those of the engine's whole set path (decode, log append,
// fold, reply) plus a client that allocates nothing per call.
type setLoad struct {
	frame   []byte
	sent    atomic.Int64
	results atomic.Int64
	failed  atomic.Int64
	want    int64
	done    chan struct{}
}

func (l *setLoad) Open(*wire.Conn) {}

func (l *setLoad) Message(c *wire.Conn, b []byte) {
	if !bytes.Contains(b, []byte(`"invocationresult"`)) {
		return
	}
	if !bytes.Contains(b, []byte(`"result"`)) || bytes.Contains(b, []byte(`"error":{`)) {
		l.failed.Add(1)
	}
	if l.results.Add(1) == l.want {
		close(l.done)
	}
	l.send(c)
}

// send sends one more call while fewer than want have gone out, so that
// none is still running when the measurement ends.
func (l *setLoad) send(c *wire.Conn) error {
	if l.sent.Add(1) > l.want {
		return nil
	}
	return c.Send(l.frame)
}

func (l *setLoad) Close(*wire.Conn, error) {}

// benchStreamSet measures durable stream::set with inFlight calls
// outstanding on one connection, against an engine whose log is on disk
// with the given sync policy.
func benchStreamSet(b *testing.B, sync string, inFlight int) {
	e := startEngine(b, nil, func(c *config.Config) {
		c.Stream.StoreMethod, c.Stream.FilePath = config.StoreFileBased, b.TempDir()
		c.Engine.Sync = sync
	})
	l := &setLoad{want: int64(b.N), done: make(chan struct{})}
	l.frame = []byte(`{"type":"invokefunction","invocation_id":"0c4f5a8e-1b2d-4e6f-8a9b-0c1d2e3f4a5b","function_id":"stream::set",` +
		`"data":{"stream_name":"todos","group_id":"inbox","item_id":"42","data":{"title":"buy milk","done":false,"tags":["home","errand"]}}}`)
	conn, err := wire.Dial(context.Background(), e.url(0), l, wire.Options{Logger: discardLogger})
	if err != nil {
		b.Fatal(err)
	}
	defer conn.Close(wire.CloseNormal, "")
	b.ReportAllocs()
	b.ResetTimer()
	for range inFlight {
		if err := l.send(conn); err != nil {
			b.Fatal(err)
		}
	}
	select {
	case <-l.done:
	case <-time.After(time.Minute):
		b.Fatalf("%d of %d results after a minute", l.results.Load(), b.N)
	}
	b.StopTimer()
	if n := l.failed.Load(); n > 0 {
		b.Fatalf("%d of %d calls failed", n, b.N)
	}
}

// BenchmarkStreamSetAlways is the durable set path: 64 calls in flight,
// every one acknowledged only after its record is fsynced.
func BenchmarkStreamSetAlways(b *testing.B) { benchStreamSet(b, "always", 64) }

// BenchmarkStreamSetNever is the same path without fsync: the engine's own
// cost per set.
func BenchmarkStreamSetNever(b *testing.B) { benchStreamSet(b, "never", 64) }
