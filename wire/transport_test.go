package wire

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/iii-go/iii/internal/wstest"
	"github.com/lxzan/gws"
)

const waitLong = 10 * time.Second

// recorder is a Handler that records everything and can run hooks.
type recorder struct {
	onOpen    func(c *Conn)
	onMessage func(c *Conn, frame []byte)

	opens  chan *Conn
	msgs   chan string
	closes chan error

	mu      sync.Mutex
	closeN  map[*Conn]int
	closed  map[*Conn]bool
	afterCl atomic.Int32 // messages delivered after Close (must stay 0)
}

func newRecorder() *recorder {
	return &recorder{
		opens:  make(chan *Conn, 64),
		msgs:   make(chan string, 100000),
		closes: make(chan error, 64),
		closeN: make(map[*Conn]int),
		closed: make(map[*Conn]bool),
	}
}

func (r *recorder) Open(c *Conn) {
	if r.onOpen != nil {
		r.onOpen(c)
	}
	r.opens <- c
}

func (r *recorder) Message(c *Conn, frame []byte) {
	r.mu.Lock()
	if r.closed[c] {
		r.afterCl.Add(1)
	}
	r.mu.Unlock()
	if r.onMessage != nil {
		r.onMessage(c, frame)
	}
	r.msgs <- string(frame)
}

func (r *recorder) Close(c *Conn, err error) {
	r.mu.Lock()
	r.closeN[c]++
	r.closed[c] = true
	r.mu.Unlock()
	r.closes <- err
}

func (r *recorder) nextMsg(t *testing.T) string {
	t.Helper()
	select {
	case m := <-r.msgs:
		return m
	case <-time.After(waitLong):
		t.Fatal("timed out waiting for a message")
		return ""
	}
}

func (r *recorder) nextClose(t *testing.T) error {
	t.Helper()
	select {
	case err := <-r.closes:
		return err
	case <-time.After(waitLong):
		t.Fatal("timed out waiting for Handler.Close")
		return nil
	}
}

func (r *recorder) nextOpen(t *testing.T) *Conn {
	t.Helper()
	select {
	case c := <-r.opens:
		return c
	case <-time.After(waitLong):
		t.Fatal("timed out waiting for Handler.Open")
		return nil
	}
}

func startServer(t *testing.T, h Handler, o Options) *Server {
	t.Helper()
	if o.Logger == nil {
		o.Logger = quietLogger()
	}
	s, err := Listen("127.0.0.1:0", h, o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func wsURL(s *Server, path string) string { return "ws://" + s.Addr().String() + path }

func dial(t *testing.T, s *Server, path string, h Handler, o Options) *Conn {
	t.Helper()
	if o.Logger == nil {
		o.Logger = quietLogger()
	}
	c, err := Dial(context.Background(), wsURL(s, path), h, o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close(CloseNormal, "") })
	return c
}

func echo(c *Conn, frame []byte) { _ = c.Send(bytes.Clone(frame)) }

func wantClose(t *testing.T, err error, code uint16, reasonPart string, remote bool) {
	t.Helper()
	var ce *CloseError
	if !errors.As(err, &ce) {
		t.Fatalf("close error = %v (%T), want *CloseError %d", err, err, code)
	}
	if ce.Code != code || !strings.Contains(ce.Reason, reasonPart) || ce.Remote != remote {
		t.Fatalf("close = %+v, want code %d, reason containing %q, remote %v", ce, code, reasonPart, remote)
	}
}

// rawClient speaks WebSocket by hand, for what no well-behaved client does:
// never reading, never answering pings, fragmenting, sending bad UTF-8.
type rawClient struct{ *wstest.Conn }

func dialRaw(t *testing.T, s *Server, path string) *rawClient {
	t.Helper()
	c, err := wstest.Dial(s.Addr().String(), path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return &rawClient{c}
}

// frame encodes one masked client frame; fin=false starts/continues a fragmented message.
func clientFrame(fin bool, op byte, payload []byte) []byte {
	key := [4]byte{1, 2, 3, 4}
	b := appendHeader(nil, op, len(payload), true, key)
	if !fin {
		b[0] &^= 0x80
	}
	start := len(b)
	b = append(b, payload...)
	maskBytes(b[start:], key)
	return b
}

func (r *rawClient) write(t *testing.T, frames ...[]byte) {
	t.Helper()
	if _, err := r.Write(bytes.Join(frames, nil)); err != nil {
		t.Fatal(err)
	}
}

func (r *rawClient) readFrame(t *testing.T) (op byte, payload []byte) {
	t.Helper()
	_ = r.SetReadDeadline(time.Now().Add(waitLong))
	op, payload, err := r.ReadFrame()
	if err != nil {
		t.Fatalf("read frame: %v", err)
	}
	return op, payload
}

// readClose skips data/ping frames until the close frame and returns its code
// (0 when it has none) and reason.
func (r *rawClient) readClose(t *testing.T) (uint16, string) {
	t.Helper()
	for {
		op, p := r.readFrame(t)
		if op != opClose {
			continue
		}
		_ = r.Close() // as a client does after the close handshake
		if len(p) < 2 {
			return 0, ""
		}
		return binary.BigEndian.Uint16(p), string(p[2:])
	}
}

func TestEcho(t *testing.T) {
	srv := newRecorder()
	srv.onOpen = func(c *Conn) { _ = c.Send(AppendWorkerRegistered(nil, "w1", "tok")) }
	srv.onMessage = echo
	s := startServer(t, srv, Options{})
	cli := newRecorder()
	c := dial(t, s, "/", cli, Options{})

	if got := cli.nextMsg(t); got != `{"type":"workerregistered","worker_id":"w1","reattach_token":"tok"}` {
		t.Fatalf("first frame = %s", got)
	}
	var sent []string
	for i := range 50 {
		// Mixed sizes: small frames are coalesced, large ones go by writev,
		// client frames are masked.
		f := fmt.Sprintf(`{"n":%d,"pad":"%s"}`, i, strings.Repeat("x", (i%5)*30000))
		sent = append(sent, f)
		if err := c.Send([]byte(f)); err != nil {
			t.Fatal(err)
		}
	}
	for i, want := range sent {
		if got := cli.nextMsg(t); got != want {
			t.Fatalf("echo %d: got %d bytes, want %d", i, len(got), len(want))
		}
	}
	c.Close(CloseNormal, "done")
	wantClose(t, srv.nextClose(t), CloseNormal, "done", true)
	wantClose(t, cli.nextClose(t), CloseNormal, "done", false)
	if err := c.Send([]byte("x")); err != ErrClosed {
		t.Fatalf("Send after Close = %v, want ErrClosed", err)
	}
}

// gwsClient is a plain gws client, to check the server against another
// implementation than our own Dial.
type gwsClient struct {
	gws.BuiltinEventHandler
	msgs  chan string
	pongs chan string
	close chan error
}

func (g *gwsClient) OnMessage(_ *gws.Conn, m *gws.Message) {
	g.msgs <- m.Data.String()
	_ = m.Close()
}
func (g *gwsClient) OnPong(_ *gws.Conn, p []byte)   { g.pongs <- string(p) }
func (g *gwsClient) OnPing(s *gws.Conn, p []byte)   { _ = s.WritePong(p) }
func (g *gwsClient) OnClose(_ *gws.Conn, err error) { g.close <- err }

func dialGws(t *testing.T, s *Server, path string) (*gws.Conn, *gwsClient) {
	t.Helper()
	g := &gwsClient{msgs: make(chan string, 1000), pongs: make(chan string, 10), close: make(chan error, 1)}
	ws, _, err := gws.NewClient(g, &gws.ClientOption{Addr: wsURL(s, path)})
	if err != nil {
		t.Fatal(err)
	}
	go ws.ReadLoop()
	t.Cleanup(func() { _ = ws.WriteClose(1000, nil) })
	return ws, g
}

func recv(t *testing.T, ch chan string) string {
	t.Helper()
	select {
	case s := <-ch:
		return s
	case <-time.After(waitLong):
		t.Fatal("timed out")
		return ""
	}
}

func TestGwsClient(t *testing.T) {
	srv := newRecorder()
	srv.onOpen = func(c *Conn) { _ = c.Send([]byte(`{"type":"workerregistered","worker_id":"w"}`)) }
	srv.onMessage = echo
	s := startServer(t, srv, Options{})
	ws, g := dialGws(t, s, "/?token=abc")

	if got := recv(t, g.msgs); !strings.Contains(got, "workerregistered") {
		t.Fatalf("first frame = %s", got)
	}
	if err := ws.WriteString(`{"type":"ping"}`); err != nil {
		t.Fatal(err)
	}
	if got := recv(t, g.msgs); got != `{"type":"ping"}` {
		t.Fatalf("echo = %s", got)
	}
	if err := ws.WritePing([]byte("are you there")); err != nil {
		t.Fatal(err)
	}
	if got := recv(t, g.pongs); got != "are you there" {
		t.Fatalf("pong payload = %q", got)
	}
	c := srv.nextOpen(t)
	if c.Path() != "/" || c.RawQuery() != "token=abc" || c.RemoteIP() != "127.0.0.1" {
		t.Fatalf("path %q query %q ip %q", c.Path(), c.RawQuery(), c.RemoteIP())
	}
	_ = ws.WriteClose(4001, []byte("bye"))
	wantClose(t, srv.nextClose(t), 4001, "bye", true)
}

func TestTelemetryDrained(t *testing.T) {
	srv := newRecorder()
	s := startServer(t, srv, Options{Telemetry: true})

	otel, g := dialGws(t, s, "/otel?token=abc")
	_ = otel.WriteMessage(gws.OpcodeBinary, []byte(`LOGS{"resourceLogs":[]}`))
	_ = otel.WriteMessage(gws.OpcodeBinary, []byte(`OTLP{"resourceSpans":[]}`))
	_ = otel.WriteMessage(gws.OpcodeBinary, []byte(`{"type":"ping"}`))
	_ = otel.WriteString(`{"type":"invokefunction","function_id":"x"}`)
	_ = otel.WritePing([]byte("sync"))
	if got := recv(t, g.pongs); got != "sync" { // everything before it was read
		t.Fatalf("pong = %q", got)
	}

	// On "/" telemetry binaries are drained too, other binaries are messages,
	// blank frames are skipped.
	ws, _ := dialGws(t, s, "/")
	_ = ws.WriteMessage(gws.OpcodeBinary, []byte(`MTRC{"resourceMetrics":[]}`))
	_ = ws.WriteMessage(gws.OpcodeBinary, []byte(`{"type":"pong"}`))
	_ = ws.WriteString("")
	_ = ws.WriteString(" \r\n\t")
	_ = ws.WriteString("end")
	if got := srv.nextMsg(t); got != `{"type":"pong"}` {
		t.Fatalf("first message = %q", got)
	}
	if got := srv.nextMsg(t); got != "end" {
		t.Fatalf("second message = %q", got)
	}
	if n := len(srv.opens); n != 1 {
		t.Fatalf("Handler.Open ran %d times, want 1 (the /otel socket is not a worker)", n)
	}
}

func TestNotFound(t *testing.T) {
	s := startServer(t, newRecorder(), Options{}) // no Telemetry: /otel is a 404 too
	for _, path := range []string{"/foo", "/otel", "/ws/channels/x", "/otel/x"} {
		resp, err := http.Get("http://" + s.Addr().String() + path)
		if err != nil {
			t.Fatal(err)
		}
		_ = resp.Body.Close()
		if resp.StatusCode != http.StatusNotFound {
			t.Errorf("GET %s = %d, want 404", path, resp.StatusCode)
		}
		if _, err := Dial(context.Background(), wsURL(s, path), nil, Options{}); err == nil {
			t.Errorf("Dial %s succeeded, want an error", path)
		}
	}
}

func TestRequestInfo(t *testing.T) {
	srv := newRecorder()
	srv.onOpen = func(c *Conn) { c.SetSession(c.Header().Get("X-Test-Token")) }
	srv.onMessage = func(c *Conn, _ []byte) { _ = c.Send([]byte(c.Session().(string))) }
	s := startServer(t, srv, Options{})
	cli := newRecorder()
	c := dial(t, s, "/?token=dev-token&x", cli, Options{Header: http.Header{"X-Test-Token": {"secret"}}})
	sc := srv.nextOpen(t)
	if sc.RawQuery() != "token=dev-token&x" || sc.Path() != "/" || sc.RemoteIP() != "127.0.0.1" {
		t.Fatalf("query %q path %q ip %q", sc.RawQuery(), sc.Path(), sc.RemoteIP())
	}
	_ = c.Send([]byte("who"))
	if got := cli.nextMsg(t); got != "secret" {
		t.Fatalf("session = %q", got)
	}
	if c.Path() != "/" || c.RawQuery() != "token=dev-token&x" || c.RemoteIP() != "127.0.0.1" {
		t.Fatalf("client side: path %q query %q ip %q", c.Path(), c.RawQuery(), c.RemoteIP())
	}
}

func TestRemoteIPv6(t *testing.T) {
	s, err := Listen("[::1]:0", newRecorder(), Options{Logger: quietLogger()})
	if err != nil {
		t.Skip("no IPv6 loopback:", err)
	}
	defer s.Close()
	srv := s.h.(*recorder)
	c, err := Dial(context.Background(), "ws://"+s.Addr().String()+"/", nil, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(CloseNormal, "")
	if ip := srv.nextOpen(t).RemoteIP(); ip != "::1" {
		t.Fatalf("RemoteIP = %q, want ::1", ip)
	}
}

func TestListenError(t *testing.T) {
	s := startServer(t, newRecorder(), Options{})
	addr := s.Addr().String()
	_, err := Listen(addr, newRecorder(), Options{})
	if err == nil || !strings.Contains(err.Error(), addr) {
		t.Fatalf("second Listen(%s) = %v, want an error naming the address", addr, err)
	}
}

func TestOversize(t *testing.T) {
	srv := newRecorder()
	s := startServer(t, srv, Options{MaxMessageBytes: 1024})

	t.Run("single frame", func(t *testing.T) {
		cli := newRecorder()
		c := dial(t, s, "/", cli, Options{})
		ok := bytes.Repeat([]byte("a"), 1024)
		_ = c.Send(ok)
		if got := srv.nextMsg(t); len(got) != 1024 {
			t.Fatalf("message at the limit: %d bytes", len(got))
		}
		_ = c.Send(bytes.Repeat([]byte("b"), 1025))
		wantClose(t, srv.nextClose(t), CloseMessageTooBig, "1024 bytes", false)
		wantClose(t, cli.nextClose(t), CloseMessageTooBig, "1024 bytes", true)
	})
	t.Run("fragments add up", func(t *testing.T) {
		r := dialRaw(t, s, "/")
		part := bytes.Repeat([]byte("c"), 400)
		// One complete small message first, in the same write: it is delivered.
		r.write(t, clientFrame(true, opText, []byte("before")),
			clientFrame(false, opText, part), clientFrame(false, 0, part), clientFrame(true, 0, part))
		if got := srv.nextMsg(t); got != "before" {
			t.Fatalf("message before the oversized one = %q", got)
		}
		code, reason := r.readClose(t)
		if code != CloseMessageTooBig || !strings.Contains(reason, "1024") {
			t.Fatalf("close %d %q", code, reason)
		}
		wantClose(t, srv.nextClose(t), CloseMessageTooBig, "1024", false)
	})
	t.Run("header claims huge length", func(t *testing.T) {
		r := dialRaw(t, s, "/")
		h := []byte{0x81, 0x80 | 127, 0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 1, 2, 3, 4}
		r.write(t, h)
		if code, _ := r.readClose(t); code != CloseMessageTooBig {
			t.Fatalf("close code %d", code)
		}
		srv.nextClose(t)
	})
}

func TestPingAnswered(t *testing.T) {
	srv := newRecorder()
	block := make(chan struct{})
	srv.onMessage = func(*Conn, []byte) { <-block }
	s := startServer(t, srv, Options{})
	r := dialRaw(t, s, "/")
	r.write(t, clientFrame(true, opPing, []byte("p1")))
	if op, p := r.readFrame(t); op != opPong || string(p) != "p1" {
		t.Fatalf("got op %x %q, want pong p1", op, p)
	}
	close(block)
}

func TestKeepalive(t *testing.T) {
	o := Options{PingAfter: 40 * time.Millisecond, IdleTimeout: 250 * time.Millisecond}

	t.Run("silent peer is pinged then closed", func(t *testing.T) {
		srv := newRecorder()
		s := startServer(t, srv, o)
		r := dialRaw(t, s, "/")
		pings := 0
		for {
			op, p := r.readFrame(t)
			if op == opPing {
				pings++
				continue
			}
			if op != opClose || binary.BigEndian.Uint16(p) != CloseGoingAway || string(p[2:]) != "idle timeout" {
				t.Fatalf("got op %x %q", op, p)
			}
			_ = r.Close()
			break
		}
		if pings < 2 {
			t.Fatalf("%d pings before the idle close, want several", pings)
		}
		wantClose(t, srv.nextClose(t), CloseGoingAway, "idle timeout", false)
	})
	t.Run("live peer answering pings stays", func(t *testing.T) {
		srv := newRecorder()
		srv.onMessage = echo
		s := startServer(t, srv, o)
		cli := newRecorder()
		// The client itself never pings; only its pongs keep it alive.
		c := dial(t, s, "/", cli, Options{PingAfter: -1, IdleTimeout: -1})
		time.Sleep(4 * o.IdleTimeout)
		if err := c.Send([]byte("still here")); err != nil {
			t.Fatal(err)
		}
		if got := cli.nextMsg(t); got != "still here" {
			t.Fatalf("echo = %q", got)
		}
		select {
		case err := <-srv.closes:
			t.Fatalf("server closed a live connection: %v", err)
		default:
		}
	})
}

func TestSlowConsumer(t *testing.T) {
	big := bytes.Repeat([]byte("z"), 64<<10)
	for _, tt := range []struct {
		name   string
		o      Options
		reason string
	}{
		{"frames", Options{SendQueueFrames: 8, CloseTimeout: 200 * time.Millisecond}, "8 frames"},
		{"bytes", Options{SendQueueBytes: 256 << 10, CloseTimeout: 200 * time.Millisecond}, "262144 bytes"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			srv := newRecorder()
			results := make(chan error, 2)
			srv.onOpen = func(c *Conn) {
				// Send never blocks: keep going until the queue overflows.
				for i := 0; ; i++ {
					if err := c.Send(big); err != nil {
						results <- err
						break
					}
					if i > 10000 {
						results <- errors.New("no overflow after 640 MB")
						return
					}
				}
				results <- c.Send([]byte("after"))
			}
			s := startServer(t, srv, tt.o)
			dialRaw(t, s, "/") // completes the upgrade, then never reads
			if err := <-results; err != ErrSlowConsumer {
				t.Fatalf("Send = %v, want ErrSlowConsumer", err)
			}
			if err := <-results; err != ErrClosed {
				t.Fatalf("Send after overflow = %v, want ErrClosed", err)
			}
			err := srv.nextClose(t)
			wantClose(t, err, ClosePolicy, "slow consumer", false)
			wantClose(t, err, ClosePolicy, tt.reason, false)
		})
	}
}

func TestCloseFlushesQueue(t *testing.T) {
	for _, code := range []uint16{4000, 0} {
		t.Run(fmt.Sprint(code), func(t *testing.T) {
			srv := newRecorder()
			srv.onOpen = func(c *Conn) {
				for i := range 2000 {
					_ = c.Send(fmt.Appendf(nil, `{"n":%d}`, i))
				}
				c.Close(code, map[uint16]string{4000: "bye"}[code])
				if err := c.Send([]byte("late")); err != ErrClosed {
					panic(err)
				}
			}
			s := startServer(t, srv, Options{})
			cli := newRecorder()
			dial(t, s, "/", cli, Options{})
			for i := range 2000 {
				if got, want := cli.nextMsg(t), fmt.Sprintf(`{"n":%d}`, i); got != want {
					t.Fatalf("frame %d = %s, want %s", i, got, want)
				}
			}
			var ce *CloseError
			if err := cli.nextClose(t); !errors.As(err, &ce) || ce.Code != code || !ce.Remote {
				t.Fatalf("client saw close %v, want code %d", err, code)
			}
			wantClose(t, srv.nextClose(t), code, "", false)
		})
	}
}

func TestNoMessageAfterClose(t *testing.T) {
	srv := newRecorder()
	srv.onMessage = func(c *Conn, _ []byte) {
		_ = c.Send(AppendErrorFrame(nil, "AUTH_ERROR", "invalid token"))
		c.Close(0, "")
	}
	s := startServer(t, srv, Options{})
	r := dialRaw(t, s, "/")
	r.write(t, clientFrame(true, opText, []byte("a")), clientFrame(true, opText, []byte("b")), clientFrame(true, opText, []byte("c")))
	if op, p := r.readFrame(t); op != opText || !strings.Contains(string(p), "AUTH_ERROR") {
		t.Fatalf("got %x %q", op, p)
	}
	if op, p := r.readFrame(t); op != opClose || len(p) != 0 {
		t.Fatalf("got %x %q, want a close frame without status", op, p)
	}
	// The server half-closed: the socket reads EOF after the close frame.
	if _, err := r.R.ReadByte(); err != io.EOF {
		t.Fatalf("after the close frame: %v, want EOF", err)
	}
	_ = r.Close()
	srv.nextClose(t)
	if n := len(srv.msgs); n != 1 {
		t.Fatalf("%d messages delivered, want only the first", n)
	}
}

// Frames from concurrent senders keep each sender's order; sent from
// GetFrame buffers, which are reused once written, they also arrive intact.
func TestConcurrentSendsKeepOrder(t *testing.T) {
	for _, pooled := range []bool{false, true} {
		t.Run(fmt.Sprintf("pooled=%v", pooled), func(t *testing.T) {
			const senders, each = 8, 2000
			srv := newRecorder()
			srv.onOpen = func(c *Conn) {
				for g := range senders {
					go func() {
						for i := range each {
							if !pooled {
								_ = c.Send(fmt.Appendf(nil, "%d %d", g, i))
								continue
							}
							p := GetFrame()
							*p = fmt.Appendf(*p, "%d %d %s", g, i, strings.Repeat("x", i%300))
							_ = c.SendFrame(p)
						}
					}()
				}
			}
			s := startServer(t, srv, Options{})
			cli := newRecorder()
			dial(t, s, "/", cli, Options{})
			next := make([]int, senders)
			for range senders * each {
				msg := cli.nextMsg(t)
				var g, i int
				if _, err := fmt.Sscanf(msg, "%d %d", &g, &i); err != nil {
					t.Fatal(err)
				}
				if i != next[g] {
					t.Fatalf("sender %d: got frame %d, want %d", g, i, next[g])
				}
				if want := fmt.Sprintf("%d %d %s", g, i, strings.Repeat("x", i%300)); pooled && msg != want {
					t.Fatalf("frame %q, want %q", msg, want)
				}
				next[g]++
			}
		})
	}
}

func TestServerClose(t *testing.T) {
	srv := newRecorder()
	s, err := Listen("127.0.0.1:0", srv, Options{Logger: quietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	var clis []*recorder
	var conns []*Conn
	for range 3 {
		cli := newRecorder()
		c, err := Dial(context.Background(), wsURL(s, "/"), cli, Options{})
		if err != nil {
			t.Fatal(err)
		}
		clis = append(clis, cli)
		conns = append(conns, srv.nextOpen(t))
		_ = c
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if n := len(srv.closes); n != 3 { // all Handler.Close calls happened before Close returned
		t.Fatalf("%d Handler.Close calls when Server.Close returned, want 3", n)
	}
	for _, cli := range clis {
		wantClose(t, cli.nextClose(t), CloseGoingAway, "engine shutting down", true)
	}
	for _, c := range conns {
		if err := c.Send([]byte("x")); err != ErrClosed {
			t.Fatalf("Send after Server.Close = %v", err)
		}
	}
	srv.mu.Lock()
	defer srv.mu.Unlock()
	for c, n := range srv.closeN {
		if n != 1 {
			t.Fatalf("Handler.Close ran %d times for %p", n, c)
		}
	}
	if _, err := net.Dial("tcp", s.Addr().String()); err == nil {
		t.Fatal("still accepting after Close")
	}
}

// Invalid UTF-8 in a text frame breaks RFC 6455 and closes with 1007; in a
// binary frame it is only an undecodable message: answered with an error
// frame, the connection kept.
func TestInvalidUTF8(t *testing.T) {
	srv := newRecorder()
	s := startServer(t, srv, Options{})
	bad := []byte("{\"type\":\"ping\",\"x\":\"\xff\"}")

	r := dialRaw(t, s, "/")
	r.write(t, clientFrame(true, opText, bad))
	if code, _ := r.readClose(t); code != 1007 {
		t.Fatalf("text frame: close code %d, want 1007", code)
	}
	srv.nextClose(t)

	r = dialRaw(t, s, "/")
	r.write(t, clientFrame(true, 0x2, bad))
	op, p := r.readFrame(t)
	if op != opText || !strings.Contains(string(p), `"code":"invalid_message"`) {
		t.Fatalf("binary frame: got opcode %d %q, want an invalid_message error frame", op, p)
	}
	r.write(t, clientFrame(true, opText, []byte(`{"type":"ping"}`)))
	if got := srv.nextMsg(t); got != `{"type":"ping"}` {
		t.Fatalf("after the bad binary frame the connection delivered %q", got)
	}
	if len(srv.msgs) != 0 {
		t.Fatal("invalid UTF-8 was delivered")
	}
}

func TestDialErrors(t *testing.T) {
	s := startServer(t, newRecorder(), Options{})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := Dial(ctx, wsURL(s, "/"), nil, Options{}); err == nil {
		t.Error("Dial with a cancelled context succeeded")
	}
	if _, err := Dial(context.Background(), "wss://"+s.Addr().String()+"/", nil, Options{}); err == nil {
		t.Error("Dial wss succeeded")
	}
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	defer ln.Close()
	quit := make(chan struct{})
	defer close(quit)
	go func() { // accepts and never answers: the handshake timeout applies
		c, err := ln.Accept()
		if err == nil {
			<-quit
			_ = c.Close()
		}
	}()
	if _, err := Dial(context.Background(), "ws://"+ln.Addr().String()+"/", nil, Options{HandshakeTimeout: 100 * time.Millisecond}); err == nil {
		t.Error("Dial to a silent server succeeded")
	}
}

func TestHandshakeTimeout(t *testing.T) {
	s := startServer(t, newRecorder(), Options{HandshakeTimeout: 100 * time.Millisecond})
	nc, err := net.Dial("tcp", s.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	_, _ = nc.Write([]byte("GET / HTTP/1.1\r\n")) // never finishes the request
	_ = nc.SetReadDeadline(time.Now().Add(waitLong))
	if _, err := nc.Read(make([]byte, 1)); err == nil || errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("read = %v, want the server to close the connection", err)
	}
}

func TestBusyHandlerIsNotIdle(t *testing.T) {
	srv := newRecorder()
	srv.onMessage = func(c *Conn, f []byte) {
		if string(f) == "slow" {
			time.Sleep(300 * time.Millisecond) // longer than IdleTimeout
		}
		echo(c, f)
	}
	s := startServer(t, srv, Options{PingAfter: 30 * time.Millisecond, IdleTimeout: 120 * time.Millisecond})
	cli := newRecorder()
	c := dial(t, s, "/", cli, Options{PingAfter: -1, IdleTimeout: -1})
	_ = c.Send([]byte("slow"))
	if got := cli.nextMsg(t); got != "slow" {
		t.Fatalf("echo = %q", got)
	}
	select {
	case err := <-srv.closes:
		t.Fatalf("closed while its handler was busy: %v", err)
	default:
	}
}

// A peer that stops reading is disconnected once a write has waited the
// write deadline, instead of keeping its queue in memory.
func TestWriteDeadlineDropsAStalledPeer(t *testing.T) {
	srv := newRecorder()
	s := startServer(t, srv, Options{WriteDeadline: 200 * time.Millisecond, SendQueueBytes: 1 << 30, SendQueueFrames: 1 << 20})
	dialRaw(t, s, "/") // connects, then never reads
	c := srv.nextOpen(t)
	frame := bytes.Repeat([]byte("x"), 64<<10)
	start := time.Now()
	go func() { // a steady producer, far below the queue limits
		for c.Send(frame) == nil && time.Since(start) < 10*time.Second {
			time.Sleep(time.Millisecond)
		}
	}()
	err := srv.nextClose(t)
	if err == nil || !strings.Contains(err.Error(), "slow consumer") {
		t.Fatalf("close error %v, want a slow consumer", err)
	}
	if el := time.Since(start); el > 5*time.Second {
		t.Fatalf("disconnected after %v; the write deadline is 200ms", el)
	}
}

// A full listener answers 503 and keeps serving the connections it has.
func TestMaxConnections(t *testing.T) {
	srv := newRecorder()
	s := startServer(t, srv, Options{MaxConnections: 2})
	first := dialRaw(t, s, "/")
	dialRaw(t, s, "/")
	srv.nextOpen(t)
	srv.nextOpen(t)
	_, err := Dial(context.Background(), wsURL(s, "/"), nil, Options{})
	if err == nil || !strings.Contains(err.Error(), "503") {
		t.Fatalf("third connection: %v, want a 503 refusal", err)
	}
	first.write(t, clientFrame(true, opText, []byte(`{"type":"ping"}`)))
	if got := srv.nextMsg(t); got != `{"type":"ping"}` {
		t.Fatalf("an admitted connection stopped working: %q", got)
	}
}

// burstRecorder is a recorder that also implements BurstEnder: ends gets
// the last message handled before each BurstEnd.
type burstRecorder struct {
	*recorder
	last string
	ends chan string
}

func (b *burstRecorder) Message(c *Conn, frame []byte) {
	b.last = string(frame)
	b.recorder.Message(c, frame)
}

func (b *burstRecorder) BurstEnd(*Conn) { b.ends <- b.last }

// More tells a handler whether the next message was read with the one it
// handles: true for every message of a burst but its last, whatever
// control frames and fragments lie between them. BurstEnd follows the last
// message read, also when that one is dropped (a blank frame).
func TestMoreTellsTheBurst(t *testing.T) {
	srv := &burstRecorder{recorder: newRecorder(), ends: make(chan string, 16)}
	more := make(chan bool, 16)
	srv.onMessage = func(c *Conn, _ []byte) { more <- c.More() }
	s := startServer(t, srv, Options{})
	r := dialRaw(t, s, "/")
	wantEnd := func(last string) {
		t.Helper()
		select {
		case got := <-srv.ends:
			if got != last {
				t.Fatalf("BurstEnd after %q, want after %q", got, last)
			}
		case <-time.After(waitLong):
			t.Fatalf("no BurstEnd after %q", last)
		}
		if len(srv.ends) != 0 {
			t.Fatalf("BurstEnd called again")
		}
	}
	expect := func(msgs ...string) {
		t.Helper()
		for i, want := range msgs {
			if got := srv.nextMsg(t); got != want {
				t.Fatalf("message %q, want %q", got, want)
			}
			if got := <-more; got != (i < len(msgs)-1) {
				t.Fatalf("More() during %q = %v", want, got)
			}
		}
	}

	r.write(t, clientFrame(true, opText, []byte("a")),
		clientFrame(true, opPing, nil),
		clientFrame(false, opText, []byte("b1")), clientFrame(true, opPing, nil), clientFrame(false, 0, []byte("b2")), clientFrame(true, 0, nil),
		clientFrame(true, opText, []byte("c")))
	expect("a", "b1b2", "c")
	wantEnd("c")

	// A blank frame is dropped, not handled; the burst still ends.
	r.write(t, clientFrame(true, opText, []byte("d")), clientFrame(true, opText, []byte("  ")))
	if got := srv.nextMsg(t); got != "d" {
		t.Fatalf("message %q, want d", got)
	}
	if !<-more {
		t.Fatal("More() during d, with a blank frame read behind it = false")
	}
	wantEnd("d")

	r.write(t, clientFrame(true, opText, []byte("e")))
	expect("e")
	wantEnd("e")
}
