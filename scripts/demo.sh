#!/usr/bin/env bash
# The demo: the embedded engine, nothing to start. Installs the core on first use.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/_uv.sh
uv sync --quiet --locked --no-dev --inexact
uv run --quiet --no-sync gatekit demo
