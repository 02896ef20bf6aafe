#!/usr/bin/env bash
# Installs what the todo example needs on a fresh machine: pnpm (pinned) when
# it is missing, then every package of the workspace exactly as locked.
# Idempotent and quick when everything is already there.
set -euo pipefail
cd "$(dirname "$0")"

PNPM_VERSION=12.4.2
# No "update available" box from pnpm or npm in the output.
export npm_config_update_notifier=false

if ! command -v pnpm >/dev/null 2>&1; then
  echo "todo setup: pnpm not found, installing pnpm@$PNPM_VERSION with npm" >&2
  npm install -g --no-audit --no-fund --loglevel=error "pnpm@$PNPM_VERSION"
fi

pnpm install --frozen-lockfile --reporter=append-only
