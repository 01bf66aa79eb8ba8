# Sourced by the other scripts: make `uv` available with nothing but python3,
# without touching the system interpreter. uv is installed from PyPI into its own
# virtual environment (.venv-tools/, ignored by git); the system site-packages
# are never written to.
TOOLS_VENV="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)/.venv-tools"

uv() {
  if [[ ! -x "$TOOLS_VENV/bin/uv" ]]; then
    echo "setup: installing uv from PyPI into $TOOLS_VENV (once)…" >&2
    python3 -m venv "$TOOLS_VENV"
    "$TOOLS_VENV/bin/python" -m pip install --quiet --disable-pip-version-check uv
  fi
  "$TOOLS_VENV/bin/uv" "$@"
}
