#!/usr/bin/env bash
# Runs the Postman collection (postman/) with newman against a real renrakumo server on a
# fresh database: builds the binary, creates the first admin with `create-admin`, serves
# on a free port, runs newman, and always stops the server and removes what it created.
# Exits with newman's exit code.
#
# Environment:
#   RENRAKUMO_BIN          use this binary instead of `cargo build` + target/debug/renrakumo
#   POSTMAN_DATABASE_URL   unset: a fresh SQLite file in a temporary folder (the default).
#                          `postgres`: a fresh database on the PostgreSQL server of
#                            RENRAKUMO_TEST_POSTGRES_URL (default
#                            postgres://postgres@127.0.0.1:5432/postgres), dropped afterwards.
#                          any other URL (postgres://…, sqlite://…): used as it is; the admin
#                            gets a new organisation and a unique address, so a database
#                            that already holds data works too.
#   NEWMAN                 newman command to use; else `newman` on PATH; else newman 6 is
#                          installed with npm into target/newman (kept as a cache).
#   Extra arguments go to `newman run` (e.g. --reporters cli,junit).
set -euo pipefail
cd "$(dirname "$0")/.."
root="$PWD"

collection="$root/postman/renrakumo.postman_collection.json"
environment="$root/postman/local.postman_environment.json"

log() { echo "== $*" >&2; }

# ---- the binary ----------------------------------------------------------------------
if [ -n "${RENRAKUMO_BIN:-}" ]; then
  bin="$RENRAKUMO_BIN"
else
  log "cargo build"
  cargo build --locked --quiet --bin renrakumo
  bin="${CARGO_TARGET_DIR:-$root/target}/debug/renrakumo"
fi
if [ ! -x "$bin" ]; then
  echo "postman.sh: no executable renrakumo at $bin" >&2
  exit 1
fi

# ---- newman --------------------------------------------------------------------------
if [ -n "${NEWMAN:-}" ]; then
  newman=("$NEWMAN")
elif command -v newman >/dev/null 2>&1; then
  newman=(newman)
else
  prefix="${CARGO_TARGET_DIR:-$root/target}/newman"
  if [ ! -x "$prefix/node_modules/.bin/newman" ]; then
    command -v npm >/dev/null 2>&1 || { echo "postman.sh: newman is not on PATH and npm is missing" >&2; exit 1; }
    log "installing newman 6 into $prefix"
    mkdir -p "$prefix"
    npm install --prefix "$prefix" newman@6 --no-audit --no-fund --loglevel=error </dev/null
  fi
  newman=("$prefix/node_modules/.bin/newman")
fi

# ---- clean-up, whatever happens ------------------------------------------------------
tmp="$(mktemp -d "${TMPDIR:-/tmp}/renrakumo-postman.XXXXXX")"
server_pid=""
drop_db=""
pg_admin_url=""
cleanup() {
  local status=$?
  if [ -n "$server_pid" ] && kill -0 "$server_pid" 2>/dev/null; then
    kill "$server_pid" 2>/dev/null || true
    for _ in $(seq 1 50); do kill -0 "$server_pid" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$server_pid" 2>/dev/null || true
    wait "$server_pid" 2>/dev/null || true
  fi
  if [ -n "$drop_db" ]; then
    psql "$pg_admin_url" -q -v ON_ERROR_STOP=1 -c "DROP DATABASE IF EXISTS \"$drop_db\" WITH (FORCE)" >/dev/null 2>&1 \
      || echo "postman.sh: could not drop database $drop_db" >&2
  fi
  rm -rf "$tmp"
  exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# ---- the database --------------------------------------------------------------------
case "${POSTMAN_DATABASE_URL:-}" in
  "")
    database_url="sqlite://$tmp/r.db?mode=rwc"
    ;;
  postgres | postgresql)
    command -v psql >/dev/null 2>&1 || { echo "postman.sh: POSTMAN_DATABASE_URL=postgres needs psql" >&2; exit 1; }
    pg_admin_url="${RENRAKUMO_TEST_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432/postgres}"
    name="renrakumo_postman_$(date +%s)_$$"
    psql "$pg_admin_url" -q -v ON_ERROR_STOP=1 -c "CREATE DATABASE \"$name\"" >/dev/null
    drop_db="$name"
    # The same server and credentials, the new database (any ?query is kept).
    base="${pg_admin_url%%\?*}"
    query=""
    [ "$base" != "$pg_admin_url" ] && query="?${pg_admin_url#*\?}"
    database_url="${base%/*}/$name$query"
    ;;
  *)
    database_url="$POSTMAN_DATABASE_URL"
    ;;
esac
export RENRAKUMO_DATABASE_URL="$database_url"
# Keep everything the server writes inside the temporary folder.
export RENRAKUMO_OUTBOX_DIR="$tmp/outbox"
# Shown without a password or a query string, which may hold credentials.
log "database: $(printf '%s' "${database_url%%\?*}" | sed -E 's#//([^:/@]*):[^@/]*@#//\1:***@#')"

# ---- the first admin -----------------------------------------------------------------
admin_email="admin-$(date +%s)-$$@postman.example.jp"
admin_password="postman admin passphrase $RANDOM$RANDOM"
log "create-admin $admin_email"
"$bin" create-admin --org 'Postman School' --email "$admin_email" --password "$admin_password" </dev/null

# ---- the server ----------------------------------------------------------------------
free_port() {
  if command -v python3 >/dev/null 2>&1; then
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
  else
    node -e 'const s = require("net").createServer().listen(0, "127.0.0.1", () => { console.log(s.address().port); s.close(); })'
  fi
}
port="$(free_port)"
base_url="http://127.0.0.1:$port"
export RENRAKUMO_BIND="127.0.0.1:$port"
export RENRAKUMO_PUBLIC_URL="$base_url"
log "serve on $base_url (log: server.log, shown on failure)"
"$bin" serve </dev/null >"$tmp/server.log" 2>&1 &
server_pid=$!

probe() { # 0 when GET $1 answers 2xx
  if command -v curl >/dev/null 2>&1; then
    curl -fsS -o /dev/null --max-time 1 "$1" 2>/dev/null
  else
    node -e 'require("http").get(process.argv[1], { timeout: 1000 }, r => process.exit(r.statusCode < 300 ? 0 : 1)).on("error", () => process.exit(1))' "$1"
  fi
}
ready=""
deadline=$((SECONDS + 30))
while [ "$SECONDS" -lt "$deadline" ]; do
  if ! kill -0 "$server_pid" 2>/dev/null; then
    echo "postman.sh: the server exited before answering /healthz; its log:" >&2
    cat "$tmp/server.log" >&2 || true
    exit 1
  fi
  if probe "$base_url/healthz"; then ready=1; break; fi
  sleep 0.1
done
if [ -z "$ready" ]; then
  echo "postman.sh: the server did not answer /healthz within 30 s; its log:" >&2
  cat "$tmp/server.log" >&2 || true
  exit 1
fi

# ---- newman --------------------------------------------------------------------------
log "newman run $(basename "$collection")"
set +e
"${newman[@]}" run "$collection" \
  --environment "$environment" \
  --working-dir "$root/postman" \
  --env-var "baseUrl=$base_url" \
  --env-var "adminEmail=$admin_email" \
  --env-var "adminPassword=$admin_password" \
  "$@" </dev/null
newman_status=$?
set -e

if [ "$newman_status" -ne 0 ]; then
  echo "== newman failed (exit $newman_status); the server's log:" >&2
  tail -n 200 "$tmp/server.log" >&2 || true
fi
exit "$newman_status"
