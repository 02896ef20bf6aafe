package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/iii-go/iii/wire"
)

const triggerUsage = `usage:
  iii trigger <function_id> [key=value ...] [--json '<object>'] [--address HOST] [--port N] [--timeout-ms N]
  iii trigger --function-id ID [--payload '<json>'] [--address ws://HOST:PORT]
Calls one function on a running engine and prints the result as JSON; an
error prints "code: message" on stderr and exits 1. key=value pairs build an
object payload (values that parse as JSON keep their type). --address is a
host (default 127.0.0.1) or a ws:// URL; --port defaults to 49134;
--timeout-ms to 30000.
`

// runTrigger implements `iii trigger`: call one function on a running
// engine, print the result as JSON, or the error on stderr with exit 1.
func runTrigger(args []string) int {
	fl, err := parseFlags(args, map[string]bool{"json": true, "payload": true, "address": true, "port": true, "timeout-ms": true, "function-id": true},
		map[string]bool{"help": true, "h": true})
	if err != nil {
		fmt.Fprintf(os.Stderr, "iii trigger: %v\n%s", err, triggerUsage)
		return 2
	}
	if fl.has("help", "h") {
		fmt.Print(triggerUsage)
		return 0
	}
	fn := fl.get("function-id")
	rest := fl.positional
	if fn == "" && len(rest) > 0 {
		fn, rest = rest[0], rest[1:]
	}
	if fn == "" {
		fmt.Fprintf(os.Stderr, "iii trigger: a function id is required\n%s", triggerUsage)
		return 2
	}
	payload, err := buildPayload(fl.get("json", "payload"), rest)
	if err != nil {
		fmt.Fprintf(os.Stderr, "iii trigger: %v\n", err)
		return 2
	}
	url, err := engineURL(fl.get("address"), fl.get("port"))
	if err != nil {
		fmt.Fprintf(os.Stderr, "iii trigger: %v\n", err)
		return 2
	}
	timeout := 30 * time.Second
	if v := fl.get("timeout-ms"); v != "" {
		ms, err := strconv.Atoi(v)
		if err != nil || ms <= 0 {
			fmt.Fprintf(os.Stderr, "iii trigger: --timeout-ms must be a positive integer, got %q\n", v)
			return 2
		}
		timeout = time.Duration(ms) * time.Millisecond
	}

	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	h := &triggerClient{results: make(chan triggerResult, 1), closed: make(chan error, 1)}
	conn, err := wire.Dial(ctx, url, h, wire.Options{})
	if err != nil {
		fmt.Fprintf(os.Stderr, "iii trigger: cannot connect to %s: %v\n", url, err)
		return 1
	}
	defer conn.Close(1000, "done")
	const id = "iii-trigger-1"
	frame := append([]byte(`{"type":"invokefunction","invocation_id":"`+id+`","function_id":`), wire.AppendString(nil, fn)...)
	frame = append(append(append(frame, `,"data":`...), payload...), '}')
	if err := conn.Send(frame); err != nil {
		fmt.Fprintf(os.Stderr, "iii trigger: send: %v\n", err)
		return 1
	}
	select {
	case m := <-h.results:
		if m.err != nil && string(m.err) != "null" {
			var body struct{ Code, Message string }
			if json.Unmarshal(m.err, &body) == nil && body.Code != "" {
				fmt.Fprintf(os.Stderr, "%s: %s\n", body.Code, body.Message)
			} else {
				fmt.Fprintf(os.Stderr, "error: %s\n", m.err)
			}
			return 1
		}
		if m.result == nil {
			return 0 // the function returned nothing
		}
		fmt.Println(string(m.result))
		return 0
	case err := <-h.closed:
		fmt.Fprintf(os.Stderr, "iii trigger: connection closed before the result arrived: %v\n", err)
		return 1
	case <-ctx.Done():
		fmt.Fprintf(os.Stderr, "timeout: %s did not answer within %s\n", fn, timeout)
		return 1
	}
}

// buildPayload merges --json with key=value arguments (values that parse as
// JSON keep their type, anything else is a string).
func buildPayload(js string, kvs []string) ([]byte, error) {
	obj := map[string]json.RawMessage{}
	if js != "" {
		if len(kvs) == 0 {
			if !json.Valid([]byte(js)) {
				return nil, fmt.Errorf("--json is not valid JSON: %s", js)
			}
			return []byte(js), nil
		}
		if err := json.Unmarshal([]byte(js), &obj); err != nil {
			return nil, fmt.Errorf("--json must be an object when key=value arguments are given: %v", err)
		}
	}
	for _, kv := range kvs {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || k == "" {
			return nil, fmt.Errorf("argument %q is not key=value", kv)
		}
		if json.Valid([]byte(v)) {
			obj[k] = json.RawMessage(v)
		} else {
			obj[k], _ = json.Marshal(v)
		}
	}
	return json.Marshal(obj)
}

// engineURL accepts a bare host (with --port) or a full ws:// address.
func engineURL(address, port string) (string, error) {
	if strings.HasPrefix(address, "ws://") || strings.HasPrefix(address, "wss://") {
		return address, nil
	}
	if address == "" {
		address = "localhost"
	}
	if port == "" {
		port = "49134"
	}
	if _, err := strconv.Atoi(port); err != nil {
		return "", fmt.Errorf("--port must be a number, got %q", port)
	}
	return "ws://" + address + ":" + port + "/", nil
}

// triggerClient waits for the one invocationresult the command asked for.
type triggerClient struct {
	msg     wire.Message
	results chan triggerResult
	closed  chan error
}

// triggerResult holds copies of the answer's raw fields (the decode buffer
// is reused); nil means the key was absent.
type triggerResult struct {
	result, err json.RawMessage
}

func (t *triggerClient) Open(*wire.Conn) {}

func (t *triggerClient) Message(_ *wire.Conn, frame []byte) {
	if wire.Decode(frame, &t.msg) != nil || t.msg.Type != wire.TypeInvocationResult {
		return
	}
	select {
	case t.results <- triggerResult{result: bytes.Clone(t.msg.Result), err: bytes.Clone(t.msg.Error)}:
	default:
	}
}

func (t *triggerClient) Close(_ *wire.Conn, err error) {
	select {
	case t.closed <- err:
	default:
	}
}
