package wire

import (
	"bufio"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/lxzan/gws"
)

// Options configure a Server (Listen) or a client connection (Dial). Zero
// fields take the defaults given below, which are also the engine's
// (docs/config.md#engine-settings).
type Options struct {
	// MaxMessageBytes bounds an inbound message (all fragments together); a
	// bigger one closes the connection with 1009 and a reason naming the limit.
	// Default 16 MiB.
	MaxMessageBytes int
	// SendQueueFrames and SendQueueBytes bound a connection's send queue
	// (including the batch being written); exceeding either closes it with 1008,
	// reason starting "slow consumer". Defaults 65536 frames, 64 MiB.
	SendQueueFrames int
	SendQueueBytes  int
	// PingAfter: after this long without an inbound frame a WebSocket ping is
	// sent, and again every PingAfter while the silence lasts. Default 20s;
	// negative disables pings.
	PingAfter time.Duration
	// IdleTimeout: after this long without any inbound frame the connection is
	// closed with 1001 "idle timeout". Default 60s; negative disables it.
	IdleTimeout time.Duration
	// HandshakeTimeout bounds the HTTP upgrade request (server) or the whole
	// handshake (client). Default 10s.
	HandshakeTimeout time.Duration
	// CloseTimeout bounds how long a closing connection may spend flushing its
	// queue and close frame to a peer that does not read. Default 5s.
	CloseTimeout time.Duration
	// WriteDeadline: a peer whose socket accepts none of a pending write for
	// this long is a slow consumer and is disconnected (its queue would
	// otherwise sit in memory up to SendQueueBytes). The deadline is renewed
	// at most every half period, so a stall is detected after between half
	// and all of it. Default 10s (NATS's write_deadline); negative disables.
	WriteDeadline time.Duration
	// Telemetry serves /otel: its binary frames are drained, text is ignored,
	// and the Handler never sees the socket. Worker listeners set it; the stream
	// port does not (/otel is then a 404).
	Telemetry bool
	// Route resolves every other path (Listen only), before the upgrade: the
	// Handler it returns serves that connection; nil answers HTTP 404 without
	// upgrading. It runs on the connection's goroutine and should not block.
	// Without Route every other path is a 404.
	Route func(path, rawQuery string) Handler
	// AllowOrigin vets browsers (Listen only). Browsers send an Origin header
	// on every WebSocket upgrade; worker processes send none. It is called
	// with the header of each request that carries a non-empty Origin, before
	// routing, so it guards "/", "/otel" and the Route paths alike; when it
	// returns false the request gets HTTP 403 with a text/plain body naming
	// the origin, and is closed without upgrading (nor calling Route). nil
	// accepts every origin; requests without Origin are always accepted.
	// OriginList builds one from a list. It runs on the connection's goroutine
	// and should not block.
	AllowOrigin func(origin string) bool
	// Header holds extra upgrade request headers (Dial only).
	Header http.Header
	// MaxConnections bounds the open connections of a Server (every path);
	// an upgrade beyond it is answered 503. 0 means no bound.
	MaxConnections int
	// Logger receives connection-level events. Default slog.Default().
	Logger *slog.Logger
}

func (o Options) withDefaults() *Options {
	def := func(v *int, d int) {
		if *v <= 0 {
			*v = d
		}
	}
	defDur := func(v *time.Duration, d time.Duration) {
		if *v == 0 {
			*v = d
		}
	}
	def(&o.MaxMessageBytes, 16<<20)
	def(&o.SendQueueFrames, 65536)
	def(&o.SendQueueBytes, 64<<20)
	defDur(&o.PingAfter, 20*time.Second)
	defDur(&o.IdleTimeout, 60*time.Second)
	defDur(&o.HandshakeTimeout, 10*time.Second)
	defDur(&o.CloseTimeout, 5*time.Second)
	defDur(&o.WriteDeadline, 10*time.Second)
	if o.HandshakeTimeout < 0 {
		o.HandshakeTimeout = 10 * time.Second
	}
	if o.CloseTimeout < 0 {
		o.CloseTimeout = 5 * time.Second
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	return &o
}

// Handler receives the events of the connections on "/" (and on the paths
// Options.Route hands it). All three methods
// run on the connection's read goroutine, so for one connection they never run
// concurrently and frames arrive in order. While a method blocks, that
// connection is not read: its frames, pings included, wait in the socket (the
// pongs go out once it returns), and the idle timeout does not run. Different
// connections run in parallel. Methods may call Send and Close of any Conn.
type Handler interface {
	// Open is called after the upgrade, before any frame is read. Send may be
	// called from it (the frame goes out after the 101 response).
	Open(c *Conn)
	// Message is called for each text frame, and each binary frame on "/" that
	// is not telemetry (OTLP/MTRC/LOGS prefix, drained), in arrival order. frame
	// is only valid during the call. Empty and whitespace-only frames are not
	// delivered, nor is anything after Conn.Close was called.
	Message(c *Conn, frame []byte)
	// Close is called exactly once, after the last Message, when the socket is
	// closed. err is a *CloseError when a close frame ended the connection.
	Close(c *Conn, err error)
}

// FrameHandler may be implemented by a Handler that relays frames rather than
// reading JSON (data channels). Frame then replaces Message: it receives every
// data frame as the peer sent it, empty ones included, with its opcode
// (binary or text), no telemetry filtering and no UTF-8 check on binary
// frames. Message is never called. The Handler rules (read goroutine, order,
// nothing after Conn.Close, payload valid only during the call) apply.
type FrameHandler interface {
	Frame(c *Conn, binary bool, payload []byte)
}

// BurstEnder may be implemented by a Handler that holds work back while
// Conn.More reports another message already read: BurstEnd is called after
// each message read (handled, or dropped as Message's rules say) that leaves
// none behind it, so held work is never left waiting for a message that
// does not come. It runs on the read goroutine, never at the same time as
// Message or Close and never after Close; unlike Message it is called also
// after Conn.Close (a burst may end while the connection closes, and what
// it held must still be released).
type BurstEnder interface {
	BurstEnd(c *Conn)
}

// Server is a WebSocket listener serving "/" (the Handler), "/otel" (drained,
// when Options.Telemetry is set), the paths Options.Route resolves, and 404
// for every other path.
type Server struct {
	ln       net.Listener
	h        Handler
	o        *Options
	upgrader *gws.Upgrader

	mu      sync.Mutex
	closed  bool
	stopped bool                  // the listening socket is closed
	raw     map[net.Conn]struct{} // accepted, not yet upgraded
	conns   map[*Conn]struct{}
	wg      sync.WaitGroup
}

// Listen binds addr ("host:port") at once and serves it in the background.
// A bind error names the address.
func Listen(addr string, h Handler, opts Options) (*Server, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("wire: listen on %s: %w", addr, err)
	}
	o := opts.withDefaults()
	s := &Server{
		ln:    ln,
		h:     h,
		o:     o,
		raw:   make(map[net.Conn]struct{}),
		conns: make(map[*Conn]struct{}),
	}
	s.upgrader = gws.NewUpgrader(connEvents{}, &gws.ServerOption{
		ReadMaxPayloadSize: o.MaxMessageBytes, // backstop; frameGuard refuses first
		CheckUtf8Enabled:   true,              // browsers reject non-UTF-8 text; refuse it at the door (1007)
		HandshakeTimeout:   o.HandshakeTimeout,
		NewSession:         newConnSession,
		Logger:             gwsLogger{o.Logger},
	})
	s.wg.Add(1)
	go s.acceptLoop()
	return s, nil
}

// Addr returns the bound address (useful with port 0).
func (s *Server) Addr() net.Addr { return s.ln.Addr() }

// StopAccepting closes the listening socket: no new connection is
// accepted (the port is free again) while the open ones go on. Close still
// closes those.
func (s *Server) StopAccepting() {
	s.mu.Lock()
	defer s.mu.Unlock()
	_ = s.stopLocked()
}

// stopLocked closes the listener once (s.mu held).
func (s *Server) stopLocked() error {
	if s.stopped {
		return nil
	}
	s.stopped = true
	return s.ln.Close()
}

// Close stops accepting, closes every connection with 1001 "engine shutting
// down" (after flushing what was queued), and returns once every connection's
// Handler.Close has returned. A Handler blocked in Message delays it, so it
// must not be called from a Handler method.
func (s *Server) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		s.wg.Wait()
		return nil
	}
	s.closed = true
	err := s.stopLocked()
	for nc := range s.raw {
		_ = nc.Close()
	}
	conns := make([]*Conn, 0, len(s.conns))
	for c := range s.conns {
		conns = append(conns, c)
	}
	s.mu.Unlock()
	for _, c := range conns {
		c.Close(CloseGoingAway, "engine shutting down")
	}
	s.wg.Wait()
	return err
}

func (s *Server) acceptLoop() {
	defer s.wg.Done()
	var backoff time.Duration
	for {
		nc, err := s.ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			// Out of file descriptors and the like: wait a little and retry.
			backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
			s.o.Logger.Warn("wire: accept failed", "addr", s.ln.Addr().String(), "err", err)
			time.Sleep(backoff)
			continue
		}
		backoff = 0
		s.mu.Lock()
		if s.closed {
			s.mu.Unlock()
			_ = nc.Close()
			return
		}
		s.raw[nc] = struct{}{}
		s.wg.Add(1)
		s.mu.Unlock()
		go s.serve(nc)
	}
}

// serve reads the upgrade request, routes it by path and runs the connection's
// read loop on this goroutine.
func (s *Server) serve(nc net.Conn) {
	defer s.wg.Done()
	c, ws := s.upgrade(nc)
	s.mu.Lock()
	delete(s.raw, nc)
	if c != nil {
		s.conns[c] = struct{}{}
		if s.closed {
			c.Close(CloseGoingAway, "engine shutting down")
		}
	}
	s.mu.Unlock()
	if c == nil {
		_ = nc.Close()
		return
	}
	ws.ReadLoop() // Handler.Open … Message … Close
}

func (s *Server) upgrade(nc net.Conn) (*Conn, *gws.Conn) {
	g := newFrameGuard(nc, s.o.MaxMessageBytes)
	br := bufio.NewReaderSize(g, 4096)
	_ = nc.SetReadDeadline(time.Now().Add(s.o.HandshakeTimeout))
	req, err := http.ReadRequest(br)
	if err != nil {
		s.o.Logger.Debug("wire: bad upgrade request", "remote", nc.RemoteAddr().String(), "err", err)
		return nil, nil
	}
	_ = nc.SetReadDeadline(time.Time{})
	if origin := req.Header.Get("Origin"); origin != "" && s.o.AllowOrigin != nil && !s.o.AllowOrigin(origin) {
		// Before routing: a refused page learns nothing about which paths exist.
		s.o.Logger.Debug("wire: origin refused", "remote", nc.RemoteAddr().String(), "path", req.URL.Path, "origin", origin)
		s.refuse(nc, "403 Forbidden", fmt.Sprintf("origin %q is not allowed on this listener (allowed_origins)\n", clip(origin, 256)))
		return nil, nil
	}
	if max := s.o.MaxConnections; max > 0 {
		s.mu.Lock()
		n := len(s.conns)
		s.mu.Unlock()
		if n >= max {
			s.o.Logger.Warn("wire: connection refused: listener full", "addr", s.ln.Addr().String(), "max_connections", max)
			s.refuse(nc, "503 Service Unavailable", fmt.Sprintf("this listener already holds %d connections (max_connections)\n", max))
			return nil, nil
		}
	}
	var h Handler
	drain := false // /otel: upgraded without a Handler
	switch {
	case req.URL.Path == "/":
		h = s.h
	case req.URL.Path == "/otel" && s.o.Telemetry:
		drain = true
	case s.o.Route != nil:
		h = s.o.Route(req.URL.Path, req.URL.RawQuery)
	}
	if h == nil && !drain {
		s.refuse(nc, "404 Not Found", "404 page not found\n")
		return nil, nil
	}
	ws, err := s.upgrader.UpgradeFromConn(nc, br, req)
	if err != nil { // gws answered 400 and closed the socket
		s.o.Logger.Debug("wire: upgrade failed", "remote", nc.RemoteAddr().String(), "path", req.URL.Path, "err", err)
		return nil, nil
	}
	c := newConn(nc, g, s.o, h, false)
	c.ws, c.srv = ws, s
	// Go moves Host out of the header map; auth functions expect it among the headers.
	hdr := req.Header
	if req.Host != "" {
		hdr = hdr.Clone()
		hdr.Set("Host", req.Host)
	}
	c.header, c.path, c.rawQuery = hdr, req.URL.Path, req.URL.RawQuery
	ws.Session().(*connSession).c = c
	c.start()
	return c, ws
}

// refuse answers an HTTP error without upgrading; the caller closes nc.
func (s *Server) refuse(nc net.Conn, status, body string) {
	_ = nc.SetWriteDeadline(time.Now().Add(s.o.HandshakeTimeout))
	_, _ = fmt.Fprintf(nc, "HTTP/1.1 %s\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s", status, len(body), body)
}

// clip shortens a peer-supplied string for a response body.
func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

// OriginList returns an Options.AllowOrigin that accepts the origins in
// allowed: exact matches, ignoring case, surrounding spaces and a
// trailing slash on either side ("http://localhost:5173/" matches
// "http://LocalHost:5173"). "*" accepts every origin; an empty list accepts
// none, so every request with an Origin header gets 403. The list is copied.
func OriginList(allowed []string) func(origin string) bool {
	norm := func(o string) string { return strings.TrimSuffix(strings.TrimSpace(o), "/") }
	list := make([]string, 0, len(allowed))
	for _, a := range allowed {
		a = norm(a)
		if a == "*" {
			return func(string) bool { return true }
		}
		if a != "" {
			list = append(list, a)
		}
	}
	return func(origin string) bool {
		origin = norm(origin)
		for _, a := range list {
			if strings.EqualFold(a, origin) {
				return true
			}
		}
		return false
	}
}

func (s *Server) forget(c *Conn) {
	s.mu.Lock()
	delete(s.conns, c)
	s.mu.Unlock()
}

// gwsLogger routes gws's own error logs (rare: handshake failures) to slog.
type gwsLogger struct{ l *slog.Logger }

// Error implements gws.Logger.
func (g gwsLogger) Error(v ...any) { g.l.Debug("wire: gws", "msg", fmt.Sprint(v...)) }
