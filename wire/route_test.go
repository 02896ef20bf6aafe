package wire

import (
	"bytes"
	"context"
	"net/http"
	"sync/atomic"
	"testing"
	"time"
)

// frameRecorder is a FrameHandler: it records each frame with its opcode and
// may echo it back with the same opcode.
type frameRecorder struct {
	*recorder
	echo     bool
	messages atomic.Int32 // Message calls (must stay 0)
	frames   chan rawFrame
}

type rawFrame struct {
	binary  bool
	payload string
}

func newFrameRecorder(echo bool) *frameRecorder {
	return &frameRecorder{recorder: newRecorder(), echo: echo, frames: make(chan rawFrame, 1000)}
}

func (r *frameRecorder) Message(*Conn, []byte) { r.messages.Add(1) }

func (r *frameRecorder) Frame(c *Conn, binary bool, payload []byte) {
	r.frames <- rawFrame{binary, string(payload)}
	if !r.echo {
		return
	}
	if binary {
		_ = c.SendBinary(bytes.Clone(payload))
	} else {
		_ = c.Send(bytes.Clone(payload))
	}
}

func (r *frameRecorder) next(t *testing.T) rawFrame {
	t.Helper()
	select {
	case f := <-r.frames:
		return f
	case <-time.After(waitLong):
		t.Fatal("timed out waiting for a frame")
		return rawFrame{}
	}
}

func TestRoute(t *testing.T) {
	root := newRecorder()
	routed := newRecorder()
	var asked atomic.Int32
	s := startServer(t, root, Options{Telemetry: true, Route: func(path, rawQuery string) Handler {
		asked.Add(1)
		if path == "/ws/channels/c1" && rawQuery == "key=k%2F1&dir=read" {
			return routed
		}
		return nil
	}})
	for _, tt := range []struct {
		path   string
		status int // 101: upgraded, else the HTTP answer
		routed bool
	}{
		{"/ws/channels/c1?key=k%2F1&dir=read", 101, true},
		{"/ws/channels/c1?key=wrong&dir=read", 404, false},
		{"/ws/channels/c2?key=k%2F1&dir=read", 404, false},
		{"/elsewhere", 404, false},
		{"/", 101, false},
		{"/otel", 101, false},
	} {
		t.Run(tt.path, func(t *testing.T) {
			asked.Store(0)
			c, err := Dial(context.Background(), wsURL(s, tt.path), nil, Options{Logger: quietLogger()})
			if tt.status == 404 {
				if err == nil {
					t.Fatal("Dial succeeded, want a refusal")
				}
				resp, err := http.Get("http://" + s.Addr().String() + tt.path)
				if err != nil {
					t.Fatal(err)
				}
				_ = resp.Body.Close()
				if resp.StatusCode != http.StatusNotFound {
					t.Fatalf("GET = %d, want 404", resp.StatusCode)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close(CloseNormal, "")
			if tt.routed {
				sc := routed.nextOpen(t)
				if sc.Path() != "/ws/channels/c1" || sc.RawQuery() != "key=k%2F1&dir=read" {
					t.Fatalf("routed conn: path %q query %q", sc.Path(), sc.RawQuery())
				}
			} else if n := asked.Load(); n != 0 {
				t.Fatalf("Route consulted %d times for %s", n, tt.path)
			}
			if tt.path == "/" {
				root.nextOpen(t)
			}
		})
	}
	if n := len(root.opens) + len(routed.opens); n != 0 {
		t.Fatalf("%d unexpected Handler.Open calls", n)
	}
}

func TestFrameHandler(t *testing.T) {
	srv := newFrameRecorder(true)
	s := startServer(t, srv, Options{Route: func(string, string) Handler { return srv }})
	cli := newFrameRecorder(false)
	c := dial(t, s, "/raw", cli, Options{})

	big := bytes.Repeat([]byte{0xfe, 0x00}, bigFrame) // past bigFrame: written by reference
	sent := []rawFrame{
		{false, `{"hello":"text"}`},
		{true, "binary-bytes"},
		{true, "\xff\x00\x80 not UTF-8"},
		{true, `OTLP{"not":"drained here"}`},
		{false, ""},
		{true, ""},
		{false, " \n"},
		{true, string(big)},
	}
	for _, f := range sent {
		var err error
		if f.binary {
			err = c.SendBinary([]byte(f.payload))
		} else {
			err = c.Send([]byte(f.payload))
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	for i, want := range sent {
		if got := srv.next(t); got != want {
			t.Fatalf("server frame %d = binary %v, %d bytes; want binary %v, %d bytes", i, got.binary, len(got.payload), want.binary, len(want.payload))
		}
		if got := cli.next(t); got != want { // the echo keeps the opcode
			t.Fatalf("echoed frame %d = binary %v, %d bytes; want binary %v, %d bytes", i, got.binary, len(got.payload), want.binary, len(want.payload))
		}
	}
	if n := srv.messages.Load() + cli.messages.Load(); n != 0 {
		t.Fatalf("Message called %d times on a FrameHandler", n)
	}
}

func TestWaitSendQueue(t *testing.T) {
	// More than loopback socket buffers absorb, so the queue cannot drain
	// while the peer does not read.
	const frames, size = 512, 64 << 10
	payload := bytes.Repeat([]byte("q"), size)
	for _, tt := range []struct {
		name    string
		release func(t *testing.T, r *rawClient, c *Conn) // ends the wait
		want    error
	}{
		{"peer reads", func(t *testing.T, r *rawClient, _ *Conn) {
			for range frames {
				if op, p := r.readFrame(t); op != opBinary || len(p) != size {
					t.Fatalf("got op %x, %d bytes", op, len(p))
				}
			}
		}, nil},
		{"connection closes", func(_ *testing.T, _ *rawClient, c *Conn) { c.Close(CloseNormal, "") }, ErrClosed},
	} {
		t.Run(tt.name, func(t *testing.T) {
			srv := newRecorder()
			s := startServer(t, srv, Options{CloseTimeout: 200 * time.Millisecond})
			r := dialRaw(t, s, "/")
			c := srv.nextOpen(t)
			for range frames {
				if err := c.SendBinary(payload); err != nil {
					t.Fatal(err)
				}
			}
			result := make(chan error, 1)
			go func() { result <- c.WaitSendQueue(0) }()
			select {
			case err := <-result:
				t.Fatalf("WaitSendQueue returned %v while the peer read nothing", err)
			case <-time.After(50 * time.Millisecond):
			}
			select {
			case <-c.Done():
				t.Fatal("Done closed on an open connection")
			default:
			}
			tt.release(t, r, c)
			select {
			case err := <-result:
				if err != tt.want {
					t.Fatalf("WaitSendQueue = %v, want %v", err, tt.want)
				}
			case <-time.After(waitLong):
				t.Fatal("WaitSendQueue still blocked")
			}
			if tt.want == ErrClosed {
				select {
				case <-c.Done():
				default:
					t.Fatal("Done not closed after Close")
				}
			}
		})
	}
}
