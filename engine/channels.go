package engine

import (
	"bytes"
	"crypto/rand"
	"crypto/subtle"
	"errors"
	"log/slog"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/iii-go/iii/wire"
)

// Data channels (docs/wire-protocol.md#data-channels): engine::channels::create
// makes a one-way pipe; the writer and the reader each open one WebSocket to
// /ws/channels/<id>?key=<access_key>&dir=write|read on a worker listener, and
// every frame the writer sends reaches the reader in order with its opcode.
const (
	channelBufferDefault = 64   // frames, as upstream
	channelBufferMax     = 1024 // frames; larger requests are clamped to it
	// channelBytesDefault bounds the bytes a channel buffers when the config
	// does not say (engine.channel_buffer_bytes).
	channelBytesDefault = 4 << 20
	// channelTTL: a channel with an end that never connected is dropped this
	// long after its creation (upstream drops them 5 to 6 minutes after
	// creation: sweep every minute).
	channelTTL  = 5 * time.Minute
	channelPath = "/ws/channels/"
	// closeChannel is the reason the SDKs put on a channel's normal close.
	closeChannel = "channel_close"
	// closeWriterFailed (1011) tells the reader its stream may be truncated.
	closeWriterFailed uint16 = 1011
)

// channelRef is one end of a channel as engine::channels::create returns it
// and the SDKs pass it around.
type channelRef struct {
	ChannelID string `json:"channel_id"`
	AccessKey string `json:"access_key"`
	Direction string `json:"direction"` // "write" or "read"
}

// channels is the engine's table of live data channels.
type channels struct {
	logger   *slog.Logger
	maxBytes int // per channel, see channel.push

	mu   sync.Mutex // taken before any channel.mu
	byID map[string]*channel
}

// newChannels makes the table; maxBytes bounds what each channel buffers
// (≤ 0: 4 MiB).
func newChannels(logger *slog.Logger, maxBytes int) *channels {
	if maxBytes <= 0 {
		maxBytes = channelBytesDefault
	}
	return &channels{logger: logger, maxBytes: maxBytes, byID: map[string]*channel{}}
}

// channel is one pipe. Frames from the writer wait in buf until the pump (a
// goroutine that runs while the reader is connected) hands them to the
// reader's send queue. Both stages hold at most size frames, so a writer
// that outpaces its reader, or writes before the reader came, is no longer
// read once they are full: the writer SDKs wait for each send to complete
// (Node's Writable stream), so it slows down instead of losing data, as with
// upstream's bounded queue. buf is bounded in bytes too (maxBytes), so a
// writer of huge frames is held back just the same.
type channel struct {
	id, key  string
	size     int
	maxBytes int
	created  time.Time
	owner    *session // the untrusted session that created it, or nil

	mu         sync.Mutex
	writerSeen bool       // the writer end was claimed (it may have left since)
	readerSeen bool       // the same for the reader end
	writer     *wire.Conn // connected writer, nil before and after
	buf        []channelFrame
	bytes      int    // payload bytes in buf
	writerGone bool   // the writer left: the reader gets buf, then the close below
	endCode    uint16 // the reader's close once buf is drained, or once closed
	endReason  string
	closed     bool          // the channel is over: buf dropped, no new connections
	space      chan struct{} // made by a writer waiting for room in buf; closed when there is some
	data       chan struct{} // wakes the pump: a frame arrived or the writer left
}

type channelFrame struct {
	binary  bool
	payload []byte
}

// create makes a channel with room for bufferSize frames (≤ 0: the default;
// more than the maximum: the maximum). Both ends share its id and access key
// and differ in direction, as in the captured engine answers. owner is the
// untrusted session creating it (nil otherwise): its count of open channels
// goes up until the channel ends, and the channel ends with it.
func (ch *channels) create(bufferSize int, owner *session) (writer, reader channelRef) {
	if bufferSize <= 0 {
		bufferSize = channelBufferDefault
	}
	c := &channel{
		id:       newUUID(),
		key:      rand.Text(), // 128 random bits, base32: URL-safe as is
		size:     min(bufferSize, channelBufferMax),
		maxBytes: ch.maxBytes,
		created:  time.Now(),
		owner:    owner,
		data:     make(chan struct{}, 1),
	}
	if owner != nil {
		owner.openChannels.Add(1)
	}
	ch.mu.Lock()
	ch.byID[c.id] = c
	ch.mu.Unlock()
	ch.logger.Debug("channel created", "channel_id", c.id, "buffer_size", c.size)
	return channelRef{c.id, c.key, "write"}, channelRef{c.id, c.key, "read"}
}

// route is the worker listeners' wire.Options.Route: a channel URL with the
// right key and a direction whose end has not connected yet gets a Handler;
// anything else is nil, an HTTP 404 before the upgrade.
func (ch *channels) route(path, rawQuery string) wire.Handler {
	id, ok := strings.CutPrefix(path, channelPath)
	if !ok {
		return nil
	}
	q, err := url.ParseQuery(rawQuery)
	if err != nil {
		return nil
	}
	dir := q.Get("dir")
	if dir != "read" && dir != "write" {
		return nil
	}
	ch.mu.Lock()
	c := ch.byID[id]
	ch.mu.Unlock()
	if c == nil || subtle.ConstantTimeCompare([]byte(q.Get("key")), []byte(c.key)) != 1 {
		return nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed || dir == "write" && c.writerSeen || dir == "read" && c.readerSeen {
		return nil
	}
	return &channelEnd{chs: ch, c: c, write: dir == "write"}
}

// sweep drops the channels created more than channelTTL before now with an
// end that never connected, closing the end that did.
func (ch *channels) sweep(now time.Time) {
	if n := ch.drop(func(c *channel) bool { return now.Sub(c.created) >= channelTTL }, "channel expired: the other end never connected"); n > 0 {
		ch.logger.Debug("channels expired", "count", n)
	}
}

// endOwnedBy ends the channels an untrusted session created that are not
// connected at both ends, when the session leaves: what they buffer is
// released now, not by the sweep.
func (ch *channels) endOwnedBy(s *session) {
	ch.drop(func(c *channel) bool { return c.owner == s }, "channel dropped: the session that created it disconnected")
}

// drop ends (1001, reason) and forgets every channel with an end that never
// connected for which match, called under the channel's lock, is true. It
// returns how many it dropped.
func (ch *channels) drop(match func(c *channel) bool, reason string) int {
	var doomed []*channel
	ch.mu.Lock()
	for id, c := range ch.byID {
		c.mu.Lock()
		if (!c.writerSeen || !c.readerSeen) && match(c) {
			doomed = append(doomed, c)
			delete(ch.byID, id)
		}
		c.mu.Unlock()
	}
	ch.mu.Unlock()
	for _, c := range doomed {
		c.end(wire.CloseGoingAway, reason)
	}
	return len(doomed)
}

// forget removes a finished channel from the table.
func (ch *channels) forget(c *channel) {
	ch.mu.Lock()
	if ch.byID[c.id] == c {
		delete(ch.byID, c.id)
	}
	ch.mu.Unlock()
}

// end closes the channel: buffered frames are dropped, a writer waiting for
// room returns, and both connected ends are closed with code and reason (the
// reader by its pump).
func (c *channel) end(code uint16, reason string) {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return
	}
	c.closed = true
	c.endCode, c.endReason = code, reason
	c.buf, c.bytes = nil, 0
	if c.owner != nil {
		c.owner.openChannels.Add(-1)
	}
	if c.space != nil {
		close(c.space)
		c.space = nil
	}
	w := c.writer
	c.mu.Unlock()
	c.wake()
	if w != nil {
		w.Close(code, reason)
	}
}

func (c *channel) wake() {
	select {
	case c.data <- struct{}{}:
	default:
	}
}

// push appends a writer's frame, waiting while buf is full (size frames, or
// maxBytes; a frame larger than maxBytes passes alone into an empty buf). It
// gives up, reporting false, when the channel ends or done closes (the
// writer's connection: Server.Close must not wait for a reader that may
// never come).
func (c *channel) push(done <-chan struct{}, f channelFrame) bool {
	c.mu.Lock()
	for (len(c.buf) >= c.size || len(c.buf) > 0 && c.bytes+len(f.payload) > c.maxBytes) && !c.closed {
		if c.space == nil {
			c.space = make(chan struct{})
		}
		space := c.space
		c.mu.Unlock()
		select {
		case <-space:
		case <-done:
			return false
		}
		c.mu.Lock()
	}
	if c.closed {
		c.mu.Unlock()
		return false
	}
	c.buf = append(c.buf, f)
	c.bytes += len(f.payload)
	c.mu.Unlock()
	c.wake()
	return true
}

// next takes the next frame for the reader, waiting for one. ok is false
// once the writer has left and buf is drained, or the channel ended (ended
// true: close the reader with endCode/endReason), or when done closes first
// (ended false).
func (c *channel) next(done <-chan struct{}) (f channelFrame, ok, ended bool) {
	c.mu.Lock()
	for len(c.buf) == 0 && !c.writerGone && !c.closed {
		c.mu.Unlock()
		select {
		case <-c.data:
		case <-done:
			return channelFrame{}, false, false
		}
		c.mu.Lock()
	}
	if len(c.buf) == 0 { // the writer has left, or the channel ended
		c.mu.Unlock()
		return channelFrame{}, false, true
	}
	f = c.buf[0]
	c.buf[0] = channelFrame{}
	c.buf = c.buf[1:]
	c.bytes -= len(f.payload)
	if c.space != nil {
		close(c.space)
		c.space = nil
	}
	c.mu.Unlock()
	return f, true, false
}

// pump moves frames from buf to the reader, keeping at most size frames in
// its send queue, and closes the reader once the writer has left and buf is
// empty, or the channel ended.
func (c *channel) pump(r *wire.Conn) {
	for {
		f, ok, ended := c.next(r.Done())
		if !ok {
			if ended {
				c.mu.Lock()
				code, reason := c.endCode, c.endReason
				c.mu.Unlock()
				r.Close(code, reason)
			}
			return
		}
		if r.WaitSendQueue(c.size-1) != nil {
			return
		}
		send := r.Send
		if f.binary {
			send = r.SendBinary
		}
		if send(f.payload) != nil {
			return
		}
	}
}

// The engine as one end of a channel: the HTTP module writes a request's
// body into one and reads a streamed response out of another, while the
// worker holds the other end over its WebSocket.

// local creates a channel whose writer (engineWrites) or reader end the
// engine itself holds, and returns the ref for the worker's end.
func (ch *channels) local(engineWrites bool) (*channel, channelRef) {
	w, r := ch.create(0, nil)
	ch.mu.Lock()
	c := ch.byID[w.ChannelID]
	ch.mu.Unlock()
	c.mu.Lock()
	if engineWrites {
		c.writerSeen = true
	} else {
		c.readerSeen = true
	}
	c.mu.Unlock()
	if engineWrites {
		return c, r
	}
	return c, w
}

// finishWriting ends the engine's writing: the reader gets what is
// buffered, then a normal close.
func (c *channel) finishWriting() {
	c.mu.Lock()
	if !c.closed {
		c.writerGone = true
		c.endCode, c.endReason = wire.CloseNormal, closeChannel
	}
	c.mu.Unlock()
	c.wake()
}

// channelEnd is the wire.Handler of one connected end.
type channelEnd struct {
	chs     *channels
	c       *channel
	write   bool
	claimed bool // this connection holds the end (set in Open)
}

// Open claims the end. route already checked it was free; a concurrent
// connection for the same end that got past route too is refused here.
func (h *channelEnd) Open(conn *wire.Conn) {
	c := h.c
	c.mu.Lock()
	seen := &c.readerSeen
	if h.write {
		seen = &c.writerSeen
	}
	if c.closed || *seen {
		c.mu.Unlock()
		conn.Close(wire.ClosePolicy, "channel end already connected or closed")
		return
	}
	*seen, h.claimed = true, true
	if h.write {
		c.writer = conn
	}
	c.mu.Unlock()
	if !h.write {
		go c.pump(conn)
	}
}

// Message is never called: channelEnd is a wire.FrameHandler.
func (h *channelEnd) Message(*wire.Conn, []byte) {}

// Frame relays the writer's frames; the reader's are ignored.
func (h *channelEnd) Frame(conn *wire.Conn, binary bool, payload []byte) {
	if h.write && h.claimed {
		h.c.push(conn.Done(), channelFrame{binary, bytes.Clone(payload)})
	}
}

// Close: when the writer leaves, the reader gets what is buffered and then
// 1000 channel_close (1011 if the writer vanished without a close frame or we
// closed it, since the data may be truncated). When the reader leaves, the
// channel is over and the writer is closed.
func (h *channelEnd) Close(conn *wire.Conn, err error) {
	if !h.claimed {
		return
	}
	c := h.c
	if !h.write {
		h.chs.forget(c)
		c.end(wire.CloseNormal, closeChannel)
		return
	}
	code, reason := wire.CloseNormal, closeChannel
	var ce *wire.CloseError
	switch {
	case errors.As(err, &ce) && ce.Remote:
	case ce != nil:
		code, reason = closeWriterFailed, "channel writer closed by the engine: "+ce.Reason
	default:
		code, reason = closeWriterFailed, "channel writer disconnected without closing"
	}
	c.mu.Lock()
	c.writer = nil
	if !c.closed { // else the channel's own ending stands
		c.writerGone = true
		c.endCode, c.endReason = code, reason
	}
	c.mu.Unlock()
	c.wake()
}

// fnChannelsCreate is engine::channels::create {buffer_size?}.
func (e *Engine) fnChannelsCreate(c *builtinCall) callOutcome {
	var in struct {
		BufferSize uint `json:"buffer_size"` // negative or fractional: deserialization_error
	}
	if o := c.decode("engine::channels::create", &in); o != nil {
		return *o
	}
	var owner *session
	if c.caller != nil && c.caller.grants != nil {
		owner = c.caller
		if n, max := int(owner.openChannels.Load()), e.cfg.Engine.ChannelsPerSession; n >= max {
			return failure(codeLimitExceeded, "engine::channels::create: this session has "+strconv.Itoa(n)+
				" open channels, the most an untrusted session may have (engine.channels_per_session)")
		}
	}
	w, r := e.channels.create(int(min(in.BufferSize, channelBufferMax)), owner)
	return marshalResult(struct {
		Writer channelRef `json:"writer"`
		Reader channelRef `json:"reader"`
	}{w, r})
}
