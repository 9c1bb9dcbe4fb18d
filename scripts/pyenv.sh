#!/usr/bin/env bash
# The Python environment of duban's tests: a venv with the ADBC Flight SQL driver (the real client
# the Flight SQL e2e test drives). Created once, outside the clone; prints the venv's python.
# With a requirements file, that file's packages instead (the benches' Python peer pipeline).
#
#   scripts/pyenv.sh            → /root/.cache/duban-venv/bin/python (for example)
#   DUBAN_VENV=~/.cache/duban-peer-venv scripts/pyenv.sh benches/peer/requirements.txt
#
# Environment:
#   DUBAN_VENV         venv folder (default ~/.cache/duban-venv)
#   DUBAN_PYTHON_BASE  interpreter that creates it (default python3)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${DUBAN_VENV:-$HOME/.cache/duban-venv}"
BASE="${DUBAN_PYTHON_BASE:-python3}"
REQS="${1:-$ROOT/tests/requirements.txt}"
STAMP="$VENV/.duban-requirements"

log() { printf '[pyenv] %s\n' "$*" >&2; }

command -v "$BASE" >/dev/null 2>&1 || { log "ERROR: $BASE not found"; exit 1; }
if [[ ! -x "$VENV/bin/python" ]]; then
  log "creating $VENV with $($BASE --version 2>&1)"
  "$BASE" -m venv "$VENV" || { log "ERROR: cannot create a venv (Debian: apt-get install python3-venv)"; exit 1; }
fi
if ! cmp -s "$REQS" "$STAMP" 2>/dev/null; then
  log "installing $(grep -cv '^#' "$REQS") packages from $REQS"
  "$VENV/bin/python" -m pip install -q --disable-pip-version-check -r "$REQS" >&2
  cp "$REQS" "$STAMP"
fi
if [[ $# -eq 0 ]]; then
  "$VENV/bin/python" -c 'import adbc_driver_flightsql, pyarrow' ||
    { log "ERROR: the venv lacks adbc-driver-flightsql/pyarrow"; exit 1; }
fi
echo "$VENV/bin/python"
