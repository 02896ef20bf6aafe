package wire

import (
	"encoding/binary"
	"math/rand/v2"
)

// WebSocket opcodes the writer produces.
const (
	opText   byte = 0x1
	opBinary byte = 0x2
	opClose  byte = 0x8
	opPing   byte = 0x9
	opPong   byte = 0xA
)

// appendHeader appends a final-fragment frame header (RFC 6455, section 5.2).
func appendHeader(dst []byte, op byte, n int, masked bool, key [4]byte) []byte {
	var maskBit byte
	if masked {
		maskBit = 0x80
	}
	dst = append(dst, 0x80|op)
	switch {
	case n <= 125:
		dst = append(dst, maskBit|byte(n))
	case n <= 0xffff:
		dst = append(dst, maskBit|126, byte(n>>8), byte(n))
	default:
		dst = append(dst, maskBit|127)
		dst = binary.BigEndian.AppendUint64(dst, uint64(n))
	}
	if masked {
		dst = append(dst, key[:]...)
	}
	return dst
}

// appendFrame appends a complete frame. Client frames are masked (in dst, so
// the caller's payload is never modified).
func (c *Conn) appendFrame(dst []byte, op byte, payload []byte) []byte {
	if !c.client {
		dst = appendHeader(dst, op, len(payload), false, [4]byte{})
		return append(dst, payload...)
	}
	var key [4]byte
	binary.LittleEndian.PutUint32(key[:], rand.Uint32())
	dst = appendHeader(dst, op, len(payload), true, key)
	start := len(dst)
	dst = append(dst, payload...)
	maskBytes(dst[start:], key)
	return dst
}

// maskBytes XORs b with the repeating 4-byte key, eight bytes at a time.
func maskBytes(b []byte, key [4]byte) {
	k32 := binary.LittleEndian.Uint32(key[:])
	k64 := uint64(k32) | uint64(k32)<<32
	i := 0
	for ; i+8 <= len(b); i += 8 {
		binary.LittleEndian.PutUint64(b[i:], binary.LittleEndian.Uint64(b[i:])^k64)
	}
	for ; i < len(b); i++ {
		b[i] ^= key[i&3]
	}
}
