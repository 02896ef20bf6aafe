package engine

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/iii-go/iii/internal/wstest"
	"github.com/iii-go/iii/wire"
)

const channelWait = 10 * time.Second

var discardLogger = slog.New(slog.DiscardHandler)

// channelPeer is a test client end: it records frames with their opcode and
// how the connection ended.
type channelPeer struct {
	frames chan channelFrame
	closed chan error
}

func newChannelPeer() *channelPeer {
	return &channelPeer{frames: make(chan channelFrame, 1000), closed: make(chan error, 1)}
}

func (p *channelPeer) Open(*wire.Conn)            {}
func (p *channelPeer) Message(*wire.Conn, []byte) {}
func (p *channelPeer) Frame(_ *wire.Conn, binary bool, b []byte) {
	p.frames <- channelFrame{binary, bytes.Clone(b)}
}
func (p *channelPeer) Close(_ *wire.Conn, err error) { p.closed <- err }

func (p *channelPeer) next(t *testing.T) channelFrame {
	t.Helper()
	select {
	case f := <-p.frames:
		return f
	case <-time.After(channelWait):
		t.Fatal("timed out waiting for a frame")
		return channelFrame{}
	}
}

// end waits for the connection's end and checks it was a close frame from
// the engine with code and reason.
func (p *channelPeer) end(t *testing.T, code uint16, reasonPart string) {
	t.Helper()
	select {
	case err := <-p.closed:
		var ce *wire.CloseError
		if !errors.As(err, &ce) || ce.Code != code || !ce.Remote || !strings.Contains(ce.Reason, reasonPart) {
			t.Fatalf("closed with %v, want remote close %d %q", err, code, reasonPart)
		}
	case <-time.After(channelWait):
		t.Fatal("timed out waiting for the close")
	}
}

func serveChannels(t *testing.T) (*channels, *wire.Server) {
	t.Helper()
	chs := newChannels(discardLogger, 0)
	srv, err := wire.Listen("127.0.0.1:0", newChannelPeer(), wire.Options{Route: chs.route, Logger: discardLogger})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Close() })
	return chs, srv
}

// channelURL builds the URL as the SDKs do.
func channelURL(srv *wire.Server, ref channelRef) string {
	return fmt.Sprintf("ws://%s%s%s?key=%s&dir=%s", srv.Addr(), channelPath, ref.ChannelID, url.QueryEscape(ref.AccessKey), ref.Direction)
}

func connectEnd(t *testing.T, srv *wire.Server, ref channelRef) (*wire.Conn, *channelPeer) {
	t.Helper()
	p := newChannelPeer()
	c, err := wire.Dial(context.Background(), channelURL(srv, ref), p, wire.Options{Logger: discardLogger})
	if err != nil {
		t.Fatalf("connect %s end: %v", ref.Direction, err)
	}
	t.Cleanup(func() { c.Close(wire.CloseNormal, "") })
	return c, p
}

// waitUntil polls cond.
func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(channelWait)
	for {
		if cond() {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting until %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// is evaluates f on the channel's state, under its lock.
func (c *channel) is(f func(c *channel) bool) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return f(c)
}

func lookupChannel(chs *channels, id string) *channel {
	chs.mu.Lock()
	defer chs.mu.Unlock()
	return chs.byID[id]
}

func sendFrame(t *testing.T, c *wire.Conn, f channelFrame) {
	t.Helper()
	var err error
	if f.binary {
		err = c.SendBinary(f.payload)
	} else {
		err = c.Send(f.payload)
	}
	if err != nil {
		t.Fatal(err)
	}
}

func wantChannelFrames(t *testing.T, p *channelPeer, want []channelFrame) {
	t.Helper()
	for i, w := range want {
		if got := p.next(t); got.binary != w.binary || !bytes.Equal(got.payload, w.payload) {
			t.Fatalf("frame %d = binary %v %q, want binary %v %q", i, got.binary, got.payload, w.binary, w.payload)
		}
	}
}

func TestChannelCreateBufferSize(t *testing.T) {
	e := &Engine{channels: newChannels(discardLogger, 0)}
	for _, tt := range []struct {
		data     string
		wantSize int
		wantErr  string
	}{
		{``, 64, ""},
		{`null`, 64, ""},
		{`{}`, 64, ""},
		{`{"buffer_size":null}`, 64, ""},
		{`{"buffer_size":0}`, 64, ""},
		{`{"buffer_size":1}`, 1, ""},
		{`{"buffer_size":1024}`, 1024, ""},
		{`{"buffer_size":100000,"_caller_worker_id":"w"}`, 1024, ""},
		{`{"buffer_size":-1}`, 0, codeDeserialization},
		{`{"buffer_size":"8"}`, 0, codeDeserialization},
	} {
		t.Run(tt.data, func(t *testing.T) {
			var data json.RawMessage // no data field at all
			if tt.data != "" {
				data = json.RawMessage(tt.data)
			}
			o := e.fnChannelsCreate(&builtinCall{e: e, data: data})
			if tt.wantErr != "" {
				if o.err == nil || o.err.Code != tt.wantErr {
					t.Fatalf("outcome %+v, want error %s", o, tt.wantErr)
				}
				return
			}
			var res struct{ Writer, Reader channelRef }
			if err := json.Unmarshal(o.result, &res); err != nil || !o.hasResult {
				t.Fatalf("result %s: %v", o.result, err)
			}
			w, r := res.Writer, res.Reader
			if w.Direction != "write" || r.Direction != "read" || w.ChannelID != r.ChannelID || w.AccessKey != r.AccessKey ||
				len(w.ChannelID) != 36 || len(w.AccessKey) < 26 || url.QueryEscape(w.AccessKey) != w.AccessKey {
				t.Fatalf("refs %+v %+v", w, r)
			}
			if c := lookupChannel(e.channels, w.ChannelID); c == nil || c.size != tt.wantSize {
				t.Fatalf("channel %+v, want size %d", c, tt.wantSize)
			}
		})
	}
}

func TestChannelRoute(t *testing.T) {
	chs, srv := serveChannels(t)
	w, r := chs.create(0, nil)
	_, other := chs.create(0, nil)
	connectEnd(t, srv, w) // the writer end is taken
	c := lookupChannel(chs, w.ChannelID)
	waitUntil(t, "the writer is claimed", func() bool { return c.is(func(c *channel) bool { return c.writerSeen }) })
	for _, tt := range []struct {
		name, path string
	}{
		{"second writer", channelPath + w.ChannelID + "?key=" + w.AccessKey + "&dir=write"},
		{"wrong key", channelPath + r.ChannelID + "?key=" + other.AccessKey + "&dir=read"},
		{"no key", channelPath + r.ChannelID + "?dir=read"},
		{"unknown id", channelPath + newUUID() + "?key=" + r.AccessKey + "&dir=read"},
		{"bad dir", channelPath + r.ChannelID + "?key=" + r.AccessKey + "&dir=both"},
		{"no dir", channelPath + r.ChannelID + "?key=" + r.AccessKey},
		{"sub-path", channelPath + r.ChannelID + "/x?key=" + r.AccessKey + "&dir=read"},
		{"other prefix", "/ws/channel/" + r.ChannelID + "?key=" + r.AccessKey + "&dir=read"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			resp, err := http.Get("http://" + srv.Addr().String() + tt.path)
			if err != nil {
				t.Fatal(err)
			}
			_ = resp.Body.Close()
			if resp.StatusCode != http.StatusNotFound {
				t.Fatalf("GET %s = %d, want 404", tt.path, resp.StatusCode)
			}
		})
	}
	// A plain GET does not use up the reader end; the upgrade still works.
	connectEnd(t, srv, r)
}

func TestChannelRelay(t *testing.T) {
	chs, srv := serveChannels(t)
	w, r := chs.create(0, nil)
	writer, _ := connectEnd(t, srv, w)
	before := []channelFrame{
		{false, []byte(`{"hello":"text"}`)},
		{true, []byte("binary-bytes")},
		{true, []byte("\xff\x00 not UTF-8")},
		{false, []byte("")},
	}
	for _, f := range before {
		sendFrame(t, writer, f)
	}
	// Buffered while no reader is connected.
	c := lookupChannel(chs, w.ChannelID)
	waitUntil(t, "4 frames are buffered", func() bool { return c.is(func(c *channel) bool { return len(c.buf) == 4 }) })

	_, reader := connectEnd(t, srv, r)
	wantChannelFrames(t, reader, before)
	after := []channelFrame{{true, bytes.Repeat([]byte{0, 1, 2}, 50000)}, {false, []byte("last")}}
	for _, f := range after {
		sendFrame(t, writer, f)
	}
	writer.Close(wire.CloseNormal, closeChannel)
	wantChannelFrames(t, reader, after)
	reader.end(t, wire.CloseNormal, closeChannel)
	waitUntil(t, "the channel is forgotten", func() bool { return lookupChannel(chs, w.ChannelID) == nil })
}

func TestChannelWriterFinishedBeforeReader(t *testing.T) {
	chs, srv := serveChannels(t)
	w, r := chs.create(0, nil)
	writer, wp := connectEnd(t, srv, w)
	sendFrame(t, writer, channelFrame{false, []byte("only")})
	writer.Close(wire.CloseNormal, "stream_complete")
	<-wp.closed
	c := lookupChannel(chs, w.ChannelID)
	waitUntil(t, "the writer has left", func() bool { return c.is(func(c *channel) bool { return c.writerGone }) })
	_, reader := connectEnd(t, srv, r)
	wantChannelFrames(t, reader, []channelFrame{{false, []byte("only")}})
	reader.end(t, wire.CloseNormal, closeChannel)
}

func TestChannelBackpressure(t *testing.T) {
	chs, srv := serveChannels(t)
	w, r := chs.create(2, nil)
	writer, wp := connectEnd(t, srv, w)
	var sent []channelFrame
	for i := range 200 {
		f := channelFrame{i%2 == 1, fmt.Appendf(nil, "frame %d", i)}
		sent = append(sent, f)
		sendFrame(t, writer, f)
	}
	c := lookupChannel(chs, w.ChannelID)
	full := func() bool { return c.is(func(c *channel) bool { return len(c.buf) == 2 }) }
	waitUntil(t, "the buffer is full", full)
	time.Sleep(50 * time.Millisecond)
	if !full() {
		t.Fatal("the buffer grew past its size 2 (the rest must wait in the writer's socket)")
	}
	select {
	case err := <-wp.closed:
		t.Fatalf("writer closed while the reader was not there yet: %v", err)
	default:
	}
	_, reader := connectEnd(t, srv, r)
	writer.Close(wire.CloseNormal, closeChannel)
	wantChannelFrames(t, reader, sent)
	reader.end(t, wire.CloseNormal, closeChannel)
}

func TestChannelReaderCloses(t *testing.T) {
	chs, srv := serveChannels(t)
	w, r := chs.create(0, nil)
	writer, wp := connectEnd(t, srv, w)
	reader, rp := connectEnd(t, srv, r)
	sendFrame(t, writer, channelFrame{false, []byte("x")})
	wantChannelFrames(t, rp, []channelFrame{{false, []byte("x")}})
	reader.Close(wire.CloseNormal, closeChannel)
	wp.end(t, wire.CloseNormal, closeChannel)
	if lookupChannel(chs, w.ChannelID) != nil {
		t.Fatal("channel still listed after its reader left")
	}
}

func TestChannelWriterVanishes(t *testing.T) {
	chs, srv := serveChannels(t)
	w, r := chs.create(0, nil)
	_, reader := connectEnd(t, srv, r)

	// A writer that sends one frame and drops the TCP connection without a
	// close frame: the reader gets the frame, then 1011 (truncated stream).
	nc, err := wstest.Dial(srv.Addr().String(), fmt.Sprintf("%s?key=%s&dir=write", channelPath+w.ChannelID, w.AccessKey))
	if err != nil {
		t.Fatal(err)
	}
	_, _ = nc.Write([]byte{0x82, 0x80 | 4, 0, 0, 0, 0, 'p', 'a', 'r', 't'}) // binary "part", zero mask
	_ = nc.Close()
	wantChannelFrames(t, reader, []channelFrame{{true, []byte("part")}})
	reader.end(t, closeWriterFailed, "without closing")
}

func TestChannelSweep(t *testing.T) {
	chs, srv := serveChannels(t)
	w1, _ := chs.create(0, nil) // writer connected, reader never
	_, r2 := chs.create(0, nil) // nobody connected
	w3, r3 := chs.create(0, nil)
	_, wp := connectEnd(t, srv, w1)
	connectEnd(t, srv, w3)
	connectEnd(t, srv, r3)
	c1, c3 := lookupChannel(chs, w1.ChannelID), lookupChannel(chs, w3.ChannelID)
	waitUntil(t, "the ends are claimed", func() bool {
		return c1.is(func(c *channel) bool { return c.writerSeen }) && c3.is(func(c *channel) bool { return c.writerSeen && c.readerSeen })
	})

	chs.sweep(time.Now().Add(channelTTL - time.Second))
	for _, ref := range []channelRef{w1, r2, w3} {
		if lookupChannel(chs, ref.ChannelID) == nil {
			t.Fatal("a channel was swept before its time")
		}
	}
	chs.sweep(time.Now().Add(channelTTL))
	wp.end(t, wire.CloseGoingAway, "expired")
	for _, tt := range []struct {
		ref  channelRef
		kept bool
	}{{w1, false}, {r2, false}, {w3, true}} {
		if kept := lookupChannel(chs, tt.ref.ChannelID) != nil; kept != tt.kept {
			t.Errorf("channel %s kept=%v, want %v", tt.ref.ChannelID, kept, tt.kept)
		}
	}
	if _, err := wire.Dial(context.Background(), channelURL(srv, r2), nil, wire.Options{Logger: discardLogger}); err == nil {
		t.Fatal("connected to a swept channel")
	}
}

func TestChannelServerCloseWhileWriterWaits(t *testing.T) {
	chs := newChannels(discardLogger, 0)
	srv, err := wire.Listen("127.0.0.1:0", newChannelPeer(), wire.Options{Route: chs.route, Logger: discardLogger})
	if err != nil {
		t.Fatal(err)
	}
	w, _ := chs.create(1, nil)
	writer, _ := connectEnd(t, srv, w)
	for range 5 {
		sendFrame(t, writer, channelFrame{false, []byte("wait")})
	}
	c := lookupChannel(chs, w.ChannelID)
	waitUntil(t, "the buffer is full", func() bool { return c.is(func(c *channel) bool { return len(c.buf) == 1 }) })
	done := make(chan error, 1)
	go func() { done <- srv.Close() }()
	select {
	case <-done:
	case <-time.After(channelWait):
		t.Fatal("Server.Close blocked by a writer waiting for its reader")
	}
}
