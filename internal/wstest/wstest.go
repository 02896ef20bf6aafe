// Package wstest speaks WebSocket by hand, for tests that need what a
// client library does not do: several frames leaving in one write, frames
// that break the rules, a peer that never answers.
package wstest

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
)

// Conn is a client connection after the upgrade, with no library behind it.
type Conn struct {
	net.Conn
	R *bufio.Reader // reads after the upgrade response
}

// Dial connects to addr (host:port) and upgrades path.
func Dial(addr, path string) (*Conn, error) {
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		return nil, err
	}
	fmt.Fprintf(nc, "GET %s HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n", path)
	r := bufio.NewReader(nc)
	resp, err := http.ReadResponse(r, nil)
	if err == nil && resp.StatusCode != http.StatusSwitchingProtocols {
		err = fmt.Errorf("upgrade answered %s", resp.Status)
	}
	if err != nil {
		nc.Close()
		return nil, fmt.Errorf("wstest: upgrade %s: %w", path, err)
	}
	return &Conn{Conn: nc, R: r}, nil
}

// ReadFrame reads one frame from the server, which must not be masked.
func (c *Conn) ReadFrame() (op byte, payload []byte, err error) {
	var h [2]byte
	if _, err := io.ReadFull(c.R, h[:]); err != nil {
		return 0, nil, err
	}
	n := uint64(h[1] & 0x7f)
	switch n {
	case 126:
		var l [2]byte
		_, err = io.ReadFull(c.R, l[:])
		n = uint64(binary.BigEndian.Uint16(l[:]))
	case 127:
		var l [8]byte
		_, err = io.ReadFull(c.R, l[:])
		n = binary.BigEndian.Uint64(l[:])
	}
	if err != nil {
		return 0, nil, err
	}
	if h[1]&0x80 != 0 {
		return 0, nil, errors.New("wstest: the server masked its frame")
	}
	payload = make([]byte, n)
	if _, err := io.ReadFull(c.R, payload); err != nil {
		return 0, nil, err
	}
	return h[0] & 0x0f, payload, nil
}
