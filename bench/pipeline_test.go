package bench

import (
	"bytes"
	"io"
	"net"
	"testing"
)

// TestPipeConn checks the burst accounting a pipelined client relies on:
// handshake bytes are not frames, a frame is the last of its burst only
// when nothing more was read, and frames written during a burst reach the
// socket together when it ends.
func TestPipeConn(t *testing.T) {
	client, server := net.Pipe()
	defer client.Close()
	defer server.Close()
	p := &pipeConn{Conn: client}

	small := append([]byte{0x81, 5}, "hello"...)                     // 2-byte header
	large := append([]byte{0x81, 126, 0, 200}, make([]byte, 200)...) // 4-byte header
	sent := append([]byte("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n"), small...)
	sent = append(sent, large...)
	go server.Write(sent)
	got := make([]byte, len(sent))
	if _, err := io.ReadFull(p, got); err != nil {
		t.Fatal(err)
	}
	if want := int64(len(small) + len(large)); p.read != want {
		t.Fatalf("frame bytes read = %d, want %d (the handshake is not counted)", p.read, want)
	}

	if p.begin(5) {
		t.Fatal("the first of two frames read counts as the last of its burst")
	}
	if _, err := p.Write([]byte("one ")); err != nil {
		t.Fatal(err)
	}
	if err := p.end(false); err != nil {
		t.Fatal(err)
	}
	last := p.begin(200)
	if !last {
		t.Fatal("the second of two frames read is not the last of its burst")
	}
	if _, err := p.Write([]byte("two")); err != nil {
		t.Fatal(err)
	}
	written := make(chan []byte)
	go func() {
		b := make([]byte, 64)
		n, _ := server.Read(b) // net.Pipe: one Read returns (part of) one Write
		written <- b[:n]
	}()
	if err := p.end(last); err != nil {
		t.Fatal(err)
	}
	if b := <-written; !bytes.Equal(b, []byte("one two")) {
		t.Fatalf("socket got %q, want both held writes in one", b)
	}
	if p.hold {
		t.Fatal("writes are still held after the burst ended")
	}
}
