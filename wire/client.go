package wire

import (
	"context"
	"fmt"
	"net"
	"net/url"
	"time"

	"github.com/lxzan/gws"
)

// Dial opens a client connection to a ws:// URL (wss is not supported) and
// returns once h.Open has returned. The Conn behaves as on the server side: the
// same Handler contract, bounded send queue, keepalive and size limit; a nil h
// discards inbound frames. Options.Header adds request headers,
// HandshakeTimeout bounds the TCP dial and the upgrade; Telemetry is ignored.
// Cancelling ctx aborts the handshake, not the connection once established.
func Dial(ctx context.Context, rawURL string, h Handler, opts Options) (*Conn, error) {
	o := opts.withDefaults()
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, fmt.Errorf("wire: dial %s: %w", rawURL, err)
	}
	if u.Scheme != "ws" {
		return nil, fmt.Errorf("wire: dial %s: unsupported scheme %q (want ws)", rawURL, u.Scheme)
	}
	host := u.Hostname()
	if host == "" {
		host = "127.0.0.1"
	}
	port := u.Port()
	if port == "" {
		port = "80"
	}
	ctx, cancel := context.WithTimeout(ctx, o.HandshakeTimeout)
	defer cancel()
	var d net.Dialer
	nc, err := d.DialContext(ctx, "tcp", net.JoinHostPort(host, port))
	if err != nil {
		return nil, fmt.Errorf("wire: dial %s: %w", rawURL, err)
	}
	// Cancelling ctx aborts a handshake in progress.
	stop := context.AfterFunc(ctx, func() { _ = nc.SetDeadline(time.Unix(1, 0)) })
	g := newFrameGuard(nc, o.MaxMessageBytes)
	ws, resp, err := gws.NewClientFromConn(connEvents{}, &gws.ClientOption{
		Addr:               rawURL,
		RequestHeader:      o.Header.Clone(),
		HandshakeTimeout:   o.HandshakeTimeout,
		ReadMaxPayloadSize: o.MaxMessageBytes,
		CheckUtf8Enabled:   true,
		NewSession:         newConnSession,
		Logger:             gwsLogger{o.Logger},
	}, &guardedConn{Conn: nc, g: g})
	if !stop() && err == nil {
		err = ctx.Err() // cancelled right after the handshake: the deadline is poisoned
	}
	if err != nil {
		_ = nc.Close()
		if ctx.Err() != nil {
			err = ctx.Err()
		}
		return nil, fmt.Errorf("wire: dial %s: %w", rawURL, err)
	}
	c := newConn(nc, g, o, h, true)
	c.ws = ws
	c.header, c.path, c.rawQuery = resp.Header, u.Path, u.RawQuery
	ws.Session().(*connSession).c = c
	c.start()
	go ws.ReadLoop()
	<-c.opened
	return c, nil
}
