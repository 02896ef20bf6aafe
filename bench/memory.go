package bench

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"net"
	"net/url"
	"runtime"
	"time"
)

// Memory per idle connection: the engine runs in this process, so the heap
// and stack it holds for n idle worker connections show in MemStats. The
// clients are bare sockets that did the upgrade by hand and have no reader
// goroutine, so they add only a few hundred bytes each.

// idleConn opens a WebSocket connection and returns once the server has
// sent its first frame after the upgrade (the engine's workerregistered:
// the session exists) or wait has passed; got says whether a frame came.
func idleConn(host, path string, wait time.Duration) (c net.Conn, got bool, err error) {
	c, err = net.DialTimeout("tcp", host, 10*time.Second)
	if err != nil {
		return nil, false, err
	}
	req := "GET " + path + " HTTP/1.1\r\nHost: " + host + "\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
		"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
	if _, err := c.Write([]byte(req)); err != nil {
		c.Close()
		return nil, false, err
	}
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	var buf [1024]byte
	n := 0
	end := -1
	for end < 0 {
		if n == len(buf) {
			c.Close()
			return nil, false, errors.New("upgrade response too long")
		}
		m, err := c.Read(buf[n:])
		if err != nil {
			c.Close()
			return nil, false, err
		}
		n += m
		end = bytes.Index(buf[:n], []byte("\r\n\r\n"))
	}
	if !bytes.HasPrefix(buf[:n], []byte("HTTP/1.1 101")) {
		c.Close()
		return nil, false, fmt.Errorf("upgrade refused: %q", bytes.SplitN(buf[:n], []byte("\r\n"), 2)[0])
	}
	got = n > end+4
	if !got && wait > 0 {
		c.SetReadDeadline(time.Now().Add(wait))
		m, _ := c.Read(buf[:])
		got = m > 0
	}
	c.SetReadDeadline(time.Time{})
	return c, got, nil
}

// inUse is the heap and stack the process holds after a full collection.
func inUse() uint64 {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapInuse + m.StackInuse
}

func (r *runner) memory() error {
	if r.t.EngineURL == "" || !r.t.InProcess {
		r.add(Row{Scenario: "memory per idle connection", Unit: "B", Ours: math.NaN(), Baseline: math.NaN(), Note: "needs an engine in this process"})
		return nil
	}
	u, err := url.Parse(r.t.EngineURL)
	if err != nil {
		return err
	}
	path := u.Path
	if path == "" {
		path = "/"
	}
	n := r.o.IdleConns
	r.progress("memory: %d idle connections", n)
	conns := make([]net.Conn, 0, n)
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	before := inUse()
	wait := time.Second
	for range n {
		c, got, err := idleConn(u.Host, path, wait)
		if err != nil {
			return fmt.Errorf("connection %d: %w", len(conns)+1, err)
		}
		if !got {
			wait = 0 // this server sends nothing first: do not wait on every connection
		}
		conns = append(conns, c)
	}
	// Let the engine finish what it does for a new connection (its log
	// records are group-committed).
	time.Sleep(500 * time.Millisecond)
	after := inUse()
	per := (float64(after) - float64(before)) / float64(n)
	r.add(Row{Scenario: fmt.Sprintf("memory per idle connection (%d)", n), Unit: "B", Ours: per, Baseline: math.NaN(), Note: "HeapInuse+StackInuse delta"})
	return nil
}
