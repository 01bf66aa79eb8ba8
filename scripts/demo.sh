#!/usr/bin/env bash
# The demo: the embedded engine, nothing to start. Installs the core into .venv on
# first use (never into the system Python).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/_uv.sh
echo "setup: installing gatekit into .venv (uv sync)…" >&2
uv sync --quiet --locked --no-dev --inexact
uv run --quiet --no-sync gatekit demo
