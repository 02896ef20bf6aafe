package engine

import (
	"encoding/hex"
	"hash/fnv"
	"sync/atomic"
)

// Loop protection. A trigger whose condition or handler writes to what the
// trigger watches would fire itself forever (one frame, unbounded durable
// writes). The engine therefore marks every call it makes for a trigger
// firing with a W3C traceparent whose trace id names the trigger and the
// depth of the chain of firings. Both iii-sdk generations carry an incoming
// invocation's traceparent onto the calls its handler makes, so a write made
// while the trigger ran comes back with that mark; the write's record keeps
// it (log.Record Cause and Depth) and fan-out then skips the trigger that
// caused it and any firing deeper than engine.max_trigger_depth.
//
// The mark is not a secret: untrusted sessions could replay one to hide
// their writes from triggers, so marks on their calls are dropped (see
// session.ownTraceparent) and only trusted connections pass them on.

// cause is the trigger firing a write happened in; the zero value is a
// write nobody's trigger made.
type cause struct {
	trigger uint64 // triggerHash of the trigger whose call made the write
	depth   uint8  // firings in the chain, 1 for a trigger fired by a plain write
}

// traceMagic opens the trace id of every traceparent the engine mints, so
// marks are told apart from the callers' own trace ids.
var traceMagic = [4]byte{'i', 'i', 'i', 0x01}

// traceSeq makes each minted trace and span id unique.
var traceSeq atomic.Uint64

// triggerHash is the 64-bit FNV-1a hash of a trigger id (what log records
// store as Cause).
func triggerHash(id string) uint64 {
	h := fnv.New64a()
	h.Write([]byte(id))
	return h.Sum64()
}

// traceparent mints the mark for one call made while firing the trigger
// with hash trig at chain depth depth:
// 00-<magic 4><depth 1><trigger 8><seq 3>-<span 8>-01 (hex).
func traceparent(trig uint64, depth uint8) string {
	var id [16]byte
	copy(id[:4], traceMagic[:])
	id[4] = depth
	for i := 0; i < 8; i++ {
		id[5+i] = byte(trig >> (56 - 8*i))
	}
	n := traceSeq.Add(1)
	id[13], id[14], id[15] = byte(n>>16), byte(n>>8), byte(n)
	var span [8]byte
	for i := 0; i < 8; i++ {
		span[i] = byte(n >> (56 - 8*i))
	}
	span[0] |= 0x80 // never all zero, which W3C forbids
	var out [55]byte
	copy(out[:3], "00-")
	hex.Encode(out[3:35], id[:])
	out[35] = '-'
	hex.Encode(out[36:52], span[:])
	copy(out[52:], "-01")
	return string(out[:])
}

// parseCause reads the mark out of a traceparent; ok is false for any
// traceparent the engine did not mint (including none).
func parseCause(tp string) (c cause, ok bool) {
	if len(tp) < 35 || tp[:11] != "00-69696901" { // "iii\x01" in hex: cheap refusal of foreign ids
		return cause{}, false
	}
	var id [13]byte
	if _, err := hex.Decode(id[:], []byte(tp[3:29])); err != nil || [4]byte(id[:4]) != traceMagic || id[4] == 0 {
		return cause{}, false
	}
	for i := 0; i < 8; i++ {
		c.trigger = c.trigger<<8 | uint64(id[5+i])
	}
	c.depth = id[4]
	return c, true
}
