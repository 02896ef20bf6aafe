package bench

import (
	"bytes"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/lxzan/gws"
)

// The raw baselines: the least a gws server must do to deliver the same
// frames. Neither decodes JSON.

// baseServer is a gws server on a free loopback port.
type baseServer struct {
	ln   net.Listener
	srv  *http.Server
	mu   sync.Mutex
	open map[*gws.Conn]struct{}
}

func startServer(h gws.Event) (*baseServer, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	b := &baseServer{ln: ln, open: map[*gws.Conn]struct{}{}}
	up := gws.NewUpgrader(h, &gws.ServerOption{})
	b.srv = &http.Server{ReadHeaderTimeout: 10 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		conn, err := up.Upgrade(w, r)
		if err != nil {
			return
		}
		b.mu.Lock()
		b.open[conn] = struct{}{}
		b.mu.Unlock()
		conn.ReadLoop()
		b.mu.Lock()
		delete(b.open, conn)
		b.mu.Unlock()
	})}
	go b.srv.Serve(ln)
	return b, nil
}

// url is the ws:// address clients dial.
func (b *baseServer) url() string { return "ws://" + b.ln.Addr().String() + "/" }

func (b *baseServer) close() {
	b.srv.Close()
	b.mu.Lock()
	for c := range b.open {
		c.NetConn().Close()
	}
	b.mu.Unlock()
}

// relay forwards callers' invokefunction frames, unchanged, to the
// connection that sent registerfunction, and routes each invocationresult
// back to the caller whose invocation id it carries.
type relay struct {
	gws.BuiltinEventHandler
	worker atomic.Pointer[gws.Conn]
	mu     sync.Mutex
	routes map[string]*gws.Conn // invocation id → caller
}

func newRelay() *relay { return &relay{routes: map[string]*gws.Conn{}} }

// OnMessage implements gws.Event.
func (r *relay) OnMessage(s *gws.Conn, m *gws.Message) {
	defer m.Close()
	b := m.Bytes()
	switch {
	case bytes.Contains(b, tagResult):
		id := field(b, "invocation_id")
		r.mu.Lock()
		to := r.routes[string(id)]
		delete(r.routes, string(id))
		r.mu.Unlock()
		if to != nil {
			_ = to.WriteMessage(gws.OpcodeText, b)
		}
	case bytes.Contains(b, tagInvoke):
		w := r.worker.Load()
		if w == nil {
			return
		}
		if id := field(b, "invocation_id"); id != nil {
			r.mu.Lock()
			r.routes[string(id)] = s
			r.mu.Unlock()
		}
		_ = w.WriteMessage(gws.OpcodeText, b)
	case bytes.Contains(b, tagRegisterFn):
		r.worker.Store(s)
	}
}

// broadcaster sends every invokefunction frame it receives, unchanged, to
// every connection that sent registerfunction (one gws.Broadcaster per
// frame: encoded once, queued on each connection's writer), and
// acknowledges it to the sender with an invocationresult. Subscribers'
// results are dropped.
type broadcaster struct {
	gws.BuiltinEventHandler
	mu   sync.RWMutex
	subs []*gws.Conn
	buf  []byte // acknowledgement scratch, guarded by mu's write lock
}

// OnMessage implements gws.Event.
func (br *broadcaster) OnMessage(s *gws.Conn, m *gws.Message) {
	defer m.Close()
	b := m.Bytes()
	switch {
	case bytes.Contains(b, tagResult):
	case bytes.Contains(b, tagInvoke):
		out := gws.NewBroadcaster(gws.OpcodeText, b)
		br.mu.RLock()
		for _, c := range br.subs {
			_ = out.Broadcast(c)
		}
		br.mu.RUnlock()
		// The frame was encoded (copied) by the first Broadcast; Close
		// frees it once every queued write has run.
		out.Close()
		if id := field(b, "invocation_id"); id != nil {
			br.mu.Lock()
			br.buf = append(br.buf[:0], `{"type":"invocationresult","invocation_id":"`...)
			br.buf = append(br.buf, id...)
			br.buf = append(br.buf, `","function_id":"stream::set","result":{}}`...)
			_ = s.WriteMessage(gws.OpcodeText, br.buf)
			br.mu.Unlock()
		}
	case bytes.Contains(b, tagRegisterFn):
		br.mu.Lock()
		br.subs = append(br.subs, s)
		br.mu.Unlock()
	}
}
