# Sourced by the other scripts: make `uv` available with nothing but python3.
uv() {
  if ! python3 -m uv --version >/dev/null 2>&1; then
    echo "installing uv with pip…" >&2
    python3 -m pip install --quiet uv 2>/dev/null \
      || python3 -m pip install --quiet --break-system-packages uv
  fi
  python3 -m uv "$@"
}
