#!/usr/bin/env bash
# Run the gatekit-mcp tests under mcp 2.x, in an isolated environment (.venv-mcp2).
#
# The workspace's main environment has mcp 1.x (crewai pins mcp<2); gatekit-mcp
# supports both, so CI runs its tests in each. Packages come from the package
# registries through uv; the exit code of pytest is this script's exit code.
# ``--setup`` builds (or refreshes) the environment and runs nothing.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="$ROOT/.venv-mcp2"
cd "$ROOT"
source scripts/_uv.sh

if [[ ! -x "$VENV/bin/python" ]]; then
    uv venv --quiet --python "$(command -v python3)" "$VENV"
fi
uv pip install --quiet --python "$VENV/bin/python" \
    -e . -e adapters/gatekit-mcp "mcp>=2,<3" pytest pytest-timeout anyio pyyaml

"$VENV/bin/python" -c "import importlib.metadata as m; print('mcp', m.version('mcp'))"
if [[ "${1:-}" == "--setup" ]]; then
    exit 0  # the environment only (the README's mcp 2.x snippet test runs in it)
fi
exec "$VENV/bin/python" -m pytest adapters/gatekit-mcp "$@"
