package wire

import (
	"bufio"
	"bytes"
	"context"
	"log/slog"
	"net"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/lxzan/gws"
)

// BenchmarkRelay measures a loopback round trip: the client sends invoke-sized
// frames with up to `window` in flight, the server echoes each one, the client
// counts the echoes. "wire" is this package on both ends; "gws" is the same
// exchange with plain gws (one write syscall per frame, WriteMessage from the
// sending goroutine), the baseline measured in the same run.
func BenchmarkRelay(b *testing.B) {
	const window = 256
	frame := benchInvoke

	b.Run("wire", func(b *testing.B) {
		srv := &funcHandler{msg: func(c *Conn, f []byte) { _ = c.Send(bytes.Clone(f)) }}
		s, err := Listen("127.0.0.1:0", srv, Options{Logger: quietLogger()})
		if err != nil {
			b.Fatal(err)
		}
		defer s.Close()
		sem := make(chan struct{}, window)
		var got atomic.Int64
		done := make(chan struct{})
		cli := &funcHandler{msg: func(*Conn, []byte) {
			<-sem
			if got.Add(1) == int64(b.N) {
				close(done)
			}
		}}
		c, err := Dial(context.Background(), "ws://"+s.Addr().String()+"/", cli, Options{Logger: quietLogger()})
		if err != nil {
			b.Fatal(err)
		}
		defer c.Close(CloseNormal, "")
		b.ReportAllocs()
		b.SetBytes(int64(len(frame)))
		b.ResetTimer()
		start := time.Now()
		for range b.N {
			sem <- struct{}{}
			if err := c.Send(frame); err != nil { // frame is shared, never modified: allowed
				b.Fatal(err)
			}
		}
		<-done
		b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "msgs/s")
	})

	b.Run("gws", func(b *testing.B) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			b.Fatal(err)
		}
		// Not gws.Server.RunListener: it spins on Accept errors once closed.
		up := gws.NewUpgrader(&gwsEcho{}, nil)
		go func() {
			for {
				nc, err := ln.Accept()
				if err != nil {
					return
				}
				go func() {
					br := bufio.NewReader(nc)
					req, err := http.ReadRequest(br)
					if err != nil {
						return
					}
					if ws, err := up.UpgradeFromConn(nc, br, req); err == nil {
						ws.ReadLoop()
					}
				}()
			}
		}()
		defer ln.Close()
		sem := make(chan struct{}, window)
		var got atomic.Int64
		done := make(chan struct{})
		cli := &gwsCounter{on: func() {
			<-sem
			if got.Add(1) == int64(b.N) {
				close(done)
			}
		}}
		ws, _, err := gws.NewClient(cli, &gws.ClientOption{Addr: "ws://" + ln.Addr().String() + "/"})
		if err != nil {
			b.Fatal(err)
		}
		go ws.ReadLoop()
		defer ws.WriteClose(1000, nil)
		b.ReportAllocs()
		b.SetBytes(int64(len(frame)))
		b.ResetTimer()
		start := time.Now()
		for range b.N {
			sem <- struct{}{}
			if err := ws.WriteMessage(gws.OpcodeText, frame); err != nil {
				b.Fatal(err)
			}
		}
		<-done
		b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "msgs/s")
	})
}

// BenchmarkFanOut measures server → client throughput when the engine queues
// frames faster than they can be written (a burst of stream events), which is
// where coalescing pays: "wire" Sends, "gws" calls WriteMessage per frame.
func BenchmarkFanOut(b *testing.B) {
	frame := benchInvoke
	run := func(b *testing.B, send func(c *Conn, ws *gws.Conn)) {
		opened := make(chan *Conn, 1)
		srv := &funcHandler{open: func(c *Conn) { opened <- c }}
		// The whole burst is queued at once: lift the slow-consumer bounds.
		s, err := Listen("127.0.0.1:0", srv, Options{SendQueueFrames: 1 << 30, SendQueueBytes: 1 << 40, Logger: quietLogger()})
		if err != nil {
			b.Fatal(err)
		}
		defer s.Close()
		var got atomic.Int64
		done := make(chan struct{})
		cli := &funcHandler{msg: func(*Conn, []byte) {
			if got.Add(1) == int64(b.N) {
				close(done)
			}
		}}
		c, err := Dial(context.Background(), "ws://"+s.Addr().String()+"/", cli, Options{Logger: quietLogger()})
		if err != nil {
			b.Fatal(err)
		}
		defer c.Close(CloseNormal, "")
		sc := <-opened
		b.ReportAllocs()
		b.SetBytes(int64(len(frame)))
		b.ResetTimer()
		start := time.Now()
		send(sc, sc.ws)
		<-done
		b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "msgs/s")
	}
	b.Run("wire", func(b *testing.B) {
		run(b, func(c *Conn, _ *gws.Conn) {
			for range b.N {
				if err := c.Send(frame); err != nil {
					b.Fatal(err)
				}
			}
		})
	})
	b.Run("gws", func(b *testing.B) {
		run(b, func(_ *Conn, ws *gws.Conn) {
			for range b.N {
				if err := ws.WriteMessage(gws.OpcodeText, frame); err != nil {
					b.Fatal(err)
				}
			}
		})
	})
}

type funcHandler struct {
	open func(c *Conn)
	msg  func(c *Conn, frame []byte)
}

func (h *funcHandler) Open(c *Conn) {
	if h.open != nil {
		h.open(c)
	}
}

func (h *funcHandler) Message(c *Conn, f []byte) {
	if h.msg != nil {
		h.msg(c, f)
	}
}

func (h *funcHandler) Close(*Conn, error) {}

type gwsEcho struct{ gws.BuiltinEventHandler }

func (gwsEcho) OnMessage(s *gws.Conn, m *gws.Message) {
	_ = s.WriteMessage(m.Opcode, m.Bytes())
	_ = m.Close()
}

type gwsCounter struct {
	gws.BuiltinEventHandler
	on func()
}

func (g *gwsCounter) OnMessage(_ *gws.Conn, m *gws.Message) {
	_ = m.Close()
	g.on()
}

func quietLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }
