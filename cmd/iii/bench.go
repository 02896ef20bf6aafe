package main

import (
	"cmp"
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"runtime/pprof"
	"slices"
	"strconv"
	"syscall"
	"time"

	"github.com/iii-go/iii/bench"
	"github.com/iii-go/iii/engine"
	"github.com/iii-go/iii/engine/config"
)

const benchUsage = `usage:
  iii bench [--duration D] [--scenario NAME] [--markdown] [--cpuprofile FILE]
Runs the throughput benchmarks against an engine started in this process on
free loopback ports with a temporary data directory, each next to its raw
baseline. --duration is the length of EACH measured run (default 3s); a
scenario makes several, so the whole run takes far longer (an estimate is
printed first: about a minute per second of --duration for all of them);
--scenario runs one of: invoke, set, store, queue, fanout, replay, memory, nats,
cluster (engines on a NATS JetStream log the bench starts itself), redis
(durable sets against redis-server with appendfsync always, when installed).
--cpuprofile writes a pprof CPU profile of the whole run (engine, clients and
baselines share the process; read it with go tool pprof).
The last line of the output is machine-readable (bench: key=value ...).
`

// benchNeedsEngine lists the scenarios that load the running engine
// (replay starts its own).
var benchNeedsEngine = map[string]bool{"": true, "invoke": true, "set": true, "queue": true, "fanout": true, "memory": true, "nats": true, "cluster": true, "redis": true}

// runBench is `iii bench`. Exit status 2 means bad arguments, 1 that the
// engine could not start (the baselines are still reported); slow numbers
// are never a failure.
func runBench(args []string) int {
	fl, err := parseFlags(args, map[string]bool{"duration": true, "scenario": true, "cpuprofile": true}, map[string]bool{"help": true, "h": true, "markdown": true})
	if err != nil || len(fl.positional) > 0 {
		if err == nil {
			err = fmt.Errorf("unexpected argument %q", fl.positional[0])
		}
		fmt.Fprintf(os.Stderr, "iii bench: %v\n%s", err, benchUsage)
		return 2
	}
	if fl.has("help", "h") {
		fmt.Print(benchUsage)
		return 0
	}
	opts := bench.Options{Scenario: fl.get("scenario"), Out: os.Stdout, Progress: os.Stderr, Markdown: fl.has("markdown")}
	if opts.Scenario != "" && !slices.Contains(bench.Scenarios, opts.Scenario) {
		fmt.Fprintf(os.Stderr, "iii bench: unknown scenario %q\n%s", opts.Scenario, benchUsage)
		return 2
	}
	if v := fl.get("duration"); v != "" {
		if opts.Duration, err = time.ParseDuration(v); err != nil || opts.Duration <= 0 {
			fmt.Fprintf(os.Stderr, "iii bench: --duration %q: want a positive duration such as 3s\n", v)
			return 2
		}
	}
	fmt.Fprintf(os.Stderr, "iii bench: each measurement runs %s; this run takes about %s\n",
		cmp.Or(opts.Duration, 3*time.Second), bench.Estimate(opts).Round(time.Second))

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	tmp, err := os.MkdirTemp("", "iii-bench-*")
	if err != nil {
		fmt.Fprintf(os.Stderr, "iii bench: %v\n", err)
		return 1
	}
	defer os.RemoveAll(tmp)
	opts.TempDir = tmp
	// Engine logs would interleave with the table; only errors are shown.
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError}))

	targets := bench.Targets{
		InProcess: true,
		StartEngine: func(logDir string) (func() error, error) {
			_, stop, err := startBenchEngine(logDir, logger, nil)
			return stop, err
		},
		StartClusterEngine: func(natsURL, node, dir string, replicas int) (string, func() error, error) {
			urls, stop, err := startBenchEngine(dir, logger, &config.Cluster{NATSURL: natsURL, Node: node, Stream: config.DefaultClusterStream,
				Replicas: replicas, NodeTimeout: config.DefaultClusterNodeTimeout})
			return urls[0], stop, err
		},
	}
	status := 0
	if benchNeedsEngine[opts.Scenario] {
		urls, stopEngine, err := startBenchEngine(filepath.Join(tmp, "engine-log"), logger, nil)
		if err != nil {
			fmt.Fprintf(os.Stderr, "iii bench: engine: %v (measuring the baselines only)\n", err)
			status = 1
		} else {
			defer stopEngine()
			targets.EngineURL, targets.StreamURL = urls[0], urls[1]
		}
	}
	if path := fl.get("cpuprofile"); path != "" {
		f, err := os.Create(path)
		if err == nil {
			err = pprof.StartCPUProfile(f)
		}
		if err != nil {
			fmt.Fprintf(os.Stderr, "iii bench: --cpuprofile: %v\n", err)
			return 2
		}
		defer f.Close()
		defer pprof.StopCPUProfile()
	}
	if _, err := bench.Run(ctx, targets, opts); err != nil {
		fmt.Fprintf(os.Stderr, "iii bench: %v\n", err)
		return 1
	}
	return status
}

// startBenchEngine starts an engine with sync: always whose log lives in
// logDir (with cl, on the cluster's JetStream stream, logDir keeping its
// snapshots), on free loopback ports, and returns its worker and stream
// port URLs.
func startBenchEngine(logDir string, logger *slog.Logger, cl *config.Cluster) ([2]string, func() error, error) {
	var urls [2]string
	workerPort, err := bench.FreeLoopbackPort()
	if err != nil {
		return urls, nil, err
	}
	streamPort, err := bench.FreeLoopbackPort()
	if err != nil {
		return urls, nil, err
	}
	cfg := config.Default()
	cfg.Listeners[0].Host, cfg.Listeners[0].Port = "127.0.0.1", workerPort
	cfg.Stream.Host, cfg.Stream.Port, cfg.Stream.FilePath = "127.0.0.1", streamPort, logDir
	cfg.Engine.Sync = "always"
	cfg.Engine.Cluster = cl
	bq := config.DefaultQueueConfig()
	bq.Concurrency = 64
	cfg.Queue = &config.Queue{StoreMethod: config.StoreFileBased, Queues: map[string]config.QueueConfig{"default": config.DefaultQueueConfig(), "bench": bq}}
	e, err := engine.New(cfg, engine.Options{DataDir: filepath.Dir(logDir), Logger: logger})
	if err != nil {
		return urls, nil, err
	}
	stop := func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		return e.Shutdown(ctx)
	}
	urls = [2]string{"ws://127.0.0.1:" + strconv.Itoa(workerPort) + "/", "ws://127.0.0.1:" + strconv.Itoa(streamPort) + "/"}
	return urls, stop, nil
}
