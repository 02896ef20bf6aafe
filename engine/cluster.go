package engine

import (
	"context"
	"encoding/json"
	"errors"
	"maps"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/iii-go/iii/cluster"
	"github.com/iii-go/iii/log"
	"github.com/iii-go/iii/projections"
	"github.com/iii-go/iii/wire"
)

// node is this engine's part in a cluster (engine.cluster): it heart-beats,
// declares silent nodes lost, and carries calls to functions whose worker
// is connected to another node. Calls are traffic, not facts: they travel
// over NATS request/reply and are never logged.
type node struct {
	e       *Engine
	log     *cluster.Log
	nc      *nats.Conn
	name    string
	subject string // "<stream>.node": heartbeats at .hb.<node>, calls at .call.<node>, frames for a node's workers at .tell.<node>
	timeout time.Duration

	mu          sync.Mutex
	incarnation string               // ID of this node's own engine.started
	beats       map[string]time.Time // last heartbeat heard from each other node
	seen        map[string]string    // incarnation each node's beat was last reset for
	subs        []*nats.Subscription
	stop, done  chan struct{}
	once        sync.Once
	reannounced bool
	staleLogged atomic.Int64 // when catchUp last logged a failure (Unix ns)
	leading     atomic.Bool  // set by applied: this node leads
}

// Heartbeats go out every beatEvery; a node silent for the configured
// timeout (default 5 s) is declared lost at the next check, so within
// timeout + beatEvery.
const beatEvery = time.Second

// codeNodeUnavailable answers a call to a function whose worker is on a
// node that cannot be reached.
const codeNodeUnavailable = "node_unavailable"

func newNode(e *Engine, l *cluster.Log, timeout time.Duration) *node {
	return &node{
		e: e, log: l, nc: l.Conn(), name: l.Node(), subject: e.cfg.Engine.Cluster.Stream + ".node", timeout: timeout,
		beats: map[string]time.Time{}, seen: map[string]string{}, stop: make(chan struct{}), done: make(chan struct{}),
	}
}

// start subscribes to calls and heartbeats and begins beating. incarnation
// is the ID of the engine.started this node just appended.
func (n *node) start(incarnation string) error {
	n.mu.Lock()
	n.incarnation = incarnation
	n.mu.Unlock()
	for _, sub := range []struct {
		subject string
		handle  nats.MsgHandler
	}{
		{n.subject + ".call." + n.name, n.serve},
		{n.subject + ".hb.*", n.heard},
		{n.subject + ".tell." + n.name, n.told},
	} {
		s, err := n.nc.Subscribe(sub.subject, sub.handle)
		if err != nil {
			for _, s := range n.subs {
				s.Unsubscribe()
			}
			return err
		}
		n.subs = append(n.subs, s)
	}
	if err := n.nc.Flush(); err != nil {
		return err
	}
	go n.run()
	return nil
}

// close stops beating and serving, and records that this node left, so
// the others do not wait out the timeout to know.
func (n *node) close() {
	n.silence()
	n.mu.Lock()
	n.reannounced = true // the node.lost below is ours: no rejoin
	inc := n.incarnation
	n.mu.Unlock()
	v, _ := json.Marshal(map[string]string{"incarnation": inc, "by": n.name, "reason": "stopped"})
	// Best effort, and bounded: with NATS unreachable the others declare
	// this node lost after the timeout anyway.
	done := make(chan error, 1)
	if err := n.e.log.AppendAsync(&log.Record{Kind: log.KindNodeLost, Node: n.name, Value: v}, func(_ any, err error) { done <- err }); err != nil {
		done <- err
	}
	select {
	case err := <-done:
		if err != nil {
			n.e.logger.Warn("cluster: cannot record this node's stop", "err", err)
		}
	case <-time.After(3 * time.Second):
		n.e.logger.Warn("cluster: this node's stop not recorded within 3 s; the others will declare it lost")
	}
}

// silence stops beating and serving calls, as a crash would.
func (n *node) silence() {
	n.once.Do(func() {
		close(n.stop)
		<-n.done
		for _, s := range n.subs {
			s.Unsubscribe()
		}
		n.nc.Flush() // the server has dropped the subscriptions when this returns
	})
}

func (n *node) heard(m *nats.Msg) {
	from := m.Subject[len(n.subject)+len(".hb."):]
	if from == n.name {
		return
	}
	n.mu.Lock()
	n.beats[from] = time.Now()
	n.mu.Unlock()
}

// run beats and checks the other nodes, every beatEvery.
func (n *node) run() {
	defer close(n.done)
	t := time.NewTicker(beatEvery)
	defer t.Stop()
	for {
		// The subject names the node; which incarnation beats is not needed
		// (check gives a new one a full timeout from when the log shows it).
		if err := n.nc.Publish(n.subject+".hb."+n.name, nil); err != nil {
			n.e.logger.Debug("cluster: heartbeat not sent", "err", err)
		}
		n.check(time.Now())
		select {
		case <-n.stop:
			return
		case <-t.C:
		}
	}
}

// check declares lost every node that started, was not lost, and has been
// silent for longer than the timeout. Only the first (by name) of the nodes
// that are heard declares, so one loss is usually one record; a second one
// from a racing node is ignored by the registry.
func (n *node) check(now time.Time) {
	e := n.e
	e.view.mu.RLock()
	nodes := e.view.Registry.Nodes()
	e.view.mu.RUnlock()
	var silent []string
	n.mu.Lock()
	for name, inc := range nodes {
		if name == n.name {
			continue
		}
		if n.seen[name] != inc {
			// A new incarnation gets a full timeout from when it is seen.
			n.seen[name] = inc
			n.beats[name] = now
		}
		if now.Sub(n.beats[name]) > n.timeout {
			silent = append(silent, name)
		}
	}
	n.mu.Unlock()
	if len(silent) == 0 || n.declarer(nodes, silent) != n.name {
		return
	}
	slices.Sort(silent)
	for _, name := range silent {
		v, _ := json.Marshal(map[string]string{"incarnation": nodes[name], "by": n.name,
			"reason": "no heartbeat for more than " + n.timeout.String()})
		e.logger.Warn("cluster: node lost", "node", name, "silent_for_more_than", n.timeout)
		if _, err := e.log.Append(&log.Record{Kind: log.KindNodeLost, Node: name, Value: v}); err != nil {
			e.logger.Error("cluster: cannot record a lost node", "node", name, "err", err)
		}
	}
}

// declarer is the first, by name, of this node and the started nodes not
// in silent: the one node that declares the silent ones lost.
func (n *node) declarer(nodes map[string]string, silent []string) string {
	if first := firstNode(nodes, silent); first != "" && first < n.name {
		return first
	}
	return n.name
}

// firstNode is the first, by name, of nodes not in except ("" if none).
func firstNode(nodes map[string]string, except []string) string {
	first := ""
	for name := range nodes {
		if (first == "" || name < first) && !slices.Contains(except, name) {
			first = name
		}
	}
	return first
}

// isLeader reports whether this node leads: it runs what one engine of the
// cluster must run alone (queue dispatch, engine-owned triggers). The
// leader is the first, by name, of the nodes the registry counts as started
// and not lost, so every node agrees on it at each record of the log; a
// node that cannot be heard leads until its loss is recorded, not at once
// in two places.
func (n *node) isLeader() bool { return n.leading.Load() }

// applied is told about every record this node applies (on the log's
// goroutine). A node.lost naming this node's own incarnation means the
// others dropped its connections (it was cut off, or too slow): it starts
// again — a new engine.started — and closes its connections so that its
// workers reconnect and register again.
func (n *node) applied(rec *log.Record) {
	if rec.Kind == log.KindEngineStarted || rec.Kind == log.KindNodeLost {
		n.e.view.mu.RLock()
		first := firstNode(n.e.view.Registry.Nodes(), nil)
		n.e.view.mu.RUnlock()
		n.leading.Store(first == n.name)
	}
	if rec.Kind != log.KindNodeLost || rec.Node != n.name {
		return
	}
	n.mu.Lock()
	mine := rec.Value != nil && n.incarnation != "" && projections.NodeLostIncarnation(rec.Value) == n.incarnation && !n.reannounced
	if mine {
		n.reannounced = true
	}
	n.mu.Unlock()
	if !mine {
		return
	}
	go n.rejoin()
}

func (n *node) rejoin() {
	e := n.e
	e.logger.Warn("cluster: the other nodes declared this node lost; starting again and closing its connections so workers re-register", "node", n.name)
	rec := &log.Record{Kind: log.KindEngineStarted, Value: startedValue(true)}
	if _, err := e.log.Append(rec); err != nil {
		e.logger.Error("cluster: cannot record the restart", "err", err)
		return
	}
	n.mu.Lock()
	n.incarnation, n.reannounced = rec.ID.String(), false
	n.mu.Unlock()
	e.mu.RLock()
	sessions := make([]*session, 0, len(e.sessions))
	for _, s := range e.sessions {
		sessions = append(sessions, s)
	}
	e.mu.RUnlock()
	for _, s := range sessions {
		s.conn.Close(1012, "engine node rejoined its cluster; reconnect")
	}
}

// tell sends a frame to a worker connected to another node (a provider's
// refusal of a trigger that worker registered). Best effort, as a frame to
// a local worker is.
func (n *node) tell(worker string, frame []byte) {
	w, ok := n.e.remoteWorker(worker)
	if !ok {
		return
	}
	m := &nats.Msg{Subject: n.subject + ".tell." + w.Node, Data: frame, Header: nats.Header{"Worker": []string{worker}}}
	if err := n.nc.PublishMsg(m); err != nil {
		n.e.logger.Debug("cluster: frame for a worker on another node not sent", "node", w.Node, "err", err)
	}
}

// remoteWorker is the registry's record of worker when it is connected to
// another cluster node; false on a single engine, for a worker of this
// node, or one the registry does not know.
func (e *Engine) remoteWorker(worker string) (projections.Worker, bool) {
	if e.node == nil {
		return projections.Worker{}, false
	}
	e.view.mu.RLock()
	w, ok := e.view.Registry.Worker(worker)
	e.view.mu.RUnlock()
	if !ok || w.Node == "" || w.Node == e.node.name {
		return projections.Worker{}, false
	}
	return w, true
}

// told delivers a frame another node sent to one of this node's workers.
func (n *node) told(m *nats.Msg) {
	if s := n.e.session(m.Header.Get("Worker")); s != nil {
		s.send(m.Data)
	}
}

// health is the cluster part of engine::health::check: this node, whether
// it leads, its NATS connection, and every started node with how long ago
// it was last heard.
func (n *node) health() map[string]any {
	e := n.e
	e.view.mu.RLock()
	nodes := e.view.Registry.Nodes()
	e.view.mu.RUnlock()
	now := time.Now()
	list := []map[string]any{}
	n.mu.Lock()
	for _, name := range slices.Sorted(maps.Keys(nodes)) {
		m := map[string]any{"node": name}
		if name != n.name {
			if at, ok := n.beats[name]; ok {
				m["heard_ms_ago"] = now.Sub(at).Milliseconds()
			}
		}
		list = append(list, m)
	}
	n.mu.Unlock()
	return map[string]any{"node": n.name, "leader": n.isLeader(), "nats": n.nc.Status().String(), "nodes": list}
}

// callRequest is a call carried to the node whose worker owns the function.
type callRequest struct {
	FunctionID  string          `json:"function_id"`
	Data        json.RawMessage `json:"data,omitempty"`
	Metadata    json.RawMessage `json:"metadata,omitempty"`
	Traceparent string          `json:"traceparent,omitempty"`
	Baggage     string          `json:"baggage,omitempty"`
	TimeoutMS   int64           `json:"timeout_ms"`
	// As, when set, is an untrusted session on the receiving node: the
	// call is made there with that session's rights (a trigger it owns
	// fired on another node).
	As string `json:"as,omitempty"`
}

// callReply is its outcome.
type callReply struct {
	Result json.RawMessage `json:"result,omitempty"`
	Error  json.RawMessage `json:"error,omitempty"`
}

// call runs req on node `to` and waits for the outcome, at most timeout
// (which it also tells the node). A node nobody answers for fails at once.
func (n *node) call(to string, req callRequest, timeout time.Duration) callOutcome {
	req.TimeoutMS = timeout.Milliseconds()
	b, _ := json.Marshal(req)
	functionID := req.FunctionID
	m, err := n.nc.Request(n.subject+".call."+to, b, timeout+time.Second)
	switch {
	case errors.Is(err, nats.ErrNoResponders):
		return failure(codeNodeUnavailable, "Function "+functionID+" is on engine node "+to+", which is not reachable")
	case errors.Is(err, nats.ErrTimeout):
		return failure(codeTimeout, functionID+" did not answer within "+formatMillis(timeout))
	case err != nil:
		return failure(codeNodeUnavailable, "Function "+functionID+" is on engine node "+to+": "+err.Error())
	}
	var r callReply
	if err := json.Unmarshal(m.Data, &r); err != nil {
		return failure(codeInternal, "engine node "+to+" answered a call with "+err.Error())
	}
	switch {
	case r.Error != nil:
		return callOutcome{errRaw: r.Error}
	case r.Result != nil:
		return resultOf(r.Result)
	}
	return callOutcome{}
}

// send runs req on node `to` without waiting (a void call).
func (n *node) send(to string, req callRequest) {
	req.TimeoutMS = n.e.cfg.Engine.CallTimeout.Milliseconds()
	b, _ := json.Marshal(req)
	if err := n.nc.Publish(n.subject+".call."+to, b); err != nil {
		n.e.logger.Debug("cluster: void call not sent", "node", to, "function_id", req.FunctionID, "err", err)
	}
}

// serve runs a call another node sent for a function of this node's
// workers. The caller's node made the RBAC decision and added
// _caller_worker_id.
func (n *node) serve(m *nats.Msg) {
	var req callRequest
	if err := json.Unmarshal(m.Data, &req); err != nil {
		n.respond(m, failure(codeInvalidMessage, "cluster call: "+err.Error()))
		return
	}
	go func() {
		e := n.e
		if req.As != "" {
			s := e.session(req.As)
			if s == nil || s.grants == nil {
				n.respond(m, failure(codeInvocationStopped, "the session "+req.As+" is no longer connected to engine node "+n.name))
				return
			}
			n.respond(m, s.callAs(req.FunctionID, req.Data, req.Metadata, req.Traceparent))
			return
		}
		t, ok := e.lookup(req.FunctionID)
		if !ok || t.remote != "" {
			n.respond(m, failure(codeFunctionNotFound, "Function "+req.FunctionID+" not found on engine node "+n.name))
			return
		}
		timeout := time.Duration(req.TimeoutMS) * time.Millisecond
		if timeout <= 0 {
			timeout = e.cfg.Engine.CallTimeout
		}
		n.respond(m, e.callTarget(t, req.FunctionID, req.Data, req.Metadata, req.Traceparent, req.Baggage, timeout))
	}()
}

func (n *node) respond(m *nats.Msg, o callOutcome) {
	if m.Reply == "" {
		return // a void call
	}
	r := callReply{Error: o.errorBody()}
	if r.Error == nil && o.hasResult {
		r.Result = o.result
	}
	b, _ := json.Marshal(r)
	if err := m.Respond(b); err != nil {
		n.e.logger.Debug("cluster: call answer not sent", "err", err)
	}
}

// firesHere reports whether this engine fires the triggers of worker: in a
// cluster, the node the worker is connected to does, and the leader fires
// the engine's own triggers; a single engine fires them all.
func (e *Engine) firesHere(worker string) bool {
	if e.node == nil {
		return true
	}
	if worker == engineWorker {
		return e.node.isLeader()
	}
	return e.session(worker) != nil
}

// forwardRemote does for a registry record another node wrote what that
// node did for it locally: this node's providers of a trigger type hear of
// the type's triggers registered or removed there. (The engine-trigger
// events fire from every applied record alike: fanout.registryEvents.)
func (e *Engine) forwardRemote(rec *log.Record, ch projections.RegistryChange) {
	switch rec.Kind {
	case log.KindTriggerRegistered:
		if p := e.provider(rec.TriggerType); p != nil {
			p.send(wire.AppendRegisterTrigger(nil, rec.Trigger, rec.TriggerType, rec.Function, rec.Value, rec.Meta))
		}
	case log.KindTriggerUnregistered, log.KindWorkerDisconnected, log.KindEngineStarted, log.KindNodeLost:
		if rec.Kind == log.KindTriggerUnregistered && !ch.Existed {
			return
		}
		for _, t := range ch.Triggers {
			if p := e.provider(t.Type); p != nil {
				p.send(wire.AppendUnregisterTrigger(nil, t.ID, t.Type))
			}
		}
	}
}

// catchUp makes a read see every write acknowledged anywhere in the
// cluster before the read arrived: it waits until this node has applied
// the stream up to its current end. A single engine has nothing to wait
// for. If the stream cannot be asked, the read is served from what this
// node has (and the reason logged).
func (e *Engine) catchUp() {
	if e.node == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := e.node.log.CatchUp(ctx); err != nil {
		// One line per 10 s: during an outage every read would log.
		now := time.Now().UnixNano()
		if last := e.node.staleLogged.Load(); now-last >= int64(10*time.Second) && e.node.staleLogged.CompareAndSwap(last, now) {
			e.logger.Warn("cluster: reads served without catching up with the stream (they may miss other nodes' latest writes)", "err", err)
		}
	}
}
