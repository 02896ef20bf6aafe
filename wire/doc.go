// Package wire is the engine's WebSocket layer: the listeners and client
// connections (on github.com/lxzan/gws), and the JSON codec of the worker
// protocol (docs/wire-protocol.md) and of the stream port's join/leave frames.
// It knows message shapes only, nothing of functions, triggers or streams.
//
// Transport (Listen, Dial, Conn):
//   - Paths: "/" (any query) goes to the Handler; "/otel" (any query) is
//     drained when Options.Telemetry is set; Options.Route may hand other paths
//     to Handlers of their own (data channels); everything else is an HTTP
//     404 without upgrade. No compression is negotiated.
//   - Origins: requests without an Origin header (worker processes) are always
//     accepted; with Options.AllowOrigin set, a browser's upgrade from an
//     origin it refuses gets HTTP 403 on any path (OriginList builds the check
//     from a list). Without it any Origin is accepted.
//   - Handler methods run on the connection's read goroutine, in order (see
//     Handler); a FrameHandler gets raw text and binary frames. Send and
//     SendBinary never block and may be called from anywhere, Open included;
//     a connection whose send queue overflows is closed with 1008
//     (WaitSendQueue lets a producer wait for room instead).
//   - Inbound limits: a message over MaxMessageBytes closes with 1009; text
//     frames (and binary ones, except for a FrameHandler) must be valid UTF-8
//     (else 1007); pings are answered; silent peers are pinged after
//     PingAfter and closed with 1001 after IdleTimeout.
//
// Codec: Decode reads every client→engine message (and the engine→client ones,
// for clients) into a reusable Message without allocating; its strings and raw
// fields are views that live until the next Decode (see Message). Errors are
// *DecodeError with the invalid_message / invalid_argument codes
// (docs/wire-protocol.md#error-codes), or nesting_too_deep (CodeTooDeep)
// when a value nests deeper than DefaultMaxDepth objects/arrays (DecodeDepth
// and DecodeStreamRequestDepth take another limit). The Append* encoders build
// engine→client frames.
package wire
