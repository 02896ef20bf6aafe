package engine

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/iii-go/iii/engine/config"
	"github.com/iii-go/iii/wire"
)

// The HTTP module (iii-http): an HTTP server whose routes are `http`
// triggers (api_path with :param segments, http_method). A request runs the
// global middleware, the route's condition, its own middleware and its
// handler, each a function call; the handler answers {status_code, headers,
// body}. Routes are read from the registry projection, so they come and go
// with the triggers' records. Behaviour follows upstream iii v0.22.1's
// engine/src/workers/rest_api (docs/wire-protocol.md#http-triggers).

type httpModule struct {
	e   *Engine
	cfg *config.HTTP
	srv *http.Server
	ln  net.Listener
	sem chan struct{}

	dirty  atomic.Bool // the http triggers changed since routes were built
	mu     sync.Mutex
	routes []httpRoute
}

// httpRoute is one registered http trigger.
type httpRoute struct {
	method     string
	pattern    string   // api_path as registered
	segs       []string // its non-empty segments; ":name" is a parameter
	function   string
	worker     string // the trigger's owner
	condition  string
	middleware []string
	metadata   json.RawMessage
}

// httpTriggerConfig is the config of an http trigger.
type httpTriggerConfig struct {
	APIPath    *string `json:"api_path"`
	Method     string  `json:"http_method"`
	Condition  string  `json:"condition_function_id"`
	Middleware []any   `json:"middleware_function_ids"`
}

// validateHTTPTrigger returns the refusal of an http trigger's config, or "".
func validateHTTPTrigger(raw json.RawMessage) string {
	var c httpTriggerConfig
	if json.Unmarshal(raw, &c) != nil || c.APIPath == nil {
		return "api_path is required for http triggers"
	}
	return ""
}

func newHTTPModule(e *Engine, cfg *config.HTTP) *httpModule {
	h := &httpModule{e: e, cfg: cfg, sem: make(chan struct{}, max(cfg.ConcurrencyLimit, 1))}
	h.dirty.Store(true)
	return h
}

// listen binds the HTTP port and serves it in the background.
func (h *httpModule) listen() error {
	addr := net.JoinHostPort(h.cfg.Host, strconv.Itoa(h.cfg.Port))
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return &ListenError{Addr: addr, HTTP: true, Err: err}
	}
	h.ln = ln
	h.srv = &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second, ErrorLog: nil}
	go h.srv.Serve(ln)
	h.e.logger.Info("http listener bound", "addr", net.JoinHostPort(h.cfg.Host, strconv.Itoa(ln.Addr().(*net.TCPAddr).Port)))
	return nil
}

func (h *httpModule) shutdown(ctx context.Context) {
	if h.srv != nil {
		_ = h.srv.Shutdown(ctx)
	}
}

// table returns the current routes, rebuilding them after trigger changes.
func (h *httpModule) table() []httpRoute {
	h.mu.Lock()
	defer h.mu.Unlock()
	if !h.dirty.Swap(false) {
		return h.routes
	}
	var routes []httpRoute
	e := h.e
	e.view.mu.RLock()
	ts := e.view.Registry.TriggersOfType("http")
	e.view.mu.RUnlock()
	for _, t := range ts {
		var c httpTriggerConfig
		if json.Unmarshal(t.Config, &c) != nil || c.APIPath == nil {
			continue
		}
		r := httpRoute{method: strings.ToUpper(c.Method), pattern: *c.APIPath, segs: splitPath(*c.APIPath),
			function: t.Function, worker: t.Worker, condition: c.Condition, metadata: t.Metadata}
		if r.method == "" {
			r.method = http.MethodGet
		}
		for _, m := range c.Middleware {
			if id, ok := m.(string); ok {
				r.middleware = append(r.middleware, id)
			}
		}
		// The last registration of a method and path wins.
		routes = slices.DeleteFunc(routes, func(o httpRoute) bool {
			return o.method == r.method && slices.Equal(o.segs, r.segs)
		})
		routes = append(routes, r)
	}
	h.routes = routes
	return routes
}

func splitPath(p string) []string {
	var segs []string
	for _, s := range strings.Split(p, "/") {
		if s != "" {
			segs = append(segs, s)
		}
	}
	return segs
}

// match finds the route for a request: the route, the methods the path has
// (for 405) and the path parameters.
func match(routes []httpRoute, method, path string) (*httpRoute, []string, map[string]string) {
	segs := splitPath(path)
	var methods []string
	for i := range routes {
		r := &routes[i]
		params, ok := matchSegs(r.segs, segs)
		if !ok {
			continue
		}
		if r.method == method {
			return r, nil, params
		}
		methods = append(methods, r.method)
	}
	return nil, methods, nil
}

func matchSegs(pattern, segs []string) (map[string]string, bool) {
	if len(pattern) != len(segs) {
		return nil, false
	}
	params := map[string]string{}
	for i, p := range pattern {
		if name, ok := strings.CutPrefix(p, ":"); ok {
			params[name] = segs[i]
		} else if p != segs[i] {
			return nil, false
		}
	}
	return params, true
}

// ServeHTTP handles one request.
func (h *httpModule) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	if h.cors(w, req) {
		return
	}
	route, methods, params := match(h.table(), req.Method, req.URL.EscapedPath())
	if route == nil {
		if len(methods) > 0 && req.Method != http.MethodHead {
			w.Header().Set("Allow", strings.Join(allowList(methods), ","))
			w.WriteHeader(http.StatusMethodNotAllowed)
			return
		}
		writeEnvelope(w, http.StatusNotFound, "NOT_FOUND", "Not Found", false)
		return
	}
	select {
	case h.sem <- struct{}{}:
		defer func() { <-h.sem }()
	case <-req.Context().Done():
		return
	}
	ctx, cancel := context.WithTimeout(req.Context(), h.cfg.DefaultTimeout)
	defer cancel()
	h.serveRoute(ctx, w, req, route, params)
}

// allowList is the Allow header: the path's methods, with HEAD for GET.
func allowList(methods []string) []string {
	out := slices.Clone(methods)
	if slices.Contains(out, http.MethodGet) && !slices.Contains(out, http.MethodHead) {
		out = append(out, http.MethodHead)
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// cors applies the cors block; it answers a preflight and reports so.
func (h *httpModule) cors(w http.ResponseWriter, req *http.Request) bool {
	origin := req.Header.Get("Origin")
	if origin == "" {
		return false
	}
	c := h.cfg.CORS
	allowed := c == nil || len(c.AllowedOrigins) == 0 || slices.Contains(c.AllowedOrigins, "*") || slices.Contains(c.AllowedOrigins, origin)
	if !allowed {
		return false
	}
	if c == nil || len(c.AllowedOrigins) == 0 || slices.Contains(c.AllowedOrigins, "*") {
		w.Header().Set("Access-Control-Allow-Origin", "*")
	} else {
		w.Header().Set("Access-Control-Allow-Origin", origin)
		w.Header().Add("Vary", "Origin")
	}
	if req.Method != http.MethodOptions || req.Header.Get("Access-Control-Request-Method") == "" {
		return false
	}
	methods := "*"
	if c != nil && len(c.AllowedMethods) > 0 {
		methods = strings.Join(c.AllowedMethods, ",")
	}
	w.Header().Set("Access-Control-Allow-Methods", methods)
	if hdrs := req.Header.Get("Access-Control-Request-Headers"); hdrs != "" {
		w.Header().Set("Access-Control-Allow-Headers", hdrs)
	}
	w.WriteHeader(http.StatusOK)
	return true
}

// httpInput is what condition, middleware and handler functions are given.
type httpInput struct {
	QueryParams map[string]string `json:"query_params"`
	PathParams  map[string]string `json:"path_params"`
	Headers     map[string]string `json:"headers"`
	Path        string            `json:"path"`
	Method      string            `json:"method"`
	Body        any               `json:"body"`
	Trigger     struct {
		Type   string `json:"type"`
		Path   string `json:"path"`
		Method string `json:"method"`
	} `json:"trigger"`
	// RequestBody streams the raw request body to the handler; Response
	// lets it stream its answer (docs/wire-protocol.md#http-streaming).
	RequestBody *channelRef `json:"request_body,omitempty"`
	Response    *channelRef `json:"response,omitempty"`
}

func (h *httpModule) serveRoute(ctx context.Context, w http.ResponseWriter, req *http.Request, r *httpRoute, params map[string]string) {
	in := httpInput{QueryParams: map[string]string{}, PathParams: params, Headers: map[string]string{}, Path: r.pattern, Method: req.Method}
	in.Trigger.Type, in.Trigger.Path, in.Trigger.Method = "http", r.pattern, r.method
	for k, vs := range req.URL.Query() {
		in.QueryParams[k] = vs[len(vs)-1] // the last of a repeated key, as upstream
	}
	for k, vs := range req.Header {
		in.Headers[strings.ToLower(k)] = vs[len(vs)-1]
	}
	if req.Host != "" {
		in.Headers["host"] = req.Host
	}
	call := h.e.callerFor(r.worker)
	mwReq := map[string]any{"phase": "preHandler", "request": map[string]any{
		"path_params": in.PathParams, "query_params": in.QueryParams, "headers": in.Headers, "method": in.Method}, "context": map[string]any{}}
	for _, mw := range h.cfg.Middleware {
		if mw.Phase == "preHandler" && h.middleware(ctx, w, call, mw.FunctionID, mwReq) {
			return
		}
	}
	chs := h.e.channels
	reqCh, reqRef := chs.local(true)
	respCh, respRef := chs.local(false)
	defer func() {
		for _, c := range []*channel{reqCh, respCh} {
			chs.forget(c)
			c.end(wire.CloseNormal, closeChannel)
		}
	}()
	body, err := h.feedBody(req, reqCh)
	if err != nil {
		writeEnvelope(w, http.StatusRequestEntityTooLarge, "PAYLOAD_TOO_LARGE", err.Error(), false)
		return
	}
	in.Body = body
	payload, _ := json.Marshal(in) // the condition sees no channels
	if r.condition != "" {
		o, done := callCtx(ctx, func() callOutcome { return call(r.condition, payload, nil, "") })
		switch {
		case !done:
			w.WriteHeader(http.StatusGatewayTimeout)
			return
		case o.failed():
			writeError(w, o)
			return
		case o.hasResult && string(o.result) == "false":
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusUnprocessableEntity)
			io.WriteString(w, `{"error":{"code":"CONDITION_NOT_MET","message":"Request condition not met"},"skipped":true}`)
			return
		}
	}
	for _, mw := range r.middleware {
		if h.middleware(ctx, w, call, mw, mwReq) {
			return
		}
	}
	in.RequestBody, in.Response = &reqRef, &respRef
	payload, _ = json.Marshal(in)
	outcome := make(chan callOutcome, 1)
	go func() { outcome <- call(r.function, payload, nonNull(r.metadata), "") }()
	respond(ctx, req, w, outcome, respCh)
}

// feedBody reads a request's body into the request_body channel and parses
// what the handler gets as body: JSON, urlencoded and multipart forms are
// read whole (bounded by engine.max_message_bytes), parsed and sent as one
// frame; any other body streams through the channel as it arrives (body
// null).
func (h *httpModule) feedBody(req *http.Request, c *channel) (any, error) {
	ct := req.Header.Get("Content-Type")
	media, _, _ := mime.ParseMediaType(ct)
	if !strings.Contains(ct, "application/json") && media != "application/x-www-form-urlencoded" && media != "multipart/form-data" {
		go func() {
			defer c.finishWriting()
			buf := make([]byte, 64<<10)
			for {
				n, err := req.Body.Read(buf)
				if n > 0 && !c.push(req.Context().Done(), channelFrame{binary: true, payload: bytes.Clone(buf[:n])}) {
					return
				}
				if err != nil {
					return
				}
			}
		}()
		return nil, nil
	}
	limit := h.e.cfg.Engine.MaxMessageBytes
	b, err := io.ReadAll(io.LimitReader(req.Body, int64(limit)+1))
	if len(b) > limit {
		return nil, fmt.Errorf("the body is larger than %d bytes (engine.max_message_bytes)", limit)
	}
	if err == nil && len(b) > 0 {
		c.push(req.Context().Done(), channelFrame{binary: true, payload: b})
	}
	c.finishWriting()
	return parseBody(ct, b), nil
}

// respond answers with the handler's result, or with what it streams: text
// frames set_status / set_headers before the first binary frame, which
// commits the response and starts the body (chunked: SSE works).
func respond(ctx context.Context, req *http.Request, w http.ResponseWriter, outcome chan callOutcome, c *channel) {
	frames := make(chan channelFrame)
	go func() {
		defer close(frames)
		for {
			f, ok, _ := c.next(req.Context().Done())
			if !ok {
				return
			}
			select {
			case frames <- f:
			case <-req.Context().Done():
				return
			}
		}
	}()
	status, headers := http.StatusOK, map[string]string{}
	streaming := false // the handler answered null: the channel is the answer
	closed := false    // the channel ended without any body
	for {
		select {
		case f, ok := <-frames:
			if !ok {
				if streaming { // closed before any body: status and headers only
					commit(w, status, headers)
					return
				}
				frames, closed = nil, true // wait for the handler's answer
				continue
			}
			if !f.binary {
				applyControl(f.payload, &status, headers)
				continue
			}
			commit(w, status, headers)
			w.Write(f.payload)
			flush(w)
			for f := range frames { // no timeout once the body flows
				if f.binary {
					w.Write(f.payload)
					flush(w)
				}
			}
			return
		case o := <-outcome:
			switch {
			case o.failed():
				writeError(w, o)
				return
			case o.hasResult && !isNull(o.result):
				writeResult(w, o)
				return
			}
			if closed { // it closed the channel first: status and headers only
				commit(w, status, headers)
				return
			}
			streaming, outcome = true, nil
		case <-ctx.Done():
			w.WriteHeader(http.StatusGatewayTimeout)
			return
		}
	}
}

// applyControl applies a streamed set_status or set_headers message.
func applyControl(b []byte, status *int, headers map[string]string) {
	var m struct {
		Type       string         `json:"type"`
		StatusCode *int           `json:"status_code"`
		Headers    map[string]any `json:"headers"`
	}
	if json.Unmarshal(b, &m) != nil {
		return
	}
	switch m.Type {
	case "set_status":
		if m.StatusCode != nil && *m.StatusCode >= 100 && *m.StatusCode <= 599 {
			*status = *m.StatusCode
		}
	case "set_headers":
		for k, v := range m.Headers {
			if s, ok := v.(string); ok {
				headers[k] = s
			}
		}
	}
}

func commit(w http.ResponseWriter, status int, headers map[string]string) {
	for k, v := range headers {
		w.Header().Set(k, v)
	}
	w.WriteHeader(status)
}

func flush(w http.ResponseWriter) {
	if f, ok := w.(http.Flusher); ok {
		f.Flush()
	}
}

// callCtx runs a call and waits for it or for ctx; done is false when ctx
// ended first (the call goes on and its answer is dropped).
func callCtx(ctx context.Context, fn func() callOutcome) (callOutcome, bool) {
	ch := make(chan callOutcome, 1)
	go func() { ch <- fn() }()
	select {
	case o := <-ch:
		return o, true
	case <-ctx.Done():
		return callOutcome{}, false
	}
}

// middleware runs one middleware function; it reports whether the request
// was answered (by the middleware, or with an error).
func (h *httpModule) middleware(ctx context.Context, w http.ResponseWriter, call func(string, json.RawMessage, json.RawMessage, string) callOutcome, fn string, in map[string]any) bool {
	payload, _ := json.Marshal(in)
	o, done := callCtx(ctx, func() callOutcome { return call(fn, payload, nil, "") })
	switch {
	case !done:
		writeEnvelope(w, http.StatusGatewayTimeout, "MIDDLEWARE_TIMEOUT", "Middleware timeout", false)
		return true
	case o.failed():
		writeError(w, o)
		return true
	}
	var out struct {
		Action   string `json:"action"`
		Response struct {
			StatusCode int               `json:"status_code"`
			Headers    map[string]string `json:"headers"`
			Body       json.RawMessage   `json:"body"`
		} `json:"response"`
	}
	if !o.hasResult || json.Unmarshal(o.result, &out) != nil || out.Action != "respond" {
		return false
	}
	w.Header().Set("Content-Type", "application/json")
	for k, v := range out.Response.Headers {
		w.Header().Set(k, v)
	}
	w.WriteHeader(statusOr200(out.Response.StatusCode))
	w.Write(rawOrNull(out.Response.Body))
	return true
}

func statusOr200(code int) int {
	if code < 100 || code > 599 {
		return http.StatusOK
	}
	return code
}

// parseBody parses a JSON body, or an urlencoded or multipart form (fields,
// and files as {filename, content_type, size}); anything else is null.
func parseBody(contentType string, b []byte) any {
	media, params, _ := mime.ParseMediaType(contentType)
	switch {
	case strings.Contains(contentType, "application/json"):
		var v any
		if json.Unmarshal(b, &v) != nil {
			return nil
		}
		return v
	case media == "application/x-www-form-urlencoded":
		q, err := url.ParseQuery(string(b))
		if err != nil {
			return nil
		}
		return lastValues(q)
	case media == "multipart/form-data":
		form, err := multipart.NewReader(bytes.NewReader(b), params["boundary"]).ReadForm(int64(len(b)))
		if err != nil {
			return nil
		}
		defer form.RemoveAll()
		out := map[string]any{}
		for k, v := range lastValues(form.Value) {
			out[k] = v
		}
		for k, fs := range form.File {
			f := fs[len(fs)-1]
			out[k] = map[string]any{"filename": f.Filename, "content_type": f.Header.Get("Content-Type"), "size": f.Size}
		}
		return out
	}
	return nil
}

func lastValues(m map[string][]string) map[string]string {
	out := make(map[string]string, len(m))
	for k, vs := range m {
		out[k] = vs[len(vs)-1]
	}
	return out
}

// writeEnvelope writes an engine-made error in upstream's JSON envelope.
func writeEnvelope(w http.ResponseWriter, status int, code, msg string, withID bool) {
	e := map[string]string{"code": code, "message": msg}
	if withID {
		e["error_id"] = strconv.FormatInt(time.Now().UnixNano()&(1<<48-1), 16)
	}
	b, _ := json.Marshal(map[string]any{"error": e})
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	w.Write(b)
}

// writeError answers a failed function call: 504 for a timeout, else 500
// with the function's code and message.
func writeError(w http.ResponseWriter, o callOutcome) {
	var body struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	}
	if o.err != nil {
		body.Code, body.Message = o.err.Code, o.err.Message
	} else if json.Unmarshal(o.errRaw, &body) != nil || body.Code == "" {
		body.Code, body.Message = "UNKNOWN", o.errorMessage()
	}
	if body.Code == codeTimeout {
		w.WriteHeader(http.StatusGatewayTimeout)
		return
	}
	writeEnvelope(w, http.StatusInternalServerError, body.Code, body.Message, true)
}

// writeResult writes a handler's {status_code, headers, body}.
func writeResult(w http.ResponseWriter, o callOutcome) {
	var res struct {
		StatusCode json.RawMessage `json:"status_code"`
		Headers    json.RawMessage `json:"headers"`
		Body       json.RawMessage `json:"body"`
	}
	if !o.hasResult || !isObject(o.result) || json.Unmarshal(o.result, &res) != nil {
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, "{}")
		return
	}
	status := http.StatusOK
	var code int
	if json.Unmarshal(res.StatusCode, &code) == nil {
		status = statusOr200(code)
	}
	setResponseHeaders(w.Header(), res.Headers)
	body := res.Body
	if body == nil {
		body = json.RawMessage("{}")
	}
	ct := w.Header().Get("Content-Type")
	switch {
	case ct == "":
		w.Header().Set("Content-Type", "application/json")
	case isNull(body):
		body = nil
	case !strings.Contains(ct, "application/json"):
		var s string
		if json.Unmarshal(body, &s) == nil {
			body = []byte(s) // a string goes out as is
		}
	}
	w.WriteHeader(status)
	w.Write(body)
}

// setResponseHeaders applies a handler's headers: an object of strings, or
// an array of "Name: value" (which may repeat a name).
func setResponseHeaders(h http.Header, raw json.RawMessage) {
	var obj map[string]any
	if json.Unmarshal(raw, &obj) == nil {
		for k, v := range obj {
			if s, ok := v.(string); ok {
				h.Set(k, s)
			}
		}
		return
	}
	var list []any
	if json.Unmarshal(raw, &list) == nil {
		for _, it := range list {
			s, ok := it.(string)
			if !ok {
				continue
			}
			if k, v, ok := strings.Cut(s, ":"); ok {
				h.Add(strings.TrimSpace(k), strings.TrimSpace(v))
			}
		}
	}
}
