#!/usr/bin/env bash
# The full test suite on a fresh machine: installs what the tests need, then runs
# lint, types, every test in the workspace environment (mcp 1.x), and the MCP
# adapter's tests again in an isolated mcp 2.x environment. The system Python is
# never changed: tools and packages go into virtual environments in this folder
# (checked at the end).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/_uv.sh

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }
say() { echo "setup: $*" >&2; }
system_packages() { python3 -m pip list --format=freeze --disable-pip-version-check 2>/dev/null | sort; }

system_before="$(system_packages)"

if ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then
  say "installing PostgreSQL from Debian's packages (the store tests start a real server)…"
  as_root apt-get update -qq
  DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq postgresql >/dev/null
fi

if ! command -v node >/dev/null 2>&1; then
  say "installing Node.js and npm from Debian's packages (the MCP conformance tests run a reference server)…"
  as_root apt-get update -qq
  DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq nodejs npm >/dev/null
fi

if [ ! -x "${GATEKIT_CHROMIUM:-/usr/bin/chromium}" ]; then
  say "installing Chromium from Debian's packages (the review page's browser tests drive it)…"
  as_root apt-get update -qq
  DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq chromium >/dev/null
fi

say "installing the workspace into .venv (uv sync)…"
uv sync --locked --quiet
say "lint (ruff) and types (mypy --strict)…"
uv run --no-sync ruff check .
uv run --no-sync mypy
say "the isolated mcp 2.x environment (.venv-mcp2)…"
bash scripts/test-mcp2.sh --setup >/dev/null
say "tests…"
uv run --no-sync pytest "$@"
if [ -f scripts/test-mcp2.sh ]; then
  say "the MCP adapter's tests again under mcp 2.x (.venv-mcp2)…"
  bash scripts/test-mcp2.sh
fi

if [ "$(system_packages)" != "$system_before" ]; then
  echo "error: the test setup changed the system Python's installed packages" >&2
  diff <(echo "$system_before") <(system_packages) >&2 || true
  exit 1
fi
