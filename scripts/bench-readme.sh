#!/usr/bin/env bash
# Runs `iii bench` and puts its table in the README (between the
# bench-table markers) with the date, the command and the machine, so the
# published numbers always come from a run. BENCH_DURATION sets the length
# of each measurement (default 1s).
set -euo pipefail
cd "$(dirname "$0")/.."
duration="${BENCH_DURATION:-1s}"
go build -o bin/iii ./cmd/iii
out=bench/last-run.md
cpu=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//' || echo unknown)
mem=$(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo)
{
  echo "Run of $(date -u +%Y-%m-%d), \`iii bench --duration $duration\`, $(nproc) × $cpu, $mem," \
    "load average $(cut -d' ' -f1 /proc/loadavg) at the start:"
  echo
  ./bin/iii bench --duration "$duration" --markdown
} >"$out"
python3 - "$out" <<'PY'
import sys, re
table = open(sys.argv[1]).read().strip()
readme = open("README.md").read()
start, end = "<!-- bench-table:start -->", "<!-- bench-table:end -->"
if start not in readme or end not in readme:
    sys.exit("README.md has no bench-table markers")
head, rest = readme.split(start, 1)
_, tail = rest.split(end, 1)
readme = head + start + "\n" + table + "\n" + end + tail

# The targets' status, from the summary line and the rows of the same run.
summary = dict(kv.split("=") for kv in re.search(r"^bench: (.*)$", table, re.M).group(1).split())
def num(key):
    try:
        return float(summary[key])
    except (KeyError, ValueError):
        return None
def row(name):
    m = re.search(r"^\| " + re.escape(name) + r" \| ([0-9.]+) ([^ |]+) \| ([0-9.]+|—)", table, re.M)
    if not m:
        return None
    base = float(m.group(3)) if m.group(3) != "—" else None
    return (float(m.group(1)), m.group(2), base)
targets = []
def target(goal, value, ok, shown):
    status = "n/a" if value is None else ("**met**" if ok else "**not met**")
    targets.append(f"| {goal} | {status} ({shown}) |")
v = num("invoke_ratio"); target("invoke_ratio ≥ 1.0", v, v is not None and v >= 1.0, v)
v = num("set_ratio"); target("durable set_ratio ≥ 0.65 of the relay", v, v is not None and v >= 0.65, v)
p50 = row("invoke c=1 p50")
target("invoke c=1 p50 ≤ relay p50 + 15 µs", p50, p50 is not None and p50[0] <= p50[2] + 15,
       p50 and f"{p50[0]:.1f} vs {p50[2]:.1f} µs")
v = num("vs_nats_fanout"); target("trigger fan-out ≥ 0.5 of NATS", v, v is not None and v >= 0.5, v)
v = num("vs_redis_set"); target("durable set ≥ 1.0× Redis appendfsync always", v, v is not None and v >= 1.0, v)
v = num("vs_nats_push"); target("push fan-out to 1000 stream-port subscribers ≥ 0.8 of NATS", v, v is not None and v >= 0.8, v)
v = num("replay_rate"); target("replay ≥ 1M records/s", v, v is not None and v >= 1e6, v and f"{v/1e6:.2f}M/s")
snap = row("log.Open 1M, snapshot")
target("restart from a snapshot with 1M records < 0.5 s", snap, snap is not None and snap[0] < 500, snap and f"{snap[0]:.0f} ms")
mem = row("memory per idle connection (2000)")
target("≤ 16 KiB per idle connection", mem, mem is not None and mem[0] <= 16384, mem and f"{mem[0]:.0f} B")
start, end = "<!-- bench-targets:start -->", "<!-- bench-targets:end -->"
head, rest = readme.split(start, 1)
_, tail = rest.split(end, 1)
readme = head + start + "\n| target | status |\n|---|---|\n" + "\n".join(targets) + "\n" + end + tail
open("README.md", "w").write(readme)
PY
echo "README.md: benchmark table updated from $out"
