package engine

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path"
	"strconv"
	"strings"
	"time"

	"github.com/iii-go/iii/engine/config"
)

// HTTP-invoked functions (iii-http-functions): a worker registers a function
// whose implementation is an HTTP endpoint (registerfunction with
// `invocation`), and the engine calls that URL whenever the function is
// invoked, as upstream iii v0.22.1 does. Every URL is checked against the
// security settings at registration and again on every call, so an
// allowlisted host cannot be turned into a path to the private network by
// DNS later.

type httpFunctions struct {
	cfg    *config.HTTPFunctions
	client *http.Client
}

func newHTTPFunctions(cfg *config.HTTPFunctions) *httpFunctions {
	return &httpFunctions{cfg: cfg, client: &http.Client{
		Timeout:       60 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}}
}

// invocation is registerfunction's `invocation` object.
type invocation struct {
	URL       string            `json:"url"`
	Method    string            `json:"method"`
	TimeoutMS int               `json:"timeout_ms"`
	Headers   map[string]string `json:"headers"`
	Auth      *struct {
		Type      string `json:"type"` // hmac | bearer | api_key
		SecretKey string `json:"secret_key"`
		TokenKey  string `json:"token_key"`
		Header    string `json:"header"`
		ValueKey  string `json:"value_key"`
	} `json:"auth"`
}

// check validates an invocation for registration: the URL passes the
// security rules and the auth's environment variables exist.
func (h *httpFunctions) check(raw json.RawMessage) *callError {
	var inv invocation
	if json.Unmarshal(raw, &inv) != nil {
		return &callError{Code: "invalid_invocation", Message: "invocation must be an object with a url"}
	}
	if err := h.checkURL(inv.URL); err != nil {
		return err
	}
	_, err := authHeader(&inv, 0, nil)
	return err
}

// checkURL applies the security settings to a URL.
func (h *httpFunctions) checkURL(raw string) *callError {
	fail := func(msg string) *callError { return &callError{Code: "url_validation_failed", Message: msg} }
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") {
		return fail("Invalid URL")
	}
	sec := h.cfg
	if sec.RequireHTTPS && u.Scheme != "https" {
		return fail("HTTPS is required")
	}
	host := u.Hostname()
	allowed := len(sec.URLAllowlist) == 0
	for _, g := range sec.URLAllowlist {
		if ok, _ := path.Match(g, host); ok || g == "*" {
			allowed = true
		}
	}
	if !allowed {
		return fail("URL not in allowlist")
	}
	if sec.BlockPrivateIPs {
		ips := []net.IP{net.ParseIP(host)}
		if ips[0] == nil {
			if ips, err = net.LookupIP(host); err != nil {
				return fail("DNS lookup failed")
			}
		}
		for _, ip := range ips {
			if private(ip) {
				return fail("Private IP blocked")
			}
		}
	}
	return nil
}

// private reports addresses an external function must not reach.
func private(ip net.IP) bool {
	if v4 := ip.To4(); v4 != nil {
		ip = v4
	}
	return ip.IsLoopback() || ip.IsPrivate() || ip.IsLinkLocalUnicast() || ip.IsUnspecified() ||
		ip.IsMulticast() && ip.To4() == nil || ip.Equal(net.IPv4bcast)
}

// authHeader builds the auth header of a call (timestamp and body for the
// HMAC signature); a missing environment variable is an error.
func authHeader(inv *invocation, ts int64, body []byte) (http.Header, *callError) {
	h := http.Header{}
	a := inv.Auth
	if a == nil {
		return h, nil
	}
	env := func(key, code, what string) (string, *callError) {
		v, ok := os.LookupEnv(key)
		if !ok {
			return "", &callError{Code: code, Message: what + " not found: " + key}
		}
		return v, nil
	}
	switch a.Type {
	case "hmac":
		secret, err := env(a.SecretKey, "secret_not_found", "Secret")
		if err != nil {
			return nil, err
		}
		mac := hmac.New(sha256.New, []byte(secret))
		mac.Write([]byte(strconv.FormatInt(ts, 10) + ":" + base64.StdEncoding.EncodeToString(body)))
		h.Set("x-iii-Signature", "sha256="+hex.EncodeToString(mac.Sum(nil)))
	case "bearer":
		token, err := env(a.TokenKey, "token_not_found", "Token")
		if err != nil {
			return nil, err
		}
		h.Set("Authorization", "Bearer "+token)
	case "api_key":
		v, err := env(a.ValueKey, "api_key_not_found", "API key")
		if err != nil {
			return nil, err
		}
		h.Set(a.Header, v)
	default:
		return nil, &callError{Code: "invalid_invocation", Message: "auth.type must be hmac, bearer or api_key"}
	}
	return h, nil
}

// call invokes an HTTP function: the input as a JSON body, the engine's
// x-iii-* headers, the configured ones and the auth; the answer maps back
// to a result or an error.
func (h *httpFunctions) call(ctx context.Context, functionID string, raw json.RawMessage, data json.RawMessage) callOutcome {
	var inv invocation
	if json.Unmarshal(raw, &inv) != nil {
		return failure("invalid_invocation", "invocation must be an object with a url")
	}
	if err := h.checkURL(inv.URL); err != nil {
		return callOutcome{err: err}
	}
	method := strings.ToUpper(inv.Method)
	if method == "" {
		method = http.MethodPost
	}
	timeout := 30 * time.Second
	if inv.TimeoutMS > 0 {
		timeout = time.Duration(inv.TimeoutMS) * time.Millisecond
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	body := rawOrNull(data)
	ts := time.Now().Unix()
	auth, cerr := authHeader(&inv, ts, body)
	if cerr != nil {
		return callOutcome{err: cerr}
	}
	req, err := http.NewRequestWithContext(ctx, method, inv.URL, bytes.NewReader(body))
	if err != nil {
		return failure("url_validation_failed", "Invalid URL")
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("x-iii-Function-Path", functionID)
	req.Header.Set("x-iii-Invocation-ID", newUUID())
	req.Header.Set("x-iii-Timestamp", strconv.FormatInt(ts, 10))
	for k, v := range inv.Headers {
		req.Header.Set(k, v)
	}
	for k, vs := range auth {
		req.Header[k] = vs
	}
	res, err := h.client.Do(req)
	if err != nil {
		msg := err.Error()
		if errors.Is(err, context.DeadlineExceeded) {
			msg = "request timed out after " + formatMillis(timeout) + ": " + msg
		}
		return failure("http_request_failed", msg)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(io.LimitReader(res.Body, 64<<20))
	if err != nil {
		return failure("http_response_failed", err.Error())
	}
	switch {
	case res.StatusCode >= 400:
		var e struct {
			Error *struct {
				Code    string `json:"code"`
				Message string `json:"message"`
			} `json:"error"`
		}
		if json.Unmarshal(b, &e) == nil && e.Error != nil {
			code, msg := e.Error.Code, e.Error.Message
			if code == "" {
				code = "http_error"
			}
			if msg == "" {
				msg = "HTTP request failed"
			}
			return failure(code, msg)
		}
		return failure("http_error", "HTTP "+res.Status)
	case len(bytes.TrimSpace(b)) == 0:
		return callOutcome{}
	case !json.Valid(b):
		if res.StatusCode >= 200 && res.StatusCode < 300 {
			return failure("invalid_response", "the response body is not JSON")
		}
		return callOutcome{}
	}
	return resultOf(b)
}
