#!/usr/bin/env bash
# duban's full check, as CI runs it (.ci/run execs this):
#   1. install missing build packages (apt; only what `dpkg -s` reports missing)
#   2. cargo fmt --check
#   3. cargo clippy --all-targets -- -D warnings
#   4. the tests' Python venv (scripts/pyenv.sh: the ADBC Flight SQL driver), exported as DUBAN_PYTHON
#   5. start services (scripts/services.sh; default kafka and clickhouse), cargo test --no-fail-fast,
#      stop them
# Exits non-zero if any step fails; every step runs even after an earlier one failed
# (DUBAN_FAIL_FAST=1 stops at the first failure).
#
#   scripts/test.sh [ARGS...]      ARGS go to `cargo test` (e.g. scripts/test.sh --test e2e)
#
# Environment:
#   CARGO_TARGET_DIR   build cache (default ~/.cache/duban-target, outside the clone so later
#                      runs on the same machine reuse the build)
#   DUBAN_SERVICES     comma-separated services to start (default "kafka,clickhouse"), or ""
#   DUBAN_KEEP_SERVICES=1  leave the services running afterwards
#   DUBAN_SKIP_APT=1   do not check/install apt packages
#   DUBAN_FAIL_FAST=1  stop at the first failing step
#   KAFKA_PORT, KAFKA_VERSION, ... are passed on to scripts/services.sh
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
SERVICES_SH="$ROOT/scripts/services.sh"

START_SECONDS=$SECONDS
FAILED=()
STARTED_SERVICES=()

section() { printf '\n==== [%s +%ss] %s ====\n' "$(date +%H:%M:%S)" "$((SECONDS - START_SECONDS))" "$*"; }
note() { printf '[test] %s\n' "$*"; }

# run_step NAME CMD...: run a step, record its failure.
run_step() {
  local name="$1" t0=$SECONDS rc=0
  shift
  "$@" || rc=$?
  if [[ $rc -ne 0 ]]; then
    note "$name FAILED (exit $rc, $((SECONDS - t0))s)"
    FAILED+=("$name")
    if [[ "${DUBAN_FAIL_FAST:-0}" == 1 ]]; then
      exit "$rc"
    fi
  else
    note "$name ok ($((SECONDS - t0))s)"
  fi
  return 0
}

# ------------------------------------------------------------------------------- services
SERVICES_SPEC="${DUBAN_SERVICES-kafka,clickhouse}"
IFS=', ' read -r -a SERVICES <<<"$SERVICES_SPEC"

has_service() {
  local s
  for s in "${SERVICES[@]}"; do [[ "$s" == "$1" ]] && return 0; done
  return 1
}

cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  if [[ ${#STARTED_SERVICES[@]} -gt 0 ]]; then
    if [[ "${DUBAN_KEEP_SERVICES:-0}" == 1 ]]; then
      note "leaving running: ${STARTED_SERVICES[*]} (DUBAN_KEEP_SERVICES=1)"
    elif ! "$SERVICES_SH" stop "${STARTED_SERVICES[@]}" >"${TMPDIR:-/tmp}/duban-services-stop.$$.log" 2>&1; then
      cat "${TMPDIR:-/tmp}/duban-services-stop.$$.log" >&2
      note "WARNING: stopping ${STARTED_SERVICES[*]} failed"
    fi
    rm -f "${TMPDIR:-/tmp}/duban-services-stop.$$.log"
  fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# ------------------------------------------------------------------------- apt packages
install_packages() {
  local pkgs=(build-essential gcc g++ make cmake perl python3 python3-venv pkg-config zlib1g-dev)
  if has_service kafka; then
    command -v java >/dev/null 2>&1 || pkgs+=(openjdk-17-jre-headless)
    command -v mvn >/dev/null 2>&1 || pkgs+=(maven)
  fi
  if has_service clickhouse; then
    command -v curl >/dev/null 2>&1 || pkgs+=(curl)
  fi
  # Browser checks (tests/browser): Debian's Chromium driven by playwright-core, a CJK font.
  pkgs+=(chromium fonts-wqy-microhei)
  command -v node >/dev/null 2>&1 || pkgs+=(nodejs)
  command -v npm >/dev/null 2>&1 || pkgs+=(npm)
  local missing=() p
  for p in "${pkgs[@]}"; do
    dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
  done
  if [[ ${#missing[@]} -eq 0 ]]; then
    note "all needed apt packages present"
    return 0
  fi
  note "installing missing apt packages: ${missing[*]}"
  local sudo=()
  [[ $(id -u) -eq 0 ]] || sudo=(sudo)
  "${sudo[@]}" apt-get -q -o DPkg::Lock::Timeout=300 update >/dev/null
  DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get -q -y -o DPkg::Lock::Timeout=300 \
    install --no-install-recommends "${missing[@]}"
}

section "environment"
if ! command -v cargo >/dev/null 2>&1 && [[ -x "$HOME/.cargo/bin/cargo" ]]; then
  export PATH="$HOME/.cargo/bin:$PATH"
fi
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/duban-target}"
mkdir -p "$CARGO_TARGET_DIR"
if [[ -z "${DUBAN_SHARED_DIR:-}" && -d "$ROOT/../shared" ]]; then
  DUBAN_SHARED_DIR="$(cd "$ROOT/../shared" && pwd)"
  export DUBAN_SHARED_DIR
fi
export DUBAN_KAFKA_BOOTSTRAP="${DUBAN_KAFKA_BOOTSTRAP:-127.0.0.1:${KAFKA_PORT:-9092}}"
if has_service clickhouse; then
  export DUBAN_CLICKHOUSE_URL="${DUBAN_CLICKHOUSE_URL:-http://127.0.0.1:${CLICKHOUSE_HTTP_PORT:-8123}}"
fi
note "repo:              $ROOT ($(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo 'no git'))"
note "CARGO_TARGET_DIR:  $CARGO_TARGET_DIR"
note "DUBAN_SHARED_DIR:  ${DUBAN_SHARED_DIR:-<unset>}"
note "services:          ${SERVICES[*]:-<none>}"
note "nproc: $(nproc 2>/dev/null || echo '?'), CI=${CI:-}"

section "system packages"
if [[ "${DUBAN_SKIP_APT:-0}" == 1 ]]; then
  note "skipped (DUBAN_SKIP_APT=1)"
else
  run_step "apt" install_packages
fi
section "browser test runner (npm ci in tests/browser)"
run_step "npm" npm ci --prefix "$ROOT/tests/browser" --no-audit --no-fund

command -v cargo >/dev/null 2>&1 || { note "cargo not found: install the Rust toolchain (rustup)"; exit 1; }
cargo --version
rustc --version

section "cargo fmt --check"
run_step "fmt" cargo fmt --all --check

section "cargo clippy --all-targets -- -D warnings"
run_step "clippy" cargo clippy --all-targets -- -D warnings

start_services() {
  local s
  for s in "${SERVICES[@]}"; do
    [[ -n "$s" ]] || continue
    # Recorded before starting, so a half-started service is still stopped by the trap.
    # (A service that was already running before this script is left running.)
    if "$SERVICES_SH" status "$s" >/dev/null 2>&1; then
      note "$s already running: using it, leaving it running"
      continue
    fi
    STARTED_SERVICES+=("$s")
    "$SERVICES_SH" start "$s" || return 1
  done
}

python_env() {
  local py
  py="$("$ROOT/scripts/pyenv.sh")" || return 1
  export DUBAN_PYTHON="$py"
  note "DUBAN_PYTHON:      $DUBAN_PYTHON"
}

section "python venv (ADBC Flight SQL driver)"
run_step "python" python_env

section "services: ${SERVICES[*]:-none}"
SERVICES_OK=1
if [[ ${#SERVICES[@]} -gt 0 ]]; then
  run_step "services" start_services
  [[ " ${FAILED[*]} " == *" services "* ]] && SERVICES_OK=0
fi

section "cargo test"
if [[ $SERVICES_OK == 1 ]]; then
  run_step "test" cargo test --no-fail-fast "$@"
else
  note "cargo test skipped: services failed to start"
  FAILED+=("test")
fi

# Keep this short: cargo test's own closing lines should stay at the end of the output.
if [[ ${#FAILED[@]} -gt 0 ]]; then
  printf '\n==== FAILED after %ss: %s ====\n' "$((SECONDS - START_SECONDS))" "${FAILED[*]}"
  exit 1
fi
printf '\n==== all steps ok in %ss ====\n' "$((SECONDS - START_SECONDS))"
