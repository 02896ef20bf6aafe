#!/usr/bin/env bash
# Runs the todo app with one command: installs what is missing (pnpm, the
# workspace's packages), builds the engine, starts it with the seed's
# iii-config.yaml (its exec module starts the API worker with `pnpm dev`) and
# the frontend's Vite dev server. Ctrl-C stops everything.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
web_port="${WEB_PORT:-5173}"

"$here/setup.sh"
echo "run: building the engine (bin/iii)"
(cd "$repo" && go build -o bin/iii ./cmd/iii)

cd "$here"
# Job control puts each background job in its own process group, so the
# cleanup can stop Vite together with the pnpm processes above it.
set -m
"$repo/bin/iii" --config iii-config.yaml &
engine=$!
# Say nothing about the app until the engine listens (a taken port ends here).
until (exec 3<>/dev/tcp/127.0.0.1/49134) 2>/dev/null; do
  if ! kill -0 "$engine" 2>/dev/null; then
    wait "$engine" || exit $?
    exit 1
  fi
  sleep 0.1
done
# stdin from /dev/null: a background job that reads the terminal is stopped.
# Vite runs directly, not through `pnpm web`: pnpm reports a child stopped by
# Ctrl-C as "[ELIFECYCLE] Command failed", once per pnpm level.
(cd web && exec ./node_modules/.bin/vite --port "$web_port" --strictPort </dev/null) &
web=$!

stop() {
  trap - INT TERM EXIT
  # The engine stops the API worker (the exec module's process group) itself.
  kill -TERM "$engine" 2>/dev/null || true
  kill -TERM -- "-$web" 2>/dev/null || true
  wait 2>/dev/null || true
}
trap stop INT TERM EXIT

echo "run: todo app on http://localhost:$web_port (engine: 49134 workers, 3111 browsers, 3112 streams)"
# Stop everything as soon as either side exits (a port taken, a crash).
wait -n
