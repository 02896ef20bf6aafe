#!/usr/bin/env bash
# Runs every test of the project on a fresh machine: installs what the tests
# need (Node packages, Chromium for the browser tests), then the Go unit
# tests, then the end-to-end suites against the real binary.
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n=== %s\n' "$*"; }

step "go vet"
go vet ./...

step "go build"
go build -o bin/iii ./cmd/iii
# The NATS server the cluster end-to-end tests run, from the module in go.mod.
go build -o bin/nats-server github.com/nats-io/nats-server/v2

step "go test"
go test -race -count=1 ./...

# Each fuzz target briefly on top of its committed seeds: a regression in a
# decoder that faces untrusted bytes shows up here, not in production.
step "fuzz (${FUZZTIME:=5s} each)"
fuzz() { go test -run='^$' -fuzz="^${target#*:}\$" -fuzztime="$FUZZTIME" "./${target%%:*}" 2>&1; }
for target in wire:FuzzDecode wire:FuzzDecodeStreamRequest wire:FuzzSkipDeep wire:FuzzDecodeFlatObject \
  projections:FuzzApplyOps log:FuzzDecodeRecord engine/config:FuzzParse; do
  if ! out=$(fuzz); then
    # Go 1.26's fuzz coordinator can fail a clean run with a bare "context
    # deadline exceeded" at the -fuzztime boundary (golang/go#75804, fixed
    # in 1.27). A real finding writes its input; only the bare case is
    # run once more.
    if grep -q 'context deadline exceeded' <<<"$out" && ! grep -q 'Failing input written' <<<"$out"; then
      echo "retry ${target}: fuzz coordinator deadline race (golang/go#75804), no failing input"
      out=$(fuzz) || { printf '%s\n' "$out"; exit 1; }
    else
      printf '%s\n' "$out"
      exit 1
    fi
  fi
  echo "ok ${target}"
done

export npm_config_update_notifier=false
step "node packages"
for dir in e2e client/browser; do
  (cd "$dir" && npm ci --no-audit --no-fund --loglevel=error)
done
# The todo example (pnpm, pinned; installed when missing) for the browser test.
bash examples/todo/setup.sh

if ! command -v chromium >/dev/null; then
  step "chromium"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >/dev/null && apt-get install -y -qq -o Dpkg::Use-Pty=0 chromium >/dev/null 2>&1
fi

step "end-to-end"
files=$(ls e2e/*.test.mjs client/browser/test/*.test.mjs 2>/dev/null || true)
if [ -n "$files" ]; then
  # shellcheck disable=SC2086
  node --experimental-websocket --test --test-concurrency=2 --test-reporter=spec $files
fi
