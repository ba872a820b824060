# Sourced by scripts/postman.sh, scripts/schemathesis.sh, scripts/swagger-ui.sh and
# scripts/guardian-pages.sh: a real renrakumo server on a fresh database, with its first
# admin, stopped and removed (server, database, files) whatever happens. It runs
# RENRAKUMO_WORKERS delivery tasks as the environment says (default 4).
#
#   fresh_server_start NAME ORG DATABASE
#     NAME      names the temporary folder, the PostgreSQL database and the messages
#     ORG       the name of the admin's organisation
#     DATABASE  unset or "": a fresh SQLite file in the temporary folder.
#               `postgres`: a fresh database on the PostgreSQL server of
#                 RENRAKUMO_TEST_POSTGRES_URL (default
#                 postgres://postgres@127.0.0.1:5432/postgres), dropped afterwards.
#               any other URL (postgres://…, sqlite://…): used as it is; the admin gets a
#                 new organisation and a unique address, so a database that already
#                 holds data works too.
#   Uses RENRAKUMO_BIN when set, else builds target/debug/renrakumo.
#   Sets: root, bin, tmp (removed at exit), base_url, admin_email, admin_password,
#         server_log. Installs an EXIT trap: a caller's own clean-up goes in
#         fresh_server_on_exit (a function it may define), which runs first.

fresh_server_log() { echo "== $*" >&2; }

fresh_server_start() {
  local name="$1" org="$2" database="${3:-}"
  root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"

  # ---- the binary --------------------------------------------------------------------
  if [ -n "${RENRAKUMO_BIN:-}" ]; then
    bin="$RENRAKUMO_BIN"
  else
    fresh_server_log "cargo build"
    (cd "$root" && cargo build --locked --quiet --bin renrakumo)
    bin="${CARGO_TARGET_DIR:-$root/target}/debug/renrakumo"
  fi
  if [ ! -x "$bin" ]; then
    echo "$name: no executable renrakumo at $bin" >&2
    exit 1
  fi

  # ---- clean-up, whatever happens ----------------------------------------------------
  tmp="$(mktemp -d "${TMPDIR:-/tmp}/renrakumo-$name.XXXXXX")"
  server_log="$tmp/server.log"
  _fresh_server_name="$name"
  _fresh_server_pid=""
  _fresh_server_drop_db=""
  _fresh_server_pg_admin_url=""
  trap _fresh_server_cleanup EXIT
  trap 'exit 130' INT
  trap 'exit 143' TERM

  # ---- the database ------------------------------------------------------------------
  local database_url
  case "$database" in
    "")
      database_url="sqlite://$tmp/r.db?mode=rwc"
      ;;
    postgres | postgresql)
      command -v psql >/dev/null 2>&1 || { echo "$name: a PostgreSQL run needs psql" >&2; exit 1; }
      _fresh_server_pg_admin_url="${RENRAKUMO_TEST_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432/postgres}"
      local db_name="renrakumo_${name}_$(date +%s)_$$"
      psql "$_fresh_server_pg_admin_url" -q -v ON_ERROR_STOP=1 -c "CREATE DATABASE \"$db_name\"" >/dev/null
      _fresh_server_drop_db="$db_name"
      # The same server and credentials, the new database (any ?query is kept).
      local base="${_fresh_server_pg_admin_url%%\?*}" query=""
      [ "$base" != "$_fresh_server_pg_admin_url" ] && query="?${_fresh_server_pg_admin_url#*\?}"
      database_url="${base%/*}/$db_name$query"
      ;;
    *)
      database_url="$database"
      ;;
  esac
  export RENRAKUMO_DATABASE_URL="$database_url"
  # Keep everything the server writes inside the temporary folder.
  export RENRAKUMO_OUTBOX_DIR="$tmp/outbox"
  # Shown without a password or a query string, which may hold credentials.
  fresh_server_log "database: $(printf '%s' "${database_url%%\?*}" | sed -E 's#//([^:/@]*):[^@/]*@#//\1:***@#')"

  # ---- the first admin ---------------------------------------------------------------
  admin_email="admin-$(date +%s)-$$@$name.example.jp"
  admin_password="$name admin passphrase $RANDOM$RANDOM"
  fresh_server_log "create-admin $admin_email"
  "$bin" create-admin --org "$org" --email "$admin_email" --password "$admin_password" </dev/null >/dev/null

  # ---- the server --------------------------------------------------------------------
  local port
  port="$(_fresh_server_free_port)"
  base_url="http://127.0.0.1:$port"
  export RENRAKUMO_BIND="127.0.0.1:$port"
  export RENRAKUMO_PUBLIC_URL="$base_url"
  fresh_server_log "serve on $base_url (log: server.log, shown on failure)"
  "$bin" serve </dev/null >"$server_log" 2>&1 &
  _fresh_server_pid=$!

  local deadline=$((SECONDS + 30))
  while [ "$SECONDS" -lt "$deadline" ]; do
    if ! kill -0 "$_fresh_server_pid" 2>/dev/null; then
      echo "$name: the server exited before answering /healthz; its log:" >&2
      cat "$server_log" >&2 || true
      exit 1
    fi
    if _fresh_server_probe "$base_url/healthz"; then return 0; fi
    sleep 0.1
  done
  echo "$name: the server did not answer /healthz within 30 s; its log:" >&2
  cat "$server_log" >&2 || true
  exit 1
}

_fresh_server_cleanup() {
  local status=$?
  if declare -F fresh_server_on_exit >/dev/null; then fresh_server_on_exit "$status" || true; fi
  if [ -n "$_fresh_server_pid" ] && kill -0 "$_fresh_server_pid" 2>/dev/null; then
    kill "$_fresh_server_pid" 2>/dev/null || true
    for _ in $(seq 1 50); do kill -0 "$_fresh_server_pid" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$_fresh_server_pid" 2>/dev/null || true
    wait "$_fresh_server_pid" 2>/dev/null || true
  fi
  if [ -n "$_fresh_server_drop_db" ]; then
    psql "$_fresh_server_pg_admin_url" -q -v ON_ERROR_STOP=1 \
      -c "DROP DATABASE IF EXISTS \"$_fresh_server_drop_db\" WITH (FORCE)" >/dev/null 2>&1 \
      || echo "$_fresh_server_name: could not drop database $_fresh_server_drop_db" >&2
  fi
  rm -rf "$tmp"
  exit "$status"
}

_fresh_server_free_port() {
  if command -v python3 >/dev/null 2>&1; then
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
  else
    node -e 'const s = require("net").createServer().listen(0, "127.0.0.1", () => { console.log(s.address().port); s.close(); })'
  fi
}

_fresh_server_probe() { # 0 when GET $1 answers 2xx
  if command -v curl >/dev/null 2>&1; then
    curl -fsS -o /dev/null --max-time 1 "$1" 2>/dev/null
  else
    node -e 'require("http").get(process.argv[1], { timeout: 1000 }, r => process.exit(r.statusCode < 300 ? 0 : 1)).on("error", () => process.exit(1))' "$1"
  fi
}
