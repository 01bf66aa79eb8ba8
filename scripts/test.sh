#!/usr/bin/env bash
# The full test suite on a fresh machine: installs what the tests need, then runs
# lint, types, every test in the workspace environment (mcp 1.x), and the MCP
# adapter's tests again in an isolated mcp 2.x environment.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/_uv.sh

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

if ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then
  echo "installing PostgreSQL from Debian's packages…" >&2
  as_root apt-get update -qq
  DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq postgresql >/dev/null
fi

uv sync --locked --quiet
uv run --no-sync ruff check .
uv run --no-sync mypy
uv run --no-sync pytest "$@"
if [ -f scripts/test-mcp2.sh ]; then
  bash scripts/test-mcp2.sh
fi
