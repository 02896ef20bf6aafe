package wire

import "fmt"

// StreamRequest is a client frame on the stream port
// (docs/wire-protocol.md#join-and-leave):
//
//	{"type":"join","data":{"subscriptionId":"s1","streamName":"todo","groupId":"todos","id":"a1"}}
//	{"type":"leave","data":{"subscriptionId":"s1","streamName":"todo","groupId":"todos"}}
//
// Unlike Message, its strings are ordinary copies, safe to keep.
type StreamRequest struct {
	Type           string // "join" or "leave"
	SubscriptionID string
	StreamName     string
	GroupID        string
	ItemID         string // data.id; absent or null leaves HasItemID false (whole group)
	HasItemID      bool
}

// DecodeStreamRequest decodes a stream-port frame into r. It returns a
// *DecodeError (code invalid_message) naming the field when the frame is not a
// join/leave request with the required string fields. It is
// DecodeStreamRequestDepth with DefaultMaxDepth.
func DecodeStreamRequest(frame []byte, r *StreamRequest) error {
	return DecodeStreamRequestDepth(frame, r, DefaultMaxDepth)
}

// DecodeStreamRequestDepth is DecodeStreamRequest with the nesting limit of
// DecodeDepth (the same counting: "data":{"id":"a"} nests 1 level, maxDepth
// <= 0 means DefaultMaxDepth): a frame over it fails with CodeTooDeep, e.g.
// "join: message nests deeper than 128 levels at offset 40". Invalid JSON takes
// precedence over it, and it over the checks of the fields.
func DecodeStreamRequestDepth(frame []byte, r *StreamRequest, maxDepth int) error {
	*r = StreamRequest{}
	b := append([]byte(nil), frame...) // unescaping works in place
	fail := func(format string, args ...any) error {
		return &DecodeError{Code: CodeInvalidMessage, Message: fmt.Sprintf(format, args...)}
	}
	i := skipWS(b, 0)
	if i >= len(b) {
		return fail("empty message")
	}
	if b[i] != '{' {
		j, k, serr := skipDeep(b, i) // not a request at any depth
		if serr == nil && skipWS(b, j) == len(b) {
			return fail("message must be a JSON object, got %s", kindName(k))
		}
		if serr == nil {
			serr = &syntaxError{skipWS(b, j), "data after the top-level value"}
		}
		return fail("%s", syntaxMessage(serr))
	}
	limit := clampDepth(maxDepth)
	var typ, data member
	it := newObjectIter(b, i, limit)
	for {
		mb, ok, serr := it.next()
		if serr != nil {
			return fail("%s", syntaxMessage(serr))
		}
		if !ok {
			break
		}
		switch string(mb.key) {
		case "type":
			typ = mb
		case "data":
			data = mb
		}
	}
	if j := skipWS(b, it.i); j != len(b) {
		return fail("%s", syntaxMessage(&syntaxError{j, "data after the top-level object"}))
	}
	if it.deep != 0 {
		tname := ""
		if typ.kind == kindString {
			if t := memberString(b, typ); t == "join" || t == "leave" {
				tname = t
			}
		}
		return &DecodeError{Code: CodeTooDeep, Message: tooDeepMessage(tname, limit, it.deep)}
	}
	switch typ.kind {
	case kindString:
	case kindNone:
		return fail("type is missing")
	default:
		return fail("type must be a string, got %s", kindName(typ.kind))
	}
	r.Type = memberString(b, typ)
	if r.Type != "join" && r.Type != "leave" {
		return fail("unknown type %q (want \"join\" or \"leave\")", r.Type)
	}
	switch data.kind {
	case kindObject:
	case kindNone:
		return fail("%s: data is missing", r.Type)
	default:
		return fail("%s: data must be an object, got %s", r.Type, kindName(data.kind))
	}
	var sub, stream, group, item member
	it = newObjectIter(b[:data.end], data.start, HardMaxDepth) // within the limit: scanned already
	for {
		mb, ok, _ := it.next() // validated above
		if !ok {
			break
		}
		switch string(mb.key) {
		case "subscriptionId":
			sub = mb
		case "streamName":
			stream = mb
		case "groupId":
			group = mb
		case "id":
			item = mb
		}
	}
	for _, f := range []struct {
		name string
		m    member
		dst  *string
	}{{"subscriptionId", sub, &r.SubscriptionID}, {"streamName", stream, &r.StreamName}, {"groupId", group, &r.GroupID}} {
		switch f.m.kind {
		case kindString:
			*f.dst = memberString(b, f.m)
		case kindNone:
			return fail("%s: data.%s is missing", r.Type, f.name)
		default:
			return fail("%s: data.%s must be a string, got %s", r.Type, f.name, kindName(f.m.kind))
		}
	}
	switch item.kind {
	case kindString:
		r.ItemID, r.HasItemID = memberString(b, item), true
	case kindNone, kindNull:
	default:
		return fail("%s: data.id must be a string, got %s", r.Type, kindName(item.kind))
	}
	return nil
}

// memberString returns a string member's unescaped value as a new string.
func memberString(b []byte, m member) string {
	v := b[m.start+1 : m.end-1]
	if m.esc {
		v = v[:unescapeInPlace(v)]
	}
	return string(v)
}
