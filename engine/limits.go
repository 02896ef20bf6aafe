package engine

import (
	"encoding/json"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"

	"github.com/iii-go/iii/wire"
)

// What one untrusted (RBAC) session may make the engine hold. Every
// registration becomes a durable log record and a registry entry, so a
// browser tab must not be able to grow either without bound. Trusted
// connections are the operator's own processes and are not limited here.

// codeLimitExceeded answers a request refused by one of these limits.
const codeLimitExceeded = "limit_exceeded"

// untrustedWorkerName is put before the name an untrusted session reports
// through engine::workers::register, so it can never pass for a trusted
// worker in discovery or in the log.
const untrustedWorkerName = "untrusted:"

// workerUpdatesPerSession bounds engine::workers::register calls from one
// untrusted session (the SDKs make one per connection).
const workerUpdatesPerSession = 16

// reservedNamespaces are function id prefixes only the engine and trusted
// workers may register: an untrusted stream::get(todo) would take over a
// stream's storage.
var reservedNamespaces = []string{"engine::", "stream::", "state::"}

// holdings counts what an untrusted session has registered, for the limits.
type holdings struct {
	ids           map[string]struct{} // "f:"/"t:"/"y:" + id; only touched on the read goroutine
	workerUpdates atomic.Int32        // engine::workers::register runs off the read goroutine
}

func (h *holdings) has(key string) bool {
	_, ok := h.ids[key]
	return ok
}

func (h *holdings) add(key string) {
	if h.ids == nil {
		h.ids = map[string]struct{}{}
	}
	h.ids[key] = struct{}{}
}

func (h *holdings) remove(key string) { delete(h.ids, key) }

// checkRegistration applies the limits to one registration from an
// untrusted session: key is its holdings key, id the id it asks for, and
// blobs its JSON documents (metadata, formats, config) by name. It returns
// nil for trusted sessions and for registrations within the limits.
func (s *session) checkRegistration(what, key, id string, blobs map[string][]byte) *callError {
	if s.grants == nil {
		return nil
	}
	lim := &s.e.cfg.Engine
	if len(id) > lim.MaxIDBytes {
		return &callError{Code: codeLimitExceeded, Message: what + ": the id is " + strconv.Itoa(len(id)) +
			" bytes; untrusted sessions may use at most " + strconv.Itoa(lim.MaxIDBytes) + " (engine.max_id_bytes)"}
	}
	total := 0
	for _, b := range blobs {
		total += len(b)
	}
	if total > lim.MaxMetadataBytes {
		names := make([]string, 0, len(blobs))
		for n, b := range blobs {
			if len(b) > 0 {
				names = append(names, n)
			}
		}
		slices.Sort(names)
		return &callError{Code: codeLimitExceeded, Message: what + ": " + strings.Join(names, " + ") + " is " +
			strconv.Itoa(total) + " bytes; untrusted sessions may send at most " + strconv.Itoa(lim.MaxMetadataBytes) + " (engine.max_metadata_bytes)"}
	}
	if !s.held.has(key) && len(s.held.ids) >= lim.RegistrationsPerSession {
		return &callError{Code: codeLimitExceeded, Message: what + ": this session already holds " + strconv.Itoa(len(s.held.ids)) +
			" registrations, the most an untrusted session may hold (engine.registrations_per_session)"}
	}
	return nil
}

// reservedID refuses a function id in the engine's namespaces to an
// untrusted session.
func (s *session) reservedID(what, id string) *callError {
	if s.grants == nil {
		return nil
	}
	for _, ns := range reservedNamespaces {
		if strings.HasPrefix(id, ns) {
			return &callError{Code: codeForbidden, Message: what + ": ids under " + ns + " are reserved for the engine and trusted workers"}
		}
	}
	return nil
}

// untrustedWorkerInfo checks and rewrites an untrusted session's
// engine::workers::register payload: bounded in size and in calls, and its
// name marked as untrusted.
func (s *session) untrustedWorkerInfo(info map[string]json.RawMessage, size int) *callError {
	lim := &s.e.cfg.Engine
	if size > lim.MaxMetadataBytes {
		return &callError{Code: codeLimitExceeded, Message: "engine::workers::register: the payload is " + strconv.Itoa(size) +
			" bytes; untrusted sessions may send at most " + strconv.Itoa(lim.MaxMetadataBytes) + " (engine.max_metadata_bytes)"}
	}
	if s.held.workerUpdates.Add(1) > workerUpdatesPerSession {
		return &callError{Code: codeLimitExceeded, Message: "engine::workers::register: an untrusted session may report its worker metadata at most " +
			strconv.Itoa(workerUpdatesPerSession) + " times"}
	}
	if raw, ok := info["name"]; ok {
		var name string
		if json.Unmarshal(raw, &name) == nil {
			info["name"] = wire.AppendString(nil, untrustedWorkerName+name)
		}
	}
	return nil
}
