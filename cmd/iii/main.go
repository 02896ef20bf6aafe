// Command iii runs the iii engine, and offers a few tools around it:
// `iii trigger` calls a function on a running engine, `iii replay` explains
// the engine's history from its log, `iii bench` measures throughput
// against raw baselines.
package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/iii-go/iii/engine"
	"github.com/iii-go/iii/engine/config"
)

const usage = `usage:
  iii [-c|--config PATH] [--data-dir DIR] [--log-format text|json] [--log-level LEVEL]
  iii trigger <function_id> [key=value ...] [--json '<object>'] [--address HOST] [--port N] [--timeout-ms N]
  iii replay [--data-dir DIR] [filters] [--at INDEX|TIME] [--follow] [--format table|json]
  iii replay diff --from A [--to B] [--data-dir DIR]
  iii bench [--duration D] [--scenario invoke|set|store|fanout|replay|memory|nats]
  iii --version
`

func main() {
	args := os.Args[1:]
	if len(args) > 0 {
		switch args[0] {
		case "trigger", "t":
			os.Exit(runTrigger(args[1:]))
		case "replay":
			os.Exit(runReplay(args[1:]))
		case "bench":
			os.Exit(runBench(args[1:]))
		case "help", "-h", "--help":
			fmt.Print(usage)
			return
		}
	}
	os.Exit(runEngine(args))
}

// runEngine parses the engine's flags, starts it and waits for a signal.
func runEngine(args []string) int {
	fl, err := parseFlags(args, map[string]bool{"config": true, "c": true, "data-dir": true, "log-format": true, "log-level": true}, map[string]bool{"version": true, "v": true})
	if err != nil {
		fmt.Fprintf(os.Stderr, "iii: %v\n%s", err, usage)
		return 2
	}
	if len(fl.positional) > 0 {
		fmt.Fprintf(os.Stderr, "iii: unknown command %q\n%s", fl.positional[0], usage)
		return 2
	}
	if fl.has("version", "v") {
		fmt.Println("iii", engine.Version)
		return 0
	}
	logger, err := newLogger(fl.get("log-format"), fl.get("log-level"))
	if err != nil {
		fmt.Fprintf(os.Stderr, "iii: %v\n", err)
		return 2
	}
	slog.SetDefault(logger)

	cfg, err := config.Load(fl.get("config", "c"))
	if err != nil {
		fmt.Fprintf(os.Stderr, "iii: %v\n", err)
		return 1
	}
	for _, w := range cfg.Warnings {
		logger.Warn(w)
	}
	dataDir := fl.get("data-dir")
	if dataDir == "" {
		dataDir = "data"
	}
	e, err := engine.New(cfg, engine.Options{DataDir: dataDir, Logger: logger})
	if err != nil {
		fmt.Fprintf(os.Stderr, "iii: %v\n", err)
		return 1
	}
	e.StartExec()
	logger.Info("ready", "version", engine.Version, "config", configName(cfg))

	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM)
	s := <-sig
	logger.Info("shutting down", "signal", s.String())
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := e.Shutdown(ctx); err != nil {
		logger.Error("shutdown", "err", err)
		return 1
	}
	return 0
}

func configName(cfg *config.Config) string {
	if cfg.Path == "" {
		return "embedded default"
	}
	return cfg.Path
}

func newLogger(format, level string) (*slog.Logger, error) {
	var lvl slog.Level
	if level != "" {
		if err := lvl.UnmarshalText([]byte(level)); err != nil {
			return nil, fmt.Errorf("--log-level %q: %w", level, err)
		}
	}
	opts := &slog.HandlerOptions{Level: lvl}
	switch format {
	case "", "text":
		return slog.New(slog.NewTextHandler(os.Stderr, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(os.Stderr, opts)), nil
	}
	return nil, errors.New("--log-format must be text or json, got " + format)
}
