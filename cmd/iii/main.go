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
	"strconv"
	"syscall"
	"time"

	"github.com/iii-go/iii/engine"
	"github.com/iii-go/iii/engine/config"
)

const usage = `usage:
  iii [-c|--config PATH] [--data-dir DIR] [--port N] [--stream-port N] [--host HOST]
      [--log-format text|json] [--log-level LEVEL]
  iii trigger <function_id> [key=value ...] [--json '<object>'] [--address HOST] [--port N] [--timeout-ms N]
  iii replay [--data-dir DIR] [filters] [--at INDEX|TIME] [--follow] [--format table|json]
  iii replay diff --from A [--to B] [--data-dir DIR]
  iii bench [--duration D] [--scenario invoke|set|store|fanout|replay|memory|nats]
  iii --version
Every sub-command takes --help.
`

const engineUsage = `usage: iii [flags]
Runs the engine. Without --config it loads ./config.yaml when there is one,
else the embedded default: a trusted worker listener on 0.0.0.0:49134, the
stream port on 0.0.0.0:3112 and the stream and state modules, with data
under ./data.
  -c, --config PATH    config file, either style (env III_CONFIG)
  --data-dir DIR       where data lives when the config names no path (env III_DATA_DIR; default ./data)
  --port N             port of the first worker listener (env III_PORT; default 49134)
  --stream-port N      port of the stream module (env III_STREAM_PORT; default 3112)
  --host HOST          address every listener binds (env III_HOST; default from the config, 0.0.0.0)
  --log-format F       text or json (default text)
  --log-level L        debug, info, warn or error (default info)
  -v, --version        print the version
A flag wins over its environment variable, which wins over the config file.
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
		case "help":
			fmt.Print(usage)
			return
		}
	}
	os.Exit(runEngine(args))
}

// runEngine parses the engine's flags, starts it and waits for a signal.
func runEngine(args []string) int {
	fl, err := parseFlags(args, map[string]bool{"config": true, "c": true, "data-dir": true, "log-format": true, "log-level": true,
		"port": true, "stream-port": true, "host": true}, map[string]bool{"version": true, "v": true, "help": true, "h": true})
	if err != nil {
		fmt.Fprintf(os.Stderr, "iii: %v\n%s", err, usage)
		return 2
	}
	if len(fl.positional) > 0 {
		fmt.Fprintf(os.Stderr, "iii: unknown command %q\n%s", fl.positional[0], usage)
		return 2
	}
	if fl.has("help", "h") {
		fmt.Print(engineUsage + "\n" + usage)
		return 0
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

	cfg, err := config.Load(setting(fl, "III_CONFIG", "config", "c"))
	if err != nil {
		fmt.Fprintf(os.Stderr, "iii: %v\n", err)
		return 1
	}
	if err := overrideAddresses(cfg, fl); err != nil {
		fmt.Fprintf(os.Stderr, "iii: %v\n", err)
		return 2
	}
	for _, w := range cfg.Warnings {
		logger.Warn(w)
	}
	dataDir := setting(fl, "III_DATA_DIR", "data-dir")
	if dataDir == "" {
		dataDir = "data"
	}
	e, err := engine.New(cfg, engine.Options{DataDir: dataDir, Logger: logger})
	if err != nil {
		fmt.Fprintf(os.Stderr, "iii: %v%s\n", err, portHint(cfg, err))
		return 1
	}
	e.StartExec()
	logger.Info("ready", "version", engine.Version, "config", configName(cfg))

	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM)
	s := <-sig
	logger.Info("shutting down", "signal", s.String())
	go func() {
		s := <-sig
		logger.Warn("second signal: exiting at once", "signal", s.String())
		os.Exit(1)
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := e.Shutdown(ctx); err != nil {
		logger.Error("shutdown", "err", err)
		return 1
	}
	return 0
}

// setting is the value of the first of the flags given, else the
// environment variable env.
func setting(fl *flags, env string, names ...string) string {
	if v := fl.get(names...); v != "" {
		return v
	}
	return os.Getenv(env)
}

// overrideAddresses applies --port, --stream-port and --host (or their
// environment variables) on top of the config.
func overrideAddresses(cfg *config.Config, fl *flags) error {
	port := func(flag, env string) (int, bool, error) {
		v := setting(fl, env, flag)
		if v == "" {
			return 0, false, nil
		}
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 || n > 65535 {
			return 0, false, fmt.Errorf("--%s (or %s) must be a port number from 0 to 65535, got %q", flag, env, v)
		}
		return n, true, nil
	}
	if n, ok, err := port("port", "III_PORT"); err != nil {
		return err
	} else if ok {
		cfg.Listeners[0].Port = n
	}
	if n, ok, err := port("stream-port", "III_STREAM_PORT"); err != nil {
		return err
	} else if ok {
		if cfg.Stream == nil {
			return errors.New("--stream-port (or III_STREAM_PORT): the config has no stream module")
		}
		cfg.Stream.Port = n
	}
	if host := setting(fl, "III_HOST", "host"); host != "" {
		for i := range cfg.Listeners {
			cfg.Listeners[i].Host = host
		}
		if cfg.Stream != nil {
			cfg.Stream.Host = host
		}
	}
	return nil
}

// portHint tells how to move off a port that is taken.
func portHint(cfg *config.Config, err error) string {
	var le *engine.ListenError
	if !errors.As(err, &le) {
		return ""
	}
	switch {
	case le.Stream:
		return " (choose another with --stream-port or III_STREAM_PORT)"
	case le.HTTP:
		return fmt.Sprintf(" (this is iii-http's port: change it in %s)", configName(cfg))
	case le.Listener == 0:
		return " (choose another with --port or III_PORT)"
	default:
		return fmt.Sprintf(" (this is worker listener %d of %s: change its port there)", le.Listener+1, configName(cfg))
	}
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
