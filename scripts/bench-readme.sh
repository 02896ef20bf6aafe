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
open("README.md", "w").write(head + start + "\n" + table + "\n" + end + tail)
PY
echo "README.md: benchmark table updated from $out"
