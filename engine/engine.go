// Package engine is the iii router: it accepts worker connections, routes
// invocations between them, runs the built-in modules (streams, state,
// engine::* functions) and turns every state change into a log record.
package engine

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"github.com/iii-go/iii/cluster"
	"github.com/iii-go/iii/engine/config"
	"github.com/iii-go/iii/engine/exec"
	"github.com/iii-go/iii/log"
	"github.com/iii-go/iii/wire"
)

// Version is the engine version reported by `iii --version` and engine.started.
var Version = "0.22.1-go.0"

// Options are the parts of the engine's set-up that do not come from the
// config file.
type Options struct {
	DataDir string // where data lives when the config names no path; default ./data
	Logger  *slog.Logger
	// ShutdownGrace bounds how long Shutdown waits for invocations in
	// flight before it closes the connections (default 5 s).
	ShutdownGrace time.Duration
}

// Engine is one running iii engine.
type Engine struct {
	cfg     *config.Config
	opts    Options
	logger  *slog.Logger
	log     log.Journal
	node    *node // nil unless engine.cluster is set
	view    *view
	started time.Time

	builtins     map[string]*builtin // engine-provided functions by id
	builtinTypes map[string]string   // engine-provided trigger types → module name

	mu       sync.RWMutex
	sessions map[string]*session // live worker connections by worker id

	fan       *fanout
	queues    *queues        // nil without the queue module
	http      *httpModule    // nil without the http module
	cron      *scheduler     // nil without the cron module
	httpFns   *httpFunctions // nil without iii-http-functions
	channels  *channels
	stopSweep chan struct{}
	streams   *streamPort
	servers   []*wire.Server
	exec      *exec.Runner
}

// New opens the log (replaying it into the projections), registers the
// built-in functions and binds every listener. Any failure is returned with
// enough context to act on (e.g. the address that could not be bound).
func New(cfg *config.Config, opts Options) (*Engine, error) {
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.DataDir == "" {
		opts.DataDir = "data"
	}
	if opts.ShutdownGrace <= 0 {
		opts.ShutdownGrace = 5 * time.Second
	}
	cfg.Engine = cfg.Engine.WithDefaults()
	e := &Engine{
		cfg:          cfg,
		opts:         opts,
		logger:       opts.Logger,
		view:         newView(),
		started:      time.Now(),
		builtins:     map[string]*builtin{},
		builtinTypes: map[string]string{},
		sessions:     map[string]*session{},
	}
	e.fan = newFanout(e)
	if cfg.Queue != nil {
		e.queues = newQueues(e, cfg.Queue)
	}
	if cfg.HTTP != nil {
		e.http = newHTTPModule(e, cfg.HTTP)
	}
	if cfg.Cron != nil {
		e.cron = newScheduler(e)
	}
	if cfg.HTTPFunctions != nil {
		e.httpFns = newHTTPFunctions(cfg.HTTPFunctions)
	}
	e.channels = newChannels(e.logger, cfg.Engine.ChannelBufferBytes)
	e.registerBuiltins()

	if err := checkPorts(cfg); err != nil {
		return nil, err
	}
	dir, inMemory := logLocation(cfg, opts.DataDir)
	if err := e.openLog(dir, inMemory); err != nil {
		return nil, err
	}
	l := e.log

	// History is replayed; from here on every applied change is delivered.
	e.view.changed = e.fan.deliver
	incarnation, err := e.announceStart()
	if err != nil {
		l.Close()
		return nil, err
	}
	if e.node != nil {
		if err := e.node.start(incarnation); err != nil {
			l.Close()
			return nil, fmt.Errorf("engine: cluster: %w", err)
		}
	}
	if err := e.listen(); err != nil {
		e.closeServers()
		if e.node != nil {
			e.node.silence() // its heartbeats would go on over a closed connection
		}
		l.Close()
		return nil, err
	}
	e.stopSweep = make(chan struct{})
	go e.sweepChannels()
	if e.queues != nil {
		go e.queues.run()
	}
	if e.cron != nil {
		go e.cron.run()
	}
	return e, nil
}

// openLog opens the local write-ahead log, or with engine.cluster the
// cluster's log on JetStream (whose local directory keeps snapshots).
func (e *Engine) openLog(dir string, inMemory bool) error {
	cfg := e.cfg
	if cl := cfg.Engine.Cluster; cl != nil {
		l, err := cluster.Open(cluster.Options{
			URL: cl.NATSURL, Node: cl.Node, Stream: cl.Stream, Replicas: cl.Replicas, Creds: cl.Creds,
			// One directory per node: engines of one cluster started from
			// one working directory (./data by default) do not collide.
			Dir: filepath.Join(dir, "node-"+cl.Node), SnapshotEvery: cfg.Engine.SnapshotEvery, Logger: e.logger,
		}, e.view)
		if err != nil {
			return fmt.Errorf("engine: %w", err)
		}
		e.log, e.node = l, newNode(e, l, cl.NodeTimeout)
		return nil
	}
	sync, err := log.ParseSyncPolicy(cfg.Engine.Sync)
	if err != nil {
		return fmt.Errorf("engine: %w", err)
	}
	l, err := log.Open(dir, e.view, log.Options{
		Sync:          sync,
		SyncInterval:  time.Duration(cfg.Engine.SyncIntervalMS) * time.Millisecond,
		InMemory:      inMemory,
		SnapshotEvery: cfg.Engine.SnapshotEvery,
		RetainBytes:   cfg.Engine.RetainBytes,
		RetainAge:     cfg.Engine.RetainAge,
		Logger:        e.logger,
	})
	if err != nil {
		return fmt.Errorf("engine: open log in %s: %w", dir, err)
	}
	e.log = l
	if inMemory {
		e.logger.Info("log kept in memory", "reason", "store_method in_memory")
	} else {
		rec := l.Recovered()
		e.logger.Info("log opened", "dir", dir, "first_index", l.FirstIndex(), "last_index", l.LastIndex(),
			"snapshot_index", rec.SnapshotIndex, "replayed", rec.Replayed, "sync", sync.String())
	}
	return nil
}

// sweepChannels drops data channels whose ends never connected.
func (e *Engine) sweepChannels() {
	t := time.NewTicker(time.Minute)
	defer t.Stop()
	for {
		select {
		case now := <-t.C:
			e.channels.sweep(now)
		case <-e.stopSweep:
			return
		}
	}
}

// checkPorts fails fast, before the log is opened and a start is recorded,
// when an address is already taken (the common way a start fails). listen
// still reports the rare port taken in between.
func checkPorts(cfg *config.Config) error {
	for i, l := range cfg.Listeners {
		if err := tryListen(net.JoinHostPort(l.Host, strconv.Itoa(l.Port)), i, false); err != nil {
			return err
		}
	}
	if s := cfg.Stream; s != nil {
		if err := tryListen(net.JoinHostPort(s.Host, strconv.Itoa(s.Port)), 0, true); err != nil {
			return err
		}
	}
	if h := cfg.HTTP; h != nil {
		addr := net.JoinHostPort(h.Host, strconv.Itoa(h.Port))
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			return &ListenError{Addr: addr, HTTP: true, Err: err}
		}
		ln.Close()
	}
	return nil
}

func tryListen(addr string, listener int, stream bool) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return &ListenError{Addr: addr, Listener: listener, Stream: stream, Err: err}
	}
	return ln.Close()
}

// ListenError is a listener that could not be bound: the start fails and
// the error names the address (and which listener it is, so the command
// line can say which flag moves it).
type ListenError struct {
	Addr     string
	Listener int  // index of the worker listener in the config (Stream and HTTP false)
	Stream   bool // the stream module's port
	HTTP     bool // the http module's port
	Err      error
}

func (e *ListenError) Error() string {
	what := "worker listener"
	switch {
	case e.Stream:
		what = "stream port"
	case e.HTTP:
		what = "http port"
	}
	return fmt.Sprintf("cannot listen on %s (%s): %v", e.Addr, what, e.Err)
}

func (e *ListenError) Unwrap() error { return e.Err }

// logLocation decides where the log lives: at the stream module's file_path
// when the config names one (the seed's ./data/stream_store), otherwise under
// the data directory; in memory when every configured store is in_memory.
func logLocation(cfg *config.Config, dataDir string) (dir string, inMemory bool) {
	dir = filepath.Join(dataDir, "log")
	anyStore, anyDisk := false, false
	if s := cfg.Stream; s != nil {
		anyStore = true
		if s.StoreMethod != "in_memory" {
			anyDisk = true
			if s.FilePath != "" {
				dir = s.FilePath
			}
		}
	}
	if s := cfg.State; s != nil {
		anyStore = true
		if s.StoreMethod != "in_memory" {
			anyDisk = true
		}
	}
	if q := cfg.Queue; q != nil {
		anyStore = true
		if q.StoreMethod != "in_memory" {
			anyDisk = true
			if q.FilePath != "" && (cfg.Stream == nil || cfg.Stream.FilePath == "") {
				dir = q.FilePath
			}
		}
	}
	return dir, anyStore && !anyDisk
}

// announceStart appends engine.started (which ends every connection of the
// previous run in the registry; in a cluster, this node's only) followed by
// the engine's own functions and trigger types, as one group commit. It
// returns the engine.started record's ID: this run's incarnation.
func (e *Engine) announceStart() (string, error) {
	recs := []*log.Record{{Kind: log.KindEngineStarted, Value: startedValue(false)}}
	for _, id := range sortedKeys(e.builtins) {
		b := e.builtins[id]
		recs = append(recs, &log.Record{Kind: log.KindFunctionRegistered, Worker: log.EngineWorker, Function: id, Value: b.registration()})
	}
	for _, id := range sortedKeys(e.builtinTypes) {
		recs = append(recs, &log.Record{Kind: log.KindTriggerTypeRegistered, Worker: log.EngineWorker, TriggerType: id,
			Value: []byte(`{"description":` + strconv.Quote(e.builtinTypes[id]+" trigger type") + `}`)})
	}
	if e.node != nil {
		e.node.log.Start() // history is applied; new records reach the change hook
	}
	if _, err := e.log.AppendBatch(recs); err != nil {
		return "", fmt.Errorf("engine: record start: %w", err)
	}
	return recs[0].ID.String(), nil
}

// startedValue is the value of an engine.started record; a cluster node
// that starts again after the others declared it lost says so.
func startedValue(rejoined bool) []byte {
	v := `{"version":` + strconv.Quote(Version)
	if rejoined {
		v += `,"rejoined":true`
	}
	return []byte(v + "}")
}

// listen binds every configured listener; a port that cannot be bound is
// fatal and the error names the address.
func (e *Engine) listen() error {
	wopts := wire.Options{
		MaxMessageBytes: e.cfg.Engine.MaxMessageBytes,
		SendQueueFrames: e.cfg.Engine.SendQueueFrames,
		SendQueueBytes:  e.cfg.Engine.SendQueueBytes,
		PingAfter:       e.cfg.Engine.PingAfter,
		IdleTimeout:     e.cfg.Engine.IdleTimeout,
		WriteDeadline:   e.cfg.Engine.WriteDeadline,
		MaxConnections:  e.cfg.Engine.MaxConnections,
		Telemetry:       true,
		Route:           e.channels.route, // data channels, on every worker listener
		Logger:          e.logger,
	}
	for i := range e.cfg.Listeners {
		lc := &e.cfg.Listeners[i]
		o := wopts
		o.HandshakeTimeout = lc.HandshakeTimeout
		o.AllowOrigin = originPolicy(lc)
		addr := net.JoinHostPort(lc.Host, strconv.Itoa(lc.Port))
		srv, err := wire.Listen(addr, &listener{e: e, cfg: lc}, o)
		if err != nil {
			return &ListenError{Addr: addr, Listener: i, Err: err}
		}
		e.servers = append(e.servers, srv)
		e.logger.Info("worker listener bound", "addr", boundAddr(lc.Host, srv), "rbac", lc.RBAC != nil)
	}
	if e.http != nil {
		if err := e.http.listen(); err != nil {
			return err
		}
	}
	if s := e.cfg.Stream; s != nil {
		o := wopts
		o.Telemetry, o.Route = false, nil
		addr := net.JoinHostPort(s.Host, strconv.Itoa(s.Port))
		e.streams = newStreamPort(e)
		srv, err := wire.Listen(addr, e.streams, o)
		if err != nil {
			return &ListenError{Addr: addr, Stream: true, Err: err}
		}
		e.servers = append(e.servers, srv)
		e.logger.Info("stream listener bound", "addr", boundAddr(s.Host, srv))
	}
	return nil
}

// originPolicy decides which browser origins may open a listener's
// WebSockets. Worker processes send no Origin and are never refused. A
// trusted listener gives full control of the engine, so a page a developer
// happens to open must not reach it: it refuses every Origin unless
// allowed_origins lists it. RBAC listeners are made for browsers and accept
// any Origin unless allowed_origins narrows them.
func originPolicy(lc *config.Listener) func(string) bool {
	if len(lc.AllowedOrigins) > 0 || lc.RBAC == nil {
		return wire.OriginList(lc.AllowedOrigins)
	}
	return nil
}

// boundAddr is the address a listener was bound to, with the configured
// host as written (0.0.0.0, not Go's [::]) and the port the OS gave.
func boundAddr(host string, srv *wire.Server) string {
	_, port, _ := net.SplitHostPort(srv.Addr().String())
	return net.JoinHostPort(host, port)
}

// StartExec starts the exec module, if configured. It runs after every
// listener is bound so the commands it starts can connect at once.
func (e *Engine) StartExec() {
	x := e.cfg.Exec
	if x == nil || len(x.Commands) == 0 {
		return
	}
	url := ""
	if len(e.cfg.Listeners) > 0 {
		url = "ws://127.0.0.1:" + strconv.Itoa(e.cfg.Listeners[0].Port)
	}
	e.exec = exec.Start(exec.Config{Commands: x.Commands, Watch: x.Watch, URL: url}, nil, nil, e.logger)
}

// Shutdown lets the invocations in flight finish (for up to
// Options.ShutdownGrace, or until ctx ends), stops the exec module, closes every connection and listener,
// and closes the log after the last write is durable.
func (e *Engine) Shutdown(ctx context.Context) error {
	for _, srv := range e.servers {
		srv.StopAccepting() // connections in flight go on; no new ones
	}
	if e.http != nil {
		e.http.shutdown(ctx) // no new requests; those in flight finish
	}
	if n := e.drain(ctx, e.opts.ShutdownGrace); n > 0 {
		e.logger.Warn("shutting down with invocations still in flight", "in_flight", n, "grace", e.opts.ShutdownGrace)
	}
	var errs []error
	if e.exec != nil {
		errs = append(errs, e.exec.Stop(ctx))
	}
	close(e.stopSweep)
	if e.queues != nil {
		close(e.queues.stop)
		<-e.queues.done
	}
	if e.cron != nil {
		close(e.cron.stop)
		<-e.cron.done
	}
	e.closeServers()
	if e.node != nil {
		e.node.close()
	}
	e.fan.stop()
	// A snapshot at shutdown makes the next start replay nothing.
	if err := e.log.Snapshot(); err != nil {
		e.logger.Warn("snapshot at shutdown failed", "err", err)
	}
	errs = append(errs, e.log.Close())
	return errors.Join(errs...)
}

// drain waits until no connection is executing a call, at most grace (or
// until ctx ends), and returns how many calls are still in flight.
func (e *Engine) drain(ctx context.Context, grace time.Duration) int {
	deadline := time.NewTimer(grace)
	defer deadline.Stop()
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for {
		n := 0
		e.mu.RLock()
		for _, s := range e.sessions {
			n += s.activeInvocations()
		}
		e.mu.RUnlock()
		if n == 0 {
			return 0
		}
		select {
		case <-tick.C:
		case <-deadline.C:
			return n
		case <-ctx.Done():
			return n
		}
	}
}

func (e *Engine) closeServers() {
	for _, s := range e.servers {
		s.Close()
	}
	if e.http != nil && e.http.srv != nil {
		e.http.srv.Close()
	}
}

// session returns the live session with that worker id, or nil.
func (e *Engine) session(workerID string) *session {
	e.mu.RLock()
	s := e.sessions[workerID]
	e.mu.RUnlock()
	return s
}
