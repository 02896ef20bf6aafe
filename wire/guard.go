package wire

import (
	"encoding/binary"
	"errors"
	"io"
	"math"
	"net"
	"strconv"
)

// errTooLarge is what the read path returns to gws after frameGuard has closed
// the connection with 1009.
var errTooLarge = errors.New("wire: message too large")

// frameGuard sits between the socket and gws's bufio.Reader. It follows the
// WebSocket frame headers as the bytes stream past, so that
//   - an oversized message is refused before gws buffers it, with our own close
//     frame (1009, reason naming the limit; gws's own reason would not name it),
//   - every inbound byte counts as activity for the keepalive timer,
//   - the handler can tell whether the message it handles is the last one
//     read so far (Conn.More).
//
// It first skips the HTTP head (up to the empty line), since on both sides the
// same buffered reader carries the handshake and then the frames.
type frameGuard struct {
	r     io.Reader
	c     *Conn // set once the connection exists, before gws reads frames
	limit int64

	headDone bool
	newlines int // consecutive line ends seen in the HTTP head ('\r' ignored)

	hdr  [14]byte
	hn   int   // header bytes collected
	need int   // header length once known, else 2
	skip int64 // payload bytes of the current frame still to pass
	msg  int64 // size of the current (possibly fragmented) data message
	fin  bool  // the current frame ends a data message
	msgs int64 // data messages whose last byte has been read

	tooLarge bool
}

func newFrameGuard(r io.Reader, limit int) *frameGuard {
	return &frameGuard{r: r, limit: int64(limit), need: 2}
}

// Read passes bytes through, refusing an oversized message (see frameGuard).
func (g *frameGuard) Read(p []byte) (int, error) {
	if g.tooLarge {
		return 0, g.refuse()
	}
	n, err := g.r.Read(p)
	if n > 0 {
		if g.c != nil {
			g.c.touch()
		}
		if cut, bad := g.scan(p[:n]); bad {
			g.tooLarge = true
			if cut > 0 {
				return cut, nil // let gws have the complete frames before it
			}
			return 0, g.refuse()
		}
	}
	return n, err
}

// refuse closes the connection with 1009 and waits until the close frame is
// out, so gws's own close frame (written when it sees the error) cannot go
// first. Then it discards what the peer still sends (the rest of the message,
// its close frame) until the peer hangs up or CloseTimeout passes, for the
// reason given at Conn.lingerClose.
func (g *frameGuard) refuse() error {
	if g.c != nil {
		g.c.closeWith(CloseMessageTooBig, "message too large: the limit is "+strconv.FormatInt(g.limit, 10)+" bytes", false)
		<-g.c.writerDone
		_, _ = io.Copy(io.Discard, g.r)
	}
	return errTooLarge
}

// scan advances the frame state machine over p. It reports bad=true, with the
// offset of the offending frame header, when a data message exceeds the limit.
func (g *frameGuard) scan(p []byte) (cut int, bad bool) {
	i := 0
	if !g.headDone {
		// The head ends with an empty line: "\r\n\r\n", or "\n\n", which Go's
		// HTTP parser accepts too.
		for ; i < len(p) && g.newlines < 2; i++ {
			switch p[i] {
			case '\n':
				g.newlines++
			case '\r':
			default:
				g.newlines = 0
			}
		}
		if g.newlines < 2 {
			return 0, false
		}
		g.headDone = true
	}
	for i < len(p) {
		if g.skip > 0 {
			k := int64(len(p) - i)
			if k > g.skip {
				k = g.skip
			}
			g.skip -= k
			i += int(k)
			if g.skip == 0 && g.fin {
				g.msgs++
			}
			continue
		}
		start := i - g.hn
		g.hdr[g.hn] = p[i]
		g.hn++
		i++
		if g.hn == 2 {
			g.need = 2
			switch g.hdr[1] & 0x7f {
			case 126:
				g.need += 2
			case 127:
				g.need += 8
			}
			if g.hdr[1]&0x80 != 0 {
				g.need += 4
			}
		}
		if g.hn < 2 || g.hn < g.need {
			continue
		}
		var length uint64
		switch l := g.hdr[1] & 0x7f; l {
		case 126:
			length = uint64(binary.BigEndian.Uint16(g.hdr[2:4]))
		case 127:
			length = binary.BigEndian.Uint64(g.hdr[2:10])
		default:
			length = uint64(l)
		}
		g.hn, g.need = 0, 2
		if length > math.MaxInt64/2 {
			return max(start, 0), true
		}
		if op := g.hdr[0] & 0x0f; op < 8 { // data frame (control frames are checked by gws: ≤125 bytes)
			if op != 0 {
				g.msg = 0
			}
			g.msg += int64(length)
			if g.msg > g.limit {
				return max(start, 0), true
			}
		}
		g.fin = g.hdr[0]&0x0f < 8 && g.hdr[0]&0x80 != 0
		g.skip = int64(length)
		if length == 0 && g.fin {
			g.msgs++
		}
	}
	return 0, false
}

// guardedConn is the client side's net.Conn for gws: reads go through the
// guard, writes straight to the socket.
type guardedConn struct {
	net.Conn
	g *frameGuard
}

// Read reads through the guard.
func (c *guardedConn) Read(p []byte) (int, error) { return c.g.Read(p) }
