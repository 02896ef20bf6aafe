// Package bench measures the engine's throughput against raw baselines run
// in the same process, with the same client, in the same run: a bare gws
// relay and broadcast server, raw segment writes and reads, and an embedded
// NATS server.
// Machines are noisy, so every figure is reported next to its baseline and
// judged by the ratio, never in absolute terms.
//
// bench never imports the engine: the caller (`iii bench`) starts one and
// passes its address in Targets.
package bench

import (
	"context"
	"fmt"
	"io"
	"math"
	"os"
	"strings"
	"text/tabwriter"
	"time"
)

// Scenarios lists the scenario names Options.Scenario accepts, in the
// order Run runs them.
var Scenarios = []string{"invoke", "set", "store", "queue", "fanout", "replay", "memory", "nats", "cluster", "redis"}

// Targets is what the engine-side ("ours") measurements run against. A
// zero field skips the measurements that need it; baselines always run.
type Targets struct {
	// EngineURL is the ws:// address of a trusted worker listener of a
	// running engine whose log syncs on every write (sync: always).
	EngineURL string
	// StreamURL is that engine's stream port (the push fan-out needs it).
	StreamURL string
	// InProcess says that engine runs in this process, so its memory shows
	// in runtime.MemStats (the memory scenario needs it).
	InProcess bool
	// StartEngine starts another engine whose log lives in dir and returns
	// once it serves; stop shuts it down. The replay scenario times it on a
	// log of Options.Records records.
	StartEngine func(dir string) (stop func() error, err error)
	// StartClusterEngine starts an engine of a cluster (engine.cluster) on
	// the NATS servers natsURL names, as node, with its local directory dir
	// and the stream's replica count, and returns its worker URL. The
	// cluster scenario needs it.
	StartClusterEngine func(natsURL, node, dir string, replicas int) (url string, stop func() error, err error)
}

// Options tune a run. Zero values take the defaults.
type Options struct {
	// Duration of each measured run (default 3s); a scenario makes several.
	Duration time.Duration
	// Scenario runs just that one (see Scenarios); "" runs them all.
	Scenario string
	// Records is the size of the log the replay scenario builds (default 1 000 000).
	Records int
	// Subscribers are the fan-out sizes (default 100 and 1000).
	Subscribers []int
	// IdleConns is how many idle connections the memory scenario opens (default 2000).
	IdleConns int
	// TempDir holds the logs the store and replay scenarios write (default os.TempDir()).
	TempDir string
	// Out receives the table and the final `bench:` line (default os.Stdout).
	Out io.Writer
	// Progress receives one line per measurement as it starts (default: discarded).
	Progress io.Writer
	// Markdown writes the report as a Markdown table instead of aligned text.
	Markdown bool
}

func (o Options) withDefaults() Options {
	if o.Duration <= 0 {
		o.Duration = 3 * time.Second
	}
	if o.Records <= 0 {
		o.Records = 1_000_000
	}
	if len(o.Subscribers) == 0 {
		o.Subscribers = []int{100, 1000}
	}
	if o.IdleConns <= 0 {
		o.IdleConns = 2000
	}
	if o.TempDir == "" {
		o.TempDir = os.TempDir()
	}
	if o.Out == nil {
		o.Out = os.Stdout
	}
	if o.Progress == nil {
		o.Progress = io.Discard
	}
	return o
}

// Row is one line of the report. Ours and Baseline are NaN when not
// measured. Ratio is always Ours ÷ Baseline, whatever the unit: above 1 is
// better for a rate and worse for a latency, time or size.
type Row struct {
	Scenario string
	Unit     string // e.g. "calls/s", "µs", "ms", "B"
	Ours     float64
	Baseline float64
	// Against names the baseline ("relay", "raw wal", "NATS", ...).
	Against string
	// Note holds what else is worth knowing: errors, p99, why a side is missing.
	Note string
}

// Ratio is Ours ÷ Baseline, NaN when either is missing.
func (r Row) Ratio() float64 {
	if math.IsNaN(r.Ours) || math.IsNaN(r.Baseline) || r.Baseline == 0 {
		return math.NaN()
	}
	return r.Ours / r.Baseline
}

// Summary holds the figures of the final `bench:` line; NaN = not measured.
type Summary struct {
	InvokeRatio  float64 // invoke calls/s, 64 in flight on 8 connections: engine ÷ relay
	SetRatio     float64 // stream::set/s, 64 in flight on 8 connections: engine ÷ relay (echo worker)
	StoreRatio   float64 // durable appends/s, 64 appenders: log ÷ raw segment writes
	FanoutRatio  float64 // deliveries/s at the largest fan-out: engine ÷ gws broadcast
	ReplayRate   float64 // records/s log.Scan reads
	VsNATSInvoke float64 // invoke calls/s, 64 in flight on 8 connections: engine ÷ NATS request/reply
	VsNATSFanout float64 // trigger deliveries/s at the largest fan-out: engine ÷ NATS
	VsNATSPush   float64 // stream-port deliveries/s at the largest fan-out: engine ÷ NATS
	QueueRatio   float64 // jobs enqueued and handled/s: engine ÷ durable log appends (two records a job)
	// ClusterSetRatio is stream::set/s, 64 in flight on 8 connections: a
	// cluster engine on JetStream R1 ÷ the engine on its local WAL.
	ClusterSetRatio float64
	// CrossInvokeRatio is calls/s, 64 in flight on 8 connections, to a
	// worker on another node ÷ to a worker on the same engine.
	CrossInvokeRatio float64
	// VsRedisSet is stream::set/s, 64 in flight on 8 connections, against
	// Redis XADD with appendfsync always (NaN without redis-server).
	VsRedisSet float64
}

// Line is the machine-readable last line of the output.
func (s Summary) Line() string {
	f := func(v float64, prec int) string {
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return "n/a"
		}
		return fmt.Sprintf("%.*f", prec, v)
	}
	return fmt.Sprintf("bench: invoke_ratio=%s set_ratio=%s store_ratio=%s fanout_ratio=%s replay_rate=%s vs_nats_invoke=%s vs_nats_fanout=%s queue_ratio=%s cluster_set_ratio=%s cross_invoke_ratio=%s vs_nats_push=%s vs_redis_set=%s",
		f(s.InvokeRatio, 3), f(s.SetRatio, 3), f(s.StoreRatio, 3), f(s.FanoutRatio, 3), f(s.ReplayRate, 0), f(s.VsNATSInvoke, 3), f(s.VsNATSFanout, 3), f(s.QueueRatio, 3),
		f(s.ClusterSetRatio, 3), f(s.CrossInvokeRatio, 3), f(s.VsNATSPush, 3), f(s.VsRedisSet, 3))
}

// Report is everything a run measured.
type Report struct {
	Rows    []Row
	Summary Summary
}

// WriteTable writes the rows as an aligned table followed by the summary line.
func (r *Report) WriteTable(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "scenario\tours\tbaseline\tratio\tnote")
	for _, row := range r.Rows {
		fmt.Fprintln(tw, strings.Join(row.cells(), "\t"))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	_, err := fmt.Fprintln(w, r.Summary.Line())
	return err
}

// WriteMarkdown writes the rows as a Markdown table followed by the
// summary line in a code block (what `make bench-readme` puts in the
// README).
func (r *Report) WriteMarkdown(w io.Writer) error {
	fmt.Fprintln(w, "| scenario | ours | raw baseline (same run) | ratio | note |")
	fmt.Fprintln(w, "|---|---|---|---|---|")
	for _, row := range r.Rows {
		fmt.Fprintf(w, "| %s |\n", strings.Join(row.cells(), " | "))
	}
	_, err := fmt.Fprintf(w, "\n```\n%s\n```\n", r.Summary.Line())
	return err
}

// Estimate is roughly how long Run takes with o: each scenario makes
// several measurements of o.Duration, and replay first writes its log.
func Estimate(o Options) time.Duration {
	o = o.withDefaults()
	runs := map[string]float64{"invoke": 8, "set": 6, "store": 2, "queue": 2, "fanout": 8, "replay": 3, "memory": 1, "nats": 8, "cluster": 8, "redis": 2}
	fixed := map[string]time.Duration{"replay": 15 * time.Second, "memory": 5 * time.Second, "cluster": 10 * time.Second}
	var total time.Duration
	for _, s := range Scenarios {
		if o.Scenario == "" || o.Scenario == s {
			total += time.Duration(runs[s]*float64(o.Duration)) + fixed[s]
		}
	}
	return total
}

// cells are a row's columns as printed: scenario, ours, baseline (against
// what), ratio, note.
func (row Row) cells() []string {
	base := formatValue(row.Baseline, row.Unit)
	if row.Against != "" && !math.IsNaN(row.Baseline) {
		base += " (" + row.Against + ")"
	}
	ratio := "—"
	if v := row.Ratio(); !math.IsNaN(v) {
		ratio = fmt.Sprintf("%.3f", v)
	}
	return []string{row.Scenario, formatValue(row.Ours, row.Unit), base, ratio, row.Note}
}

func formatValue(v float64, unit string) string {
	switch {
	case math.IsNaN(v):
		return "—"
	case v >= 1e6 && strings.HasSuffix(unit, "/s"):
		return fmt.Sprintf("%.2fM %s", v/1e6, unit)
	case v >= 100:
		return fmt.Sprintf("%.0f %s", v, unit)
	default:
		return fmt.Sprintf("%.2f %s", v, unit)
	}
}

// runner carries one Run's settings and collects its rows.
type runner struct {
	ctx context.Context
	t   Targets
	o   Options
	rep *Report
}

func (r *runner) progress(format string, args ...any) {
	fmt.Fprintf(r.o.Progress, "bench: "+format+"\n", args...)
}

func (r *runner) add(row Row) {
	r.rep.Rows = append(r.rep.Rows, row)
}

// fail records a scenario that could not be measured; a benchmark never
// fails the run.
func (r *runner) fail(scenario string, err error) {
	r.add(Row{Scenario: scenario, Ours: math.NaN(), Baseline: math.NaN(), Note: "not measured: " + err.Error()})
}

// Run runs the chosen scenarios, writes the table and the final `bench:`
// line to Options.Out and returns the report. A scenario that cannot run
// is reported in the table, not returned as an error; the error is for a
// bad option or a cancelled context.
func Run(ctx context.Context, t Targets, o Options) (*Report, error) {
	o = o.withDefaults()
	funcs := map[string]func(*runner) error{
		"invoke":  (*runner).invoke,
		"set":     (*runner).set,
		"store":   (*runner).store,
		"queue":   (*runner).queue,
		"fanout":  (*runner).fanout,
		"replay":  (*runner).replay,
		"memory":  (*runner).memory,
		"nats":    (*runner).nats,
		"cluster": (*runner).cluster,
		"redis":   (*runner).redis,
	}
	run := Scenarios
	if o.Scenario != "" {
		if funcs[o.Scenario] == nil {
			return nil, fmt.Errorf("bench: unknown scenario %q (want one of %s)", o.Scenario, strings.Join(Scenarios, ", "))
		}
		run = []string{o.Scenario}
	}
	nan := math.NaN()
	r := &runner{ctx: ctx, t: t, o: o, rep: &Report{Summary: Summary{nan, nan, nan, nan, nan, nan, nan, nan, nan, nan, nan, nan}}}
	for _, name := range run {
		if err := ctx.Err(); err != nil {
			return r.rep, err
		}
		r.progress("scenario %s", name)
		if err := funcs[name](r); err != nil {
			r.fail(name, err)
		}
	}
	if o.Markdown {
		return r.rep, r.rep.WriteMarkdown(o.Out)
	}
	return r.rep, r.rep.WriteTable(o.Out)
}

// nanIf returns NaN instead of v when the side was not measured.
func nanIf(missing bool, v float64) float64 {
	if missing {
		return math.NaN()
	}
	return v
}
