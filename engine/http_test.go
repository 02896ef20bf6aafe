package engine

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/iii-go/iii/engine/config"
	"github.com/iii-go/iii/wire"
)

// httpEngine runs an engine with iii-http on a free port and a global
// middleware, and returns it with the HTTP base URL.
func httpEngine(t *testing.T, mw ...string) (*Engine, string) {
	e := startEngine(t, nil, func(c *config.Config) {
		c.HTTP = config.DefaultHTTP()
		c.HTTP.Host, c.HTTP.Port = "127.0.0.1", 0
		for i, fn := range mw {
			c.HTTP.Middleware = append(c.HTTP.Middleware, config.HTTPMiddleware{FunctionID: fn, Phase: "preHandler", Priority: i})
		}
	})
	return e, "http://" + e.http.ln.Addr().String()
}

// route registers an http trigger on a client.
func (c *client) route(id, method, path, fn string, extra map[string]any) {
	cfg := map[string]any{"api_path": path, "http_method": method}
	for k, v := range extra {
		cfg[k] = v
	}
	c.send(map[string]any{"type": "registertrigger", "id": id, "trigger_type": "http", "function_id": fn, "config": cfg})
}

type httpReply struct {
	status int
	header http.Header
	body   string
}

func do(t *testing.T, method, u, contentType, body string) httpReply {
	t.Helper()
	req, _ := http.NewRequest(method, u, strings.NewReader(body))
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	req.Header.Add("X-Multi", "one")
	req.Header.Add("X-Multi", "two")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return httpReply{res.StatusCode, res.Header, string(b)}
}

func TestHTTPTriggerRoundTrip(t *testing.T) {
	e, base := httpEngine(t)
	w := dial(t, e.url(0))
	var got httpInput
	w.serve("api::item", func(d json.RawMessage, _ frame) (any, error) {
		json.Unmarshal(d, &got)
		return map[string]any{"status_code": 201, "headers": map[string]string{"X-Id": got.PathParams["id"]}, "body": map[string]any{"ok": true}}, nil
	})
	w.route("r1", "post", "/items/:id", "api::item", nil)
	w.sync()
	r := do(t, "POST", base+"/items/42?q=a&q=b", "application/json", `{"name":"x"}`)
	if r.status != 201 || r.body != `{"ok":true}` || r.header.Get("X-Id") != "42" || r.header.Get("Content-Type") != "application/json" {
		t.Fatalf("response %+v", r)
	}
	if got.Path != "/items/:id" || got.Method != "POST" || got.QueryParams["q"] != "b" || got.Headers["x-multi"] != "two" ||
		got.Body.(map[string]any)["name"] != "x" || got.Trigger.Type != "http" || got.Trigger.Method != "POST" {
		t.Fatalf("handler input %+v", got)
	}
}

func TestHTTPErrorsAndBodies(t *testing.T) {
	e, base := httpEngine(t)
	w := dial(t, e.url(0))
	w.serve("api::fail", func(json.RawMessage, frame) (any, error) { return nil, errors.New("db down") })
	w.serve("api::text", func(json.RawMessage, frame) (any, error) {
		return map[string]any{"headers": []string{"Content-Type: text/plain", "Set-Cookie: a=1", "Set-Cookie: b=2"}, "body": "hello"}, nil
	})
	w.serve("api::form", func(d json.RawMessage, _ frame) (any, error) {
		var in httpInput
		json.Unmarshal(d, &in)
		return map[string]any{"body": in.Body}, nil
	})
	w.serve("api::no", func(json.RawMessage, frame) (any, error) { return false, nil })
	w.route("f", "GET", "/fail", "api::fail", nil)
	w.route("t", "GET", "/text", "api::text", nil)
	w.route("u", "POST", "/form", "api::form", nil)
	w.route("c", "GET", "/guarded", "api::text", map[string]any{"condition_function_id": "api::no"})
	w.sync()
	tests := []struct {
		name, method, path, ct, body string
		status                       int
		want                         string // body, or a prefix ending in *
	}{
		{"no route", "GET", "/nope", "", "", 404, `{"error":{"code":"NOT_FOUND","message":"Not Found"}}`},
		{"wrong method", "DELETE", "/fail", "", "", 405, ``},
		{"handler error", "GET", "/fail", "", "", 500, `{"error":{"code":"invocation_failed","error_id":*`},
		{"text body", "GET", "/text", "", "", 200, `hello`},
		{"urlencoded form", "POST", "/form", "application/x-www-form-urlencoded", "a=1&b=x+y", 200, `{"a":"1","b":"x y"}`},
		{"condition false", "GET", "/guarded", "", "", 422, `{"error":{"code":"CONDITION_NOT_MET","message":"Request condition not met"},"skipped":true}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := do(t, tt.method, base+tt.path, tt.ct, tt.body)
			ok := r.body == tt.want
			if p, glob := strings.CutSuffix(tt.want, "*"); glob {
				ok = strings.HasPrefix(r.body, p)
			}
			if r.status != tt.status || !ok {
				t.Fatalf("%d %q, want %d %q", r.status, r.body, tt.status, tt.want)
			}
			if tt.name == "wrong method" && r.header.Get("Allow") != "GET,HEAD" {
				t.Fatalf("Allow %q", r.header.Get("Allow"))
			}
			if tt.name == "text body" && len(r.header.Values("Set-Cookie")) != 2 {
				t.Fatalf("headers %v", r.header)
			}
		})
	}
}

func TestHTTPMiddleware(t *testing.T) {
	e, base := httpEngine(t, "mw::global")
	w := dial(t, e.url(0))
	var order []string
	w.serve("mw::global", func(d json.RawMessage, _ frame) (any, error) {
		order = append(order, "global")
		var in struct {
			Request struct {
				Headers map[string]string `json:"headers"`
			} `json:"request"`
		}
		json.Unmarshal(d, &in)
		if in.Request.Headers["authorization"] == "" {
			return map[string]any{"action": "respond", "response": map[string]any{"status_code": 401, "body": map[string]any{"error": "no token"}}}, nil
		}
		return map[string]any{"action": "continue"}, nil
	})
	w.serve("mw::route", func(json.RawMessage, frame) (any, error) {
		order = append(order, "route")
		return map[string]any{"action": "continue"}, nil
	})
	w.serve("api::ok", func(json.RawMessage, frame) (any, error) {
		order = append(order, "handler")
		return map[string]any{"body": "ok"}, nil
	})
	w.route("m", "GET", "/m", "api::ok", map[string]any{"middleware_function_ids": []string{"mw::route"}})
	w.sync()
	if r := do(t, "GET", base+"/m", "", ""); r.status != 401 || r.body != `{"error":"no token"}` {
		t.Fatalf("without a token: %+v", r)
	}
	req, _ := http.NewRequest("GET", base+"/m", nil)
	req.Header.Set("Authorization", "Bearer x")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != 200 || string(b) != `"ok"` || strings.Join(order, ",") != "global,global,route,handler" {
		t.Fatalf("with a token: %d %s, order %v", res.StatusCode, b, order)
	}
}

func TestHTTPRouteConfigRequired(t *testing.T) {
	e, _ := httpEngine(t)
	w := dial(t, e.url(0))
	w.send(map[string]any{"type": "registertrigger", "id": "bad", "trigger_type": "http", "function_id": "x", "config": map[string]any{"http_method": "GET"}})
	r := w.next("triggerregistrationresult", func(f frame) bool { return f.str("id") == "bad" })
	if msg, _ := r["error"].(map[string]any)["message"].(string); msg != "api_path is required for http triggers" {
		t.Fatalf("%v", r)
	}
}

func TestPubSubFansOut(t *testing.T) {
	e := startEngine(t, nil, func(c *config.Config) { c.PubSub = &config.PubSub{} })
	w := dial(t, e.url(0))
	var a, b calls
	w.serve("sub::a", func(d json.RawMessage, _ frame) (any, error) { a.add(d); return nil, nil })
	w.serve("sub::b", func(d json.RawMessage, _ frame) (any, error) { b.add(d); return nil, nil })
	for i, fn := range []string{"sub::a", "sub::b"} {
		w.send(map[string]any{"type": "registertrigger", "id": "s" + itoa(int64(i)), "trigger_type": "subscribe", "function_id": fn,
			"config": map[string]any{"topic": "news"}})
	}
	w.sync()
	if r := w.call("publish", map[string]any{"topic": "news", "data": map[string]any{"n": 1}}); r["error"] != nil {
		t.Fatal(r["error"])
	}
	if r := w.call("publish", map[string]any{"topic": "", "data": 1}); errorCode(r) != "topic_not_set" {
		t.Fatalf("empty topic: %v", r)
	}
	eventually(t, "both subscribers", func() bool { return a.n() == 1 && b.n() == 1 })
	if string(a.seen[0]) != `{"n":1}` {
		t.Fatalf("subscriber got %s", a.seen[0])
	}
}

// channelConn connects a worker-side end of a channel ref from a handler's
// input, as the SDKs do.
func channelConn(t *testing.T, e *Engine, ref channelRef) (*wire.Conn, *channelPeer) {
	t.Helper()
	p := newChannelPeer()
	u := fmt.Sprintf("%s/ws/channels/%s?key=%s&dir=%s", e.url(0), ref.ChannelID, url.QueryEscape(ref.AccessKey), ref.Direction)
	c, err := wire.Dial(context.Background(), u, p, wire.Options{Logger: discardLogger})
	if err != nil {
		t.Errorf("connect %s end: %v", ref.Direction, err)
		return nil, nil
	}
	return c, p
}

// A handler that answers null streams its response through the response
// channel: status and headers first, then body chunks as they come (SSE);
// it reads a non-form request body from the request_body channel.
func TestHTTPStreaming(t *testing.T) {
	e, base := httpEngine(t)
	w := dial(t, e.url(0))
	w.serve("api::sse", func(d json.RawMessage, _ frame) (any, error) {
		var in httpInput
		json.Unmarshal(d, &in)
		c, _ := channelConn(t, e, *in.Response)
		c.Send([]byte(`{"type":"set_status","status_code":202}`))
		c.Send([]byte(`{"type":"set_headers","headers":{"content-type":"text/event-stream"}}`))
		c.SendBinary([]byte("data: 1\n\n"))
		c.SendBinary([]byte("data: 2\n\n"))
		c.Close(wire.CloseNormal, "channel_close")
		return nil, nil
	})
	w.serve("api::upload", func(d json.RawMessage, _ frame) (any, error) {
		var in httpInput
		json.Unmarshal(d, &in)
		_, p := channelConn(t, e, *in.RequestBody)
		var got []byte
		for {
			select {
			case f := <-p.frames:
				got = append(got, f.payload...)
			case <-p.closed:
				for len(p.frames) > 0 { // frames delivered before the close may still be queued
					got = append(got, (<-p.frames).payload...)
				}
				return map[string]any{"body": map[string]any{"bytes": len(got), "text": string(got)}}, nil
			}
		}
	})
	w.route("s", "GET", "/events", "api::sse", nil)
	w.route("u", "POST", "/upload", "api::upload", nil)
	w.sync()
	r := do(t, "GET", base+"/events", "", "")
	if r.status != 202 || r.header.Get("Content-Type") != "text/event-stream" || r.body != "data: 1\n\ndata: 2\n\n" {
		t.Fatalf("stream: %d %v %q", r.status, r.header, r.body)
	}
	big := strings.Repeat("x", 200<<10) // several frames
	r = do(t, "POST", base+"/upload", "application/octet-stream", big)
	if r.status != 200 || r.body != fmt.Sprintf(`{"bytes":%d,"text":"%s"}`, len(big), big) {
		t.Fatalf("upload: %d %.100q", r.status, r.body)
	}
}

func TestCronRunsOnSchedule(t *testing.T) {
	e := startEngine(t, nil, func(c *config.Config) { c.Cron = &config.Cron{} })
	w := dial(t, e.url(0))
	var ticks calls
	w.serve("jobs::tick", func(d json.RawMessage, _ frame) (any, error) { ticks.add(d); return nil, nil })
	w.serve("jobs::never", func(json.RawMessage, frame) (any, error) { return false, nil })
	w.send(map[string]any{"type": "registertrigger", "id": "every-second", "trigger_type": "cron", "function_id": "jobs::tick",
		"config": map[string]any{"expression": "* * * * * *"}})
	w.send(map[string]any{"type": "registertrigger", "id": "skipped", "trigger_type": "cron", "function_id": "jobs::tick",
		"config": map[string]any{"expression": "* * * * * *", "condition_function_id": "jobs::never"}})
	w.send(map[string]any{"type": "registertrigger", "id": "bad", "trigger_type": "cron", "function_id": "jobs::tick",
		"config": map[string]any{"expression": "* * * * *"}})
	r := w.next("triggerregistrationresult", func(f frame) bool { return f.str("id") == "bad" })
	if msg, _ := r["error"].(map[string]any)["message"].(string); !strings.HasPrefix(msg, "Invalid cron expression '* * * * *': expected 6 or 7 fields") {
		t.Fatalf("bad expression: %v", r)
	}
	eventually(t, "two ticks", func() bool { return ticks.n() >= 2 })
	var p struct {
		Trigger, JobID, Scheduled, Actual string
	}
	var m map[string]string
	json.Unmarshal(ticks.seen[0], &m)
	p.Trigger, p.JobID, p.Scheduled, p.Actual = m["trigger"], m["job_id"], m["scheduled_time"], m["actual_time"]
	if p.Trigger != "cron" || p.JobID != "every-second" || !strings.HasSuffix(p.Scheduled, "+00:00") || strings.Contains(p.Scheduled, ".") || p.Actual == "" {
		t.Fatalf("tick payload %s", ticks.seen[0])
	}
	for _, d := range ticks.seen {
		if strings.Contains(string(d), `"skipped"`) {
			t.Fatalf("a tick whose condition said false ran: %s", d)
		}
	}
	w.send(map[string]any{"type": "unregistertrigger", "id": "every-second"})
	w.sync()
	time.Sleep(100 * time.Millisecond)
	n := ticks.n()
	time.Sleep(1200 * time.Millisecond)
	if ticks.n() != n {
		t.Fatalf("an unregistered cron trigger still ran (%d → %d)", n, ticks.n())
	}
}

func TestHTTPInvokedFunctions(t *testing.T) {
	t.Setenv("TEST_FN_TOKEN", "s3cret")
	var seen http.Header
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seen = r.Header.Clone()
		b, _ := io.ReadAll(r.Body)
		switch r.URL.Path {
		case "/ok":
			w.Write([]byte(`{"echo":` + string(b) + `}`))
		case "/fail":
			w.WriteHeader(400)
			w.Write([]byte(`{"error":{"code":"bad_input","message":"no"}}`))
		case "/plain500":
			w.WriteHeader(500)
		}
	}))
	defer srv.Close()
	e := startEngine(t, nil, func(c *config.Config) {
		c.HTTPFunctions = &config.HTTPFunctions{URLAllowlist: []string{"127.0.0.1"}, BlockPrivateIPs: true}
	})
	w := dial(t, e.url(0))
	reg := func(id, u string, auth map[string]any) {
		inv := map[string]any{"url": u, "method": "POST"}
		if auth != nil {
			inv["auth"] = auth
		}
		w.send(map[string]any{"type": "registerfunction", "id": id, "invocation": inv})
	}
	reg("ext::ok", srv.URL+"/ok", map[string]any{"type": "bearer", "token_key": "TEST_FN_TOKEN"})
	w.sync()
	// Private addresses are refused by default even when allowlisted.
	if f := w.next("error", func(frame) bool { return true }); !strings.Contains(fmt.Sprint(f), "Private IP blocked") {
		t.Fatalf("registration: %v", f)
	}
	e.httpFns.cfg.BlockPrivateIPs, e.httpFns.cfg.RequireHTTPS = false, false
	reg("ext::ok", srv.URL+"/ok", map[string]any{"type": "bearer", "token_key": "TEST_FN_TOKEN"})
	reg("ext::fail", srv.URL+"/fail", nil)
	reg("ext::500", srv.URL+"/plain500", nil)
	reg("ext::nokey", srv.URL+"/ok", map[string]any{"type": "bearer", "token_key": "NO_SUCH_ENV"})
	w.sync()
	if f := w.next("error", func(frame) bool { return true }); !strings.Contains(fmt.Sprint(f), "Token not found: NO_SUCH_ENV") {
		t.Fatalf("missing token: %v", f)
	}
	c := dial(t, e.url(0))
	r := c.call("ext::ok", map[string]any{"n": 1})
	res, _ := json.Marshal(r["result"])
	if string(res) != `{"echo":{"_caller_worker_id":"`+c.id+`","n":1}}` || seen.Get("Authorization") != "Bearer s3cret" ||
		seen.Get("X-Iii-Function-Path") != "ext::ok" || seen.Get("X-Iii-Invocation-Id") == "" {
		t.Fatalf("result %s, headers %v", res, seen)
	}
	if r := c.call("ext::fail", map[string]any{}); errorCode(r) != "bad_input" {
		t.Fatalf("4xx with an error body: %v", r)
	}
	if r := c.call("ext::500", map[string]any{}); errorCode(r) != "http_error" {
		t.Fatalf("plain 500: %v", r)
	}
}
