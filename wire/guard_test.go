package wire

import (
	"bytes"
	"errors"
	"io"
	"testing"
)

// chunkReader returns at most n bytes per Read, to split headers across reads.
type chunkReader struct {
	b []byte
	n int
}

func (r *chunkReader) Read(p []byte) (int, error) {
	if len(r.b) == 0 {
		return 0, io.EOF
	}
	k := min(r.n, len(p), len(r.b))
	copy(p, r.b[:k])
	r.b = r.b[k:]
	return k, nil
}

func TestFrameGuard(t *testing.T) {
	const limit = 70000
	var stream []byte
	stream = append(stream, "GET / HTTP/1.1\r\nHost: x\r\n\r\n"...)
	stream = append(stream, clientFrame(true, opText, bytes.Repeat([]byte("a"), 10))...)
	stream = append(stream, clientFrame(true, opText, bytes.Repeat([]byte("b"), 300))...)    // 16-bit length
	stream = append(stream, clientFrame(true, opText, bytes.Repeat([]byte("c"), limit))...)  // 64-bit length, at the limit
	stream = append(stream, clientFrame(true, opPing, []byte("p"))...)                       // control frames do not count
	stream = append(stream, clientFrame(false, opText, bytes.Repeat([]byte("d"), 40000))...) // fragments add up…
	stream = append(stream, clientFrame(false, opPong, nil)...)
	good := len(stream)
	bad := clientFrame(true, 0, bytes.Repeat([]byte("e"), 40000)) // …to over the limit
	const badHeader = 2 + 2 + 4                                   // 16-bit length, mask key
	stream = append(stream, bad...)
	stream = append(stream, clientFrame(true, opText, []byte("never"))...)

	for _, chunk := range []int{1, 2, 3, 7, 13, 100, 4096, len(stream)} {
		g := newFrameGuard(&chunkReader{b: stream, n: chunk}, limit)
		var got int
		buf := make([]byte, 4096)
		var err error
		for err == nil {
			var n int
			n, err = g.Read(buf)
			got += n
		}
		// Header bytes that came in earlier reads have passed already; what
		// matters is that the offending header never gets through whole.
		if !errors.Is(err, errTooLarge) || got < good || got >= good+badHeader {
			t.Errorf("chunk %d: passed %d bytes then %v; want %d to %d bytes then errTooLarge", chunk, got, err, good, good+badHeader-1)
		}
		if g.msgs != 3 { // a, b and c; d never ends
			t.Errorf("chunk %d: %d whole messages counted, want 3", chunk, g.msgs)
		}
	}

	// Bare "\n" line ends end the head as well.
	g := newFrameGuard(&chunkReader{b: append([]byte("GET / HTTP/1.1\nHost: x\n\n"), clientFrame(true, opText, make([]byte, limit+1))...), n: 5}, limit)
	if _, err := io.ReadAll(g); !errors.Is(err, errTooLarge) {
		t.Errorf("bare newlines: %v, want errTooLarge", err)
	}
}
