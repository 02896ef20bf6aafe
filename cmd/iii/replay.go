package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/iii-go/iii/cluster"
	"github.com/iii-go/iii/history"
	"github.com/iii-go/iii/log"
	"github.com/iii-go/iii/replay"
)

const replayUsage = `usage:
  iii replay [--data-dir DIR | --log-dir DIR] [filters] [--limit N] [--follow] [--format table|json]
  iii replay --at INDEX|TIME [--data-dir DIR | --log-dir DIR] [--format table|json]
  iii replay diff --from INDEX|TIME [--to INDEX|TIME] [--data-dir DIR | --log-dir DIR] [--format table|json]
  iii replay --nats URL [--nats-stream NAME] ... : any of the above on a cluster's log
filters: --stream S --group G --item I --kind K[,K...] (or family.*, e.g. queue.*)
         --worker W --function F --queue Q --job ID
         --from-index N --to-index N --since T --until T
TIME is RFC 3339 (2026-11-29T10:42:00Z) or a duration before now (15m, 2h).
--at prints the streams, state and registry as of that record; diff lists the
stream items created, changed and deleted in between (--to: default the end).
--follow keeps printing new records, polling the log (safe while the engine runs).
--data-dir is the engine's data directory (the log is in its log/) or the log
directory itself (the stream module's file_path); default ./data.
--nats reads a cluster's log from NATS JetStream instead of a data directory
(engine.cluster.nats_url; the stream is engine.cluster.stream, default iii;
--nats-creds FILE if needed); --at and diff then replay from the first record.
`

// runReplay is `iii replay`: it prints history from an engine's log. Exit
// status 2 means bad arguments, 1 a failure reading the log.
func runReplay(args []string) int {
	fl, err := parseFlags(args, map[string]bool{
		"data-dir": true, "log-dir": true, "format": true, "limit": true,
		"stream": true, "group": true, "item": true, "kind": true, "worker": true, "function": true, "queue": true, "job": true,
		"from-index": true, "to-index": true, "since": true, "until": true,
		"at": true, "from": true, "to": true, "nats": true, "nats-stream": true, "nats-creds": true,
	}, map[string]bool{"follow": true, "help": true, "h": true})
	if err != nil {
		return replayUsageError(err)
	}
	if fl.has("help", "h") {
		fmt.Print(replayUsage)
		return 0
	}
	diff := len(fl.positional) > 0 && fl.positional[0] == "diff"
	if diff {
		fl.positional = fl.positional[1:]
	}
	if len(fl.positional) > 0 {
		return replayUsageError(fmt.Errorf("unexpected argument %q", fl.positional[0]))
	}
	format := fl.get("format")
	if format != "" && format != "table" && format != "json" {
		return replayUsageError(fmt.Errorf("--format must be table or json, got %q", format))
	}
	hasFilter := fl.get("stream", "group", "item", "kind", "worker", "function", "queue", "job",
		"from-index", "to-index", "since", "until", "limit") != ""
	at := fl.get("at")
	switch {
	case diff && (at != "" || fl.has("follow") || hasFilter):
		return replayUsageError(errors.New("diff takes only --from, --to, the directory and --format"))
	case diff && fl.get("from") == "":
		return replayUsageError(errors.New("diff needs --from"))
	case !diff && (fl.get("from") != "" || fl.get("to") != ""):
		return replayUsageError(errors.New("--from and --to belong to `iii replay diff`"))
	case at != "" && (fl.has("follow") || hasFilter):
		return replayUsageError(errors.New("--at prints the whole state: it takes no filters and no --follow"))
	case fl.get("nats") != "" && fl.get("data-dir", "log-dir") != "":
		return replayUsageError(errors.New("--nats reads a cluster's log instead of a data directory: give one or the other"))
	}

	now := time.Now()
	var filter history.Filter
	var atPoint, from, to replay.Point
	toGiven := false
	switch {
	case diff:
		if from, err = replay.ParsePoint(fl.get("from"), now); err != nil {
			return replayUsageError(fmt.Errorf("--from: %w", err))
		}
		if toGiven = fl.get("to") != ""; toGiven {
			if to, err = replay.ParsePoint(fl.get("to"), now); err != nil {
				return replayUsageError(fmt.Errorf("--to: %w", err))
			}
		}
	case at != "":
		if atPoint, err = replay.ParsePoint(at, now); err != nil {
			return replayUsageError(fmt.Errorf("--at: %w", err))
		}
	default:
		filter, err = history.ParseFilter(history.FilterSpec{
			Stream: fl.get("stream"), Group: fl.get("group"), Item: fl.get("item"), Kind: fl.get("kind"),
			Worker: fl.get("worker"), Function: fl.get("function"), Queue: fl.get("queue"), Job: fl.get("job"),
			FromIndex: fl.get("from-index"), ToIndex: fl.get("to-index"),
			Since: fl.get("since"), Until: fl.get("until"), Limit: fl.get("limit"),
		}, now)
		if err != nil {
			return replayUsageError(err)
		}
	}

	var src replay.Source
	if url := fl.get("nats"); url != "" {
		r, err := cluster.OpenReader(url, fl.get("nats-creds"), fl.get("nats-stream"))
		if err != nil {
			return replayFail(err)
		}
		defer r.Close()
		src = replay.Source{Source: history.Source{Read: r.Read, Last: r.Last}} // no snapshots: views start from the first record
	} else {
		dir, err := replayDir(fl.get("data-dir"), fl.get("log-dir"))
		if err != nil {
			return replayFail(err)
		}
		src = replay.DirSource(dir)
	}
	stdout := io.Writer(os.Stdout)
	var progress *replay.Progress
	if !diff && at == "" && !fl.has("follow") && isTerminal(os.Stderr) {
		progress = replay.StartProgress(os.Stderr, src.Last)
		if isTerminal(os.Stdout) {
			stdout = progress.HideWriter(os.Stdout)
		}
	}
	var out replay.Writer
	if format == "json" {
		out = replay.NewJSONWriter(stdout)
	} else {
		out = replay.NewTableWriter(stdout, isTerminal(os.Stdout) && os.Getenv("NO_COLOR") == "" && os.Getenv("TERM") != "dumb")
	}

	switch {
	case diff:
		if !toGiven { // up to the last record
			last, err := src.Last()
			if err != nil {
				return replayFail(err)
			}
			to = replay.Point{Index: last}
		}
		changes, err := replay.DiffSource(src, from, to)
		if err == nil {
			err = out.Diff(from, to, changes)
		}
		if err != nil {
			return replayFail(err)
		}
	case at != "":
		st, err := replay.ViewAtSource(src, atPoint)
		if err == nil {
			err = out.View(st)
		}
		if err != nil {
			return replayFail(err)
		}
	case fl.has("follow"):
		ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
		defer stop()
		// Flushing once per poll shows records as they come and sizes the
		// table's columns over each batch.
		err := replay.FollowSource(ctx, src.Source, filter, out.Record, out.Flush)
		if err != nil {
			out.Flush()
			return replayFail(err)
		}
	default:
		err := replay.RecordsProgress(src.Source, filter, progress, out.Record)
		if progress != nil {
			progress.Stop()
		}
		if err != nil {
			out.Flush()
			return replayFail(err)
		}
	}
	if err := out.Flush(); err != nil {
		return replayFail(err)
	}
	return 0
}

// replayDir picks the log directory from --log-dir (the log itself) or
// --data-dir (either a data directory or the log itself).
func replayDir(dataDir, logDir string) (string, error) {
	switch {
	case logDir != "" && dataDir != "":
		return "", errors.New("give --data-dir or --log-dir, not both")
	case logDir != "":
		if fi, err := os.Stat(filepath.Join(logDir, "wal")); err != nil || !fi.IsDir() {
			return "", fmt.Errorf("%s: %w", logDir, log.ErrNotALog)
		}
		return logDir, nil
	case dataDir == "":
		dataDir = "data"
	}
	return replay.LogDir(dataDir)
}

// replayUsageError reports bad arguments in one line.
func replayUsageError(err error) int {
	fmt.Fprintf(os.Stderr, "iii replay: %v (see iii replay --help)\n", err)
	return 2
}

// replayFail reports a failure reading the log in one line.
func replayFail(err error) int {
	fmt.Fprintf(os.Stderr, "iii replay: %v\n", err)
	return 1
}

// isTerminal reports whether f is a character device (a terminal), without
// a terminal library.
func isTerminal(f *os.File) bool {
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}
