package wire

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// rawUpgrade sends one upgrade request (with an Origin header when origin is
// not "") and returns the response status and body. For a refusal it also
// checks that the server closes the socket.
func rawUpgrade(t *testing.T, s *Server, path, origin string) (int, string) {
	t.Helper()
	nc, err := net.Dial("tcp", s.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	_ = nc.SetDeadline(time.Now().Add(waitLong))
	hdr := ""
	if origin != "" {
		hdr = "Origin: " + origin + "\r\n"
	}
	fmt.Fprintf(nc, "GET %s HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n%s\r\n", path, hdr)
	br := bufio.NewReader(nc)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatalf("%s: read response: %v", path, err)
	}
	if resp.StatusCode == http.StatusSwitchingProtocols {
		return resp.StatusCode, ""
	}
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s: read body: %v", path, err)
	}
	if n, err := br.Read(make([]byte, 1)); n != 0 || err != io.EOF {
		t.Fatalf("%s: after the %d response: read %d bytes, %v; want EOF", path, resp.StatusCode, n, err)
	}
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/plain") {
		t.Errorf("%s: Content-Type %q, want text/plain", path, ct)
	}
	return resp.StatusCode, string(body)
}

func withOrigin(origin string) Options {
	return Options{Header: http.Header{"Origin": {origin}}}
}

func TestAllowOrigin(t *testing.T) {
	root := newRecorder()
	routed := newRecorder()
	var routeCalls, checks atomic.Int32
	allow := OriginList([]string{"http://localhost:5173", "https://app.example/"})
	s := startServer(t, root, Options{
		Telemetry: true,
		AllowOrigin: func(origin string) bool {
			checks.Add(1)
			return allow(origin)
		},
		Route: func(path, _ string) Handler {
			routeCalls.Add(1)
			if path == "/ch" {
				return routed
			}
			return nil
		},
	})

	// Refused origins get 403 on every path, before routing.
	const evil = "https://evil.example"
	for _, path := range []string{"/", "/?token=t", "/otel", "/ch", "/nosuch"} {
		status, body := rawUpgrade(t, s, path, evil)
		if status != http.StatusForbidden || !strings.Contains(body, `origin "https://evil.example" is not allowed`) {
			t.Errorf("%s with Origin %s: %d %q, want 403 naming the origin", path, evil, status, body)
		}
	}
	if _, err := Dial(context.Background(), wsURL(s, "/"), nil, withOrigin("http://localhost:5174")); err == nil {
		t.Error("Dial with an unlisted Origin succeeded")
	}
	if n := routeCalls.Load(); n != 0 {
		t.Errorf("Route called %d times for refused origins", n)
	}

	// No Origin header: accepted without asking AllowOrigin.
	before := checks.Load()
	dial(t, s, "/", nil, Options{})
	root.nextOpen(t)
	if status, _ := rawUpgrade(t, s, "/", ""); status != http.StatusSwitchingProtocols {
		t.Errorf("upgrade without Origin: %d, want 101", status)
	}
	root.nextOpen(t)
	if n := checks.Load() - before; n != 0 {
		t.Errorf("AllowOrigin called %d times for requests without Origin", n)
	}

	// Listed origins, in any case and with or without the trailing slash.
	for _, o := range []string{"http://localhost:5173", "HTTP://LocalHost:5173/", "https://app.example"} {
		dial(t, s, "/", nil, withOrigin(o))
		root.nextOpen(t)
	}
	dial(t, s, "/ch", nil, withOrigin("https://app.example"))
	routed.nextOpen(t)
	dial(t, s, "/otel", nil, withOrigin("https://app.example"))

	// Handler.Open ran only for the accepted connections, each read above.
	if n, m := len(root.opens), len(routed.opens); n != 0 || m != 0 {
		t.Fatalf("Handler.Open ran %d+%d more times than accepted upgrades", n, m)
	}
}

func TestAllowOriginNil(t *testing.T) {
	srv := newRecorder()
	s := startServer(t, srv, Options{})
	dial(t, s, "/", nil, withOrigin("https://evil.example"))
	srv.nextOpen(t)
	if status, _ := rawUpgrade(t, s, "/", "null"); status != http.StatusSwitchingProtocols {
		t.Fatalf("upgrade with Origin null and no AllowOrigin: %d, want 101", status)
	}
	srv.nextOpen(t)
}

func TestOriginList(t *testing.T) {
	tests := []struct {
		allowed []string
		origin  string
		want    bool
	}{
		{[]string{"http://localhost:5173"}, "http://localhost:5173", true},
		{[]string{"http://localhost:5173"}, "http://LOCALHOST:5173", true},
		{[]string{"http://localhost:5173/"}, "http://localhost:5173", true},
		{[]string{" http://localhost:5173 "}, "http://localhost:5173/", true},
		{[]string{"http://localhost:5173"}, "http://localhost:5174", false},
		{[]string{"http://localhost:5173"}, "https://localhost:5173", false},
		{[]string{"http://localhost:5173"}, "http://localhost:5173.evil.example", false},
		{[]string{"http://localhost:5173"}, "http://localhost", false},
		{[]string{"http://localhost:5173"}, "null", false},
		{[]string{"null"}, "null", true},
		{[]string{"http://a.example", "*"}, "https://anything.example", true},
		{[]string{"*"}, "null", true},
		{nil, "http://localhost:5173", false},
		{[]string{}, "", false},
		{[]string{""}, "", false},
	}
	for _, tt := range tests {
		if got := OriginList(tt.allowed)(tt.origin); got != tt.want {
			t.Errorf("OriginList(%q)(%q) = %v, want %v", tt.allowed, tt.origin, got, tt.want)
		}
	}
	// The list is copied.
	l := []string{"http://a.example"}
	f := OriginList(l)
	l[0] = "http://b.example"
	if !f("http://a.example") || f("http://b.example") {
		t.Error("OriginList does not copy its list")
	}
}
