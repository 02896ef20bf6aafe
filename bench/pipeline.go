package bench

import (
	"net"
	"sync"

	"github.com/lxzan/gws"
)

// Pipelining, the way a Redis or NATS client does it: the frames a client
// sends while it handles a burst of frames that arrived together are
// written in one syscall once the last of the burst is handled, instead of
// one syscall per frame. The Redis baseline's client always did this (it
// flushes when its read buffer is empty); the WebSocket clients do the same
// so that a comparison measures the servers, not the clients' syscalls.

// pipeConn sits below gws on a client connection. It counts the frame bytes
// gws has read from the socket, so a handler knows whether another frame is
// already waiting, and it holds the frames gws writes during a handler
// until the burst ends.
type pipeConn struct {
	net.Conn

	// Read goroutine only. The handshake response comes first on the same
	// reader; frame bytes are counted from its blank line on.
	last4   uint32
	framing bool
	read    int64 // frame bytes read from the socket
	handled int64 // frame bytes of the frames handled so far

	mu   sync.Mutex
	hold bool
	out  []byte
}

// Read implements net.Conn.
func (p *pipeConn) Read(b []byte) (int, error) {
	n, err := p.Conn.Read(b)
	got := b[:n]
	if !p.framing {
		for i, x := range got {
			p.last4 = p.last4<<8 | uint32(x)
			if p.last4 == 0x0d0a0d0a { // "\r\n\r\n": the handshake response ends
				p.framing, got = true, got[i+1:]
				break
			}
		}
		if !p.framing {
			return n, err
		}
	}
	p.read += int64(len(got))
	return n, err
}

// Write implements net.Conn: while a burst is being handled, frames wait.
func (p *pipeConn) Write(b []byte) (int, error) {
	p.mu.Lock()
	if p.hold {
		p.out = append(p.out, b...)
		p.mu.Unlock()
		return len(b), nil
	}
	p.mu.Unlock()
	return p.Conn.Write(b)
}

// begin is called by a handler before it answers a frame whose payload is
// n bytes (sent unmasked by the server); it returns whether this frame is
// the last one read so far.
func (p *pipeConn) begin(n int) (last bool) {
	header := 2
	switch {
	case n > 0xffff:
		header = 10
	case n > 125:
		header = 4
	}
	p.handled += int64(header + n)
	p.mu.Lock()
	p.hold = true
	p.mu.Unlock()
	return p.handled >= p.read
}

// end is called when the handler is done; after the last frame of a burst
// it writes everything held.
func (p *pipeConn) end(last bool) error {
	if !last {
		return nil
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.hold = false
	if len(p.out) == 0 {
		return nil
	}
	_, err := p.Conn.Write(p.out)
	p.out = p.out[:0]
	return err
}

// pipelined is the gws.Event base of the clients that answer what they
// receive. Pings are counted too, or the burst would never end.
type pipelined struct {
	gws.BuiltinEventHandler
	pipe *pipeConn
}

// OnPing implements gws.Event.
func (h *pipelined) OnPing(s *gws.Conn, payload []byte) {
	last := h.pipe.begin(len(payload))
	_ = s.WritePong(payload)
	_ = h.pipe.end(last)
}

// OnPong implements gws.Event.
func (h *pipelined) OnPong(_ *gws.Conn, payload []byte) {
	_ = h.pipe.end(h.pipe.begin(len(payload)))
}
