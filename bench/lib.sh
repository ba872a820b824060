# Shared by bench/*.sh, sourced once the script has set `bench_name` (for messages),
# `root` (the checkout) and `pg_admin_url`.

log() { echo "== $*" >&2; }
die() { echo "$bench_name: $*" >&2; exit 1; }

# ensure_tool COMMAND PACKAGE: true when COMMAND is there, after installing the Debian
# PACKAGE when it is missing and we may.
ensure_tool() {
  command -v "$1" >/dev/null 2>&1 && return 0
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    log "installing $2 with apt-get"
    apt-get install -y -qq "$2" >/dev/null 2>&1 \
      || { apt-get update -qq >/dev/null 2>&1 && apt-get install -y -qq "$2" >/dev/null 2>&1; } || true
  fi
  command -v "$1" >/dev/null 2>&1
}

# require_tools COMMAND…: each must be on PATH.
require_tools() {
  local tool
  for tool in "$@"; do
    command -v "$tool" >/dev/null 2>&1 || die "$tool is needed"
  done
}

# Sets `bin`: $RENRAKUMO_BIN, or the release binary built here.
renrakumo_binary() {
  if [ -n "${RENRAKUMO_BIN:-}" ]; then
    bin="$RENRAKUMO_BIN"
  else
    log "cargo build --release --locked"
    cargo build --release --locked --quiet --bin renrakumo
    bin="${CARGO_TARGET_DIR:-$root/target}/release/renrakumo"
  fi
  [ -x "$bin" ] || die "no executable renrakumo at $bin"
}

# stop_pid PID: TERM, up to 5 s, then KILL; nothing when PID is empty.
stop_pid() {
  local pid="$1"
  [ -n "$pid" ] || return 0
  if kill -0 "$pid" 2>/dev/null; then
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$pid" 2>/dev/null || true
  fi
  wait "$pid" 2>/dev/null || true
}

# drop_pg_database NAME: drops it on $pg_admin_url, saying so when it cannot.
drop_pg_database() {
  PGCONNECT_TIMEOUT=5 psql "$pg_admin_url" -q -v ON_ERROR_STOP=1 -c "DROP DATABASE IF EXISTS \"$1\" WITH (FORCE)" >/dev/null 2>&1 \
    || echo "$bench_name: could not drop database $1" >&2
}
