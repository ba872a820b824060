#!/usr/bin/env bash
# Benchmark of acknowledgement ingestion (POST /api/v1/receipts/{token}/ack, the 確認
# button behind every personal link) under wrk, on SQLite and on PostgreSQL, against the
# release binary. For each backend, on a fresh database, it imports BENCH_GUARDIANS
# guardians into one list, sends one push-only message to that list per measured run
# (recipients are written at send time), reads the (message, guardian) pairs back from the
# database and computes every personal-link token itself (bench/ack_helper.py, from the
# known RENRAKUMO_JWT_SECRET it starts the server with). wrk (bench/ack.lua) then walks
# the tokens so that each request acknowledges another guardian, for BENCH_DURATION
# seconds at each of BENCH_CONNECTIONS, and afterwards the acknowledgements counted in the
# database must be at least the guardians answered 2xx (none lost; the script fails otherwise).
#
# Next to each run, in the same run on the same machine, it measures wrk against
# /healthz on the same server (the HTTP stack's ceiling without the database), and as
# diagnostics /readyz (one pool acquire and one `SELECT 1`) and GET /api/v1/receipts/{token}
# on receipts already read (the same reads as an acknowledgement, no row written). It
# samples the CPU time of the server, of PostgreSQL, of wrk and of the whole machine
# during each run, and on PostgreSQL counts the transactions per request
# (pg_stat_database.xact_commit: every autocommitted statement is one).
#
# Only 127.0.0.1 is contacted. Everything started is stopped and every temporary file and
# database removed, whatever happens.
#
#   bench/ack.sh                          # both backends
#   BENCH_BACKENDS=sqlite bench/ack.sh
#
# Environment:
#   RENRAKUMO_BIN                use this binary instead of `cargo build --release --locked`
#   RENRAKUMO_TEST_POSTGRES_URL  PostgreSQL role that may create databases (default
#                                postgres://postgres@127.0.0.1:5432/postgres); a fresh
#                                database is created there and dropped afterwards. When it
#                                cannot be reached the PostgreSQL half is skipped, saying so.
#   BENCH_BACKENDS               default "sqlite postgres"
#   BENCH_GUARDIANS              default 100000 (imported 50,000 per file); each run has this
#                                many distinct tokens, its walk wraps (idempotent repeats)
#                                only above BENCH_GUARDIANS / BENCH_DURATION acks/s
#   BENCH_CONNECTIONS            default "32 64 128"
#   BENCH_THREADS                wrk threads, default 2
#   BENCH_DURATION               seconds per acknowledgement run, default 20
#   BENCH_REF_DURATION           seconds per reference run (/healthz, /readyz), default 10
#   BENCH_DIAGNOSTICS            default 1: also /readyz and GET on read receipts (at
#                                BENCH_DIAG_CONNECTIONS, default 64); 0 skips them
#   BENCH_TARGET_RPS             default 5000 acknowledgements/s
#   BENCH_TARGET_P99_MS          default 50
#   BENCH_KEEP_LOGS              a folder to copy the server logs and wrk outputs into
set -euo pipefail
cd "$(dirname "$0")/.."
root="$PWD"

guardians="${BENCH_GUARDIANS:-100000}"
backends="${BENCH_BACKENDS:-sqlite postgres}"
connections="${BENCH_CONNECTIONS:-32 64 128}"
threads="${BENCH_THREADS:-2}"
duration="${BENCH_DURATION:-20}"
ref_duration="${BENCH_REF_DURATION:-10}"
diagnostics="${BENCH_DIAGNOSTICS:-1}"
diag_connections="${BENCH_DIAG_CONNECTIONS:-64}"
target_rps="${BENCH_TARGET_RPS:-5000}"
target_p99="${BENCH_TARGET_P99_MS:-50}"
pg_admin_url="${RENRAKUMO_TEST_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432/postgres}"
# 40 characters, known to the script: the personal-link tokens are derived from it.
secret="renrakumo-bench-ack-secret-0123456789abc"
helper="$root/bench/ack_helper.py"

bench_name=ack.sh
. "$root/bench/lib.sh"

case "$guardians" in '' | *[!0-9]*) die "BENCH_GUARDIANS must be a number" ;; esac
[ "$guardians" -ge 1 ] || die "BENCH_GUARDIANS must be at least 1"

require_tools curl python3 awk
ensure_tool wrk wrk || die "wrk is needed (apt-get install wrk)"

# ---- the binary ----------------------------------------------------------------------
renrakumo_binary

# ---- clean-up, whatever happens ------------------------------------------------------
tmp="$(mktemp -d "${TMPDIR:-/tmp}/renrakumo-ack.XXXXXX")"
server_pid=""
wrk_pid=""
drop_db=""
stop_server() { stop_pid "$server_pid"; server_pid=""; }
drop_database() { [ -z "$drop_db" ] || drop_pg_database "$drop_db"; drop_db=""; }
cleanup() {
  local status=$?
  stop_pid "$wrk_pid"
  stop_server
  drop_database
  if [ -n "${BENCH_KEEP_LOGS:-}" ]; then
    mkdir -p "$BENCH_KEEP_LOGS" && cp "$tmp"/*.log "$tmp"/*.wrk "$BENCH_KEEP_LOGS"/ 2>/dev/null || true
  fi
  rm -rf "$tmp"
  exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# ---- helpers -------------------------------------------------------------------------
free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}
json_field() { # json_field FILE KEY: prints the value (lists and objects as JSON)
  python3 -c 'import json, sys; v = json.load(open(sys.argv[1]))[sys.argv[2]]; print(v if isinstance(v, (str, int)) else json.dumps(v, ensure_ascii=False))' "$1" "$2"
}
kv() { # kv FILE KEY: a value from a key=value file
  awk -F= -v k="$2" '$1 == k { sub(/^[^=]*=/, ""); print; exit }' "$1"
}
ticks_of() { # utime + stime of a process, in clock ticks (0 when it is gone)
  local stat
  stat="$(cat "/proc/$1/stat" 2>/dev/null)" || { echo 0; return; }
  stat="${stat##*) }"
  # shellcheck disable=SC2086
  set -- $stat
  echo $((${12} + ${13}))
}

results="$tmp/results.tsv"
: >"$results"
skipped="$tmp/skipped.txt"
: >"$skipped"

# A fresh database: the first admin, then the server (launch_server).
start_server() {
  export RENRAKUMO_DATABASE_URL="$database_url"
  export RENRAKUMO_OUTBOX_DIR="$tmp/outbox"
  export RENRAKUMO_WORKERS=0
  export RENRAKUMO_JWT_SECRET="$secret"
  admin_email="bench-admin@bench.example.jp"
  admin_password="bench admin passphrase $RANDOM$RANDOM"
  "$bin" create-admin --org 'ベンチ市教育委員会' --email "$admin_email" --password "$admin_password" </dev/null >/dev/null
  launch_server "$1"
}

# Starts `renrakumo serve` on $database_url with the known secret and a free port; sets
# $base_url and $server_pid. Every measured run gets a fresh process (see measure).
launch_server() {
  local name="$1" port
  port="$(free_port)"
  base_url="http://127.0.0.1:$port"
  export RENRAKUMO_BIND="127.0.0.1:$port"
  export RENRAKUMO_PUBLIC_URL="$base_url"
  "$bin" serve </dev/null >>"$tmp/server-$name.log" 2>&1 &
  server_pid=$!
  local deadline=$((SECONDS + 30))
  while :; do
    kill -0 "$server_pid" 2>/dev/null || { cat "$tmp/server-$name.log" >&2; die "the $name server exited at start-up"; }
    # Our server, not another process that took the port meanwhile.
    if [ -n "$(ss -Hltnp "sport = :$port" 2>/dev/null | grep "pid=$server_pid,")" ] || ! command -v ss >/dev/null 2>&1; then
      curl -fsS --noproxy '*' -o /dev/null --max-time 1 "$base_url/healthz" 2>/dev/null && break
    fi
    [ "$SECONDS" -lt "$deadline" ] || { cat "$tmp/server-$name.log" >&2; die "the $name server did not answer /healthz within 30 s"; }
    sleep 0.1
  done
}

login() {
  curl -fsS --noproxy '*' --max-time 30 -o "$tmp/login.json" -H 'content-type: application/json' \
    --data-binary "{\"email\":\"$admin_email\",\"password\":\"$admin_password\"}" "$base_url/api/v1/auth/login" \
    || die "login failed"
  access="$(json_field "$tmp/login.json" access_token)"
}

call() { # call EXPECTED METHOD PATH [BODY|@FILE] [CONTENT_TYPE]: the answer is in $tmp/api.json
  local want="$1" method="$2" path="$3" data="${4:-}" ctype="${5:-application/json}" code
  local args=(-sS --noproxy '*' --max-time 900 -o "$tmp/api.json" -w '%{http_code}' -X "$method"
    -H "authorization: Bearer $access")
  [ -n "$data" ] && args+=(-H "content-type: $ctype" --data-binary "$data")
  code="$(curl "${args[@]}" "$base_url$path")" || die "$method $path: curl failed"
  if [ "$code" != "$want" ]; then
    echo "ack.sh: $method $path answered $code (expected $want):" >&2
    head -c 2000 "$tmp/api.json" >&2
    echo >&2
    exit 1
  fi
}

db_query() { # db_query SQL: rows with | between columns
  case "$current" in
    sqlite) sqlite3 -batch -separator '|' "$sqlite_file" ".timeout 10000" "$1" ;;
    postgres) psql "$database_url" -Atq -F '|' -v ON_ERROR_STOP=1 -c "$1" ;;
  esac
}

# The roster, one message per measured run, and the tokens of each (tokens-RUN.txt).
prepare() {
  local runs="$1" first=1 chunk created
  login
  call 201 POST /api/v1/lists '{"name":"ack-bench","description":"bench/ack.sh"}'
  list_id="$(json_field "$tmp/api.json" id)"
  while [ "$first" -le "$guardians" ]; do
    chunk=$((guardians - first + 1))
    [ "$chunk" -gt 50000 ] && chunk=50000
    python3 "$helper" roster "$chunk" "$first" >"$tmp/roster.csv"
    log "$current: importing guardians $first..$((first + chunk - 1))"
    login
    call 200 POST "/api/v1/members/import?list_id=$list_id" @"$tmp/roster.csv" text/csv
    created="$(json_field "$tmp/api.json" created)"
    [ "$created" = "$chunk" ] || { head -c 2000 "$tmp/api.json" >&2; die "the import created $created guardians, not $chunk"; }
    first=$((first + chunk))
  done
  local run id count
  for run in $runs; do
    login
    call 201 POST /api/v1/messages "{\"subject\":\"確認のお願い ($run)\",\"body\":\"bench/ack.sh\",\"answer_required\":true,\"targets\":{\"list_ids\":[\"$list_id\"]},\"channels\":[\"push\"]}"
    id="$(json_field "$tmp/api.json" id)"
    call 202 POST "/api/v1/messages/$id/send" '{}'
    count="$(json_field "$tmp/api.json" recipient_count)"
    [ "$count" = "$guardians" ] || die "message $run reached $count guardians, not $guardians"
    echo "$id" >"$tmp/message-$run"
    db_query "SELECT message_id, member_id FROM recipients WHERE message_id = '$id'" >"$tmp/pairs.txt"
    ACK_SECRET="$secret" python3 "$helper" tokens <"$tmp/pairs.txt" >"$tmp/tokens-$run.txt"
    count="$(grep -c . "$tmp/tokens-$run.txt")"
    [ "$count" = "$guardians" ] || die "$count tokens for message $run, not $guardians"
    log "$current: message $run sent to $guardians guardians, tokens computed"
  done
  # Our tokens are the server's: the first one opens its receipt, unacknowledged.
  local first_run="${runs%% *}" token code
  token="$(head -n 1 "$tmp/tokens-$first_run.txt")"
  code="$(curl -sS --noproxy '*' --max-time 10 -o "$tmp/api.json" -w '%{http_code}' "$base_url/api/v1/receipts/$token")"
  [ "$code" = 200 ] || die "GET /api/v1/receipts/{token} with a computed token answered $code: $(head -c 500 "$tmp/api.json")"
  [ "$(json_field "$tmp/api.json" acknowledged_at)" = null ] || die "a fresh receipt is acknowledged already"
  case "$(json_field "$tmp/api.json" name)" in bench-g*) ;; *) die "unexpected guardian name in the receipt" ;; esac
}

xacts() { # committed transactions of the benchmark database so far (PostgreSQL only)
  [ "$current" = postgres ] || { echo 0; return; }
  db_query "SELECT xact_commit FROM pg_stat_database WHERE datname = current_database()"
}

# measure BACKEND KIND CONNECTIONS SECONDS [RUN]: one wrk run; a line in $results.
# KIND: healthz, readyz (references), ack, get (need RUN: its message and tokens).
measure() {
  local backend="$1" kind="$2" c="$3" secs="$4" run="${5:-}"
  local label="$backend-$kind-$c" mode=plain path="" tokens=""
  case "$kind" in
    healthz) path=/healthz ;;
    readyz) path=/readyz ;;
    ack) mode=ack; tokens="$tmp/tokens-$run.txt" ;;
    get) mode=get; tokens="$tmp/tokens-$run.txt" ;;
  esac
  log "$backend: $kind, $c connections, $threads threads, ${secs} s"
  # A server process of its own for each run: PostgreSQL publishes a backend's counters
  # (xact_commit) reliably when it exits, i.e. when the server's pool closes.
  local x0 cpu0 cpu1 wrk_ticks=0 t
  x0="$(xacts)"
  launch_server "$backend"
  cpu0="$(python3 "$helper" cpu "$server_pid")"
  ACK_MODE="$mode" ACK_TOKENS="$tokens" ACK_THREADS="$threads" ACK_CONNECTIONS="$c" ACK_OUT="$tmp/$label.out" \
    wrk -t"$threads" -c"$c" -d"${secs}s" --timeout 30s --latency -s "$root/bench/ack.lua" "$base_url$path" \
    >"$tmp/$label.wrk" 2>&1 &
  wrk_pid=$!
  while kill -0 "$wrk_pid" 2>/dev/null; do
    t="$(ticks_of "$wrk_pid")"
    [ "$t" -gt 0 ] && wrk_ticks="$t"
    sleep 0.5
  done
  local status=0
  wait "$wrk_pid" || status=$?
  wrk_pid=""
  cpu1="$(python3 "$helper" cpu "$server_pid")"
  if ! kill -0 "$server_pid" 2>/dev/null; then
    tail -n 12 "$tmp/server-$backend.log" >&2
    die "the server stopped during $label (not by this script: see the log above)"
  fi
  [ "$status" -eq 0 ] && [ -s "$tmp/$label.out" ] || { cat "$tmp/$label.wrk" >&2; die "wrk failed ($label)"; }
  # Requests still in flight when wrk stopped finish (or are dropped) before it exits.
  stop_server
  if [ "$current" = postgres ]; then sleep 1; fi # its backends exit and publish their counters

  local ok seconds rps p50 p99 distinct wraps statuses errors
  ok="$(kv "$tmp/$label.out" ok)"
  seconds="$(kv "$tmp/$label.out" seconds)"
  rps="$(kv "$tmp/$label.out" ok_per_second)"
  p50="$(kv "$tmp/$label.out" p50_ms)"
  p99="$(kv "$tmp/$label.out" p99_ms)"
  distinct="$(kv "$tmp/$label.out" distinct)"
  wraps="$(kv "$tmp/$label.out" wraps)"
  statuses="$(kv "$tmp/$label.out" statuses)"
  errors="$(kv "$tmp/$label.out" errors)"
  # CPU during the run, in % of one core: server, PostgreSQL (every database), wrk, the rest.
  local cpu
  cpu="$(awk -v a="$cpu0" -v b="$cpu1" -v w="$wrk_ticks" -v s="$seconds" 'BEGIN {
    split(a, x, " "); split(b, y, " "); hz = y[5]; wall = s * hz
    srv = y[1] - x[1]; pg = y[2] - x[2]; busy = y[3] - x[3]
    if (pg < 0) pg = 0 # PostgreSQL processes of other users ended meanwhile
    other = busy - srv - pg - w; if (other < 0) other = 0
    printf "%.0f %.0f %.0f %.0f %.0f", 100 * srv / wall, 100 * pg / wall, 100 * w / wall, 100 * other / wall,
      (y[1] - x[1]) / hz * 1e6 }')"
  local srv_cpu pg_cpu wrk_cpu other_cpu srv_us
  read -r srv_cpu pg_cpu wrk_cpu other_cpu srv_us <<<"$cpu"
  [ "$current" = postgres ] || pg_cpu="-"
  [ "$mode" = plain ] && distinct="-"
  local total
  total="$(kv "$tmp/$label.out" requests)"
  srv_us="$(awk -v u="$srv_us" -v n="$total" 'BEGIN { if (n > 0) printf "%.0f", u / n; else print "-" }')"

  local in_db="-" lost="-" unanswered="-" per_request="-"
  if [ "$kind" = ack ]; then
    local id
    id="$(cat "$tmp/message-$run")"
    # The issue's definition: acknowledgements counted in the database afterwards against
    # the distinct guardians answered 2xx. More in the database is requests still in flight
    # when wrk stopped (at most one per connection); fewer is acknowledgements lost.
    in_db="$(db_query "SELECT COUNT(*) FROM recipients WHERE message_id = '$id' AND acknowledged_at IS NOT NULL")"
    lost=$(( distinct > in_db ? distinct - in_db : 0 ))
    unanswered=$(( in_db > distinct ? in_db - distinct : 0 ))
    [ "$unanswered" -le "$c" ] || die "$label: $unanswered more acknowledged than answered, more than the $c connections could have had in flight"
  fi
  if [ "$current" = postgres ]; then
    local x1
    x1="$(xacts)"
    per_request="$(awk -v a="$x0" -v b="$x1" -v n="$total" 'BEGIN { if (n > 0) printf "%.1f", (b - a) / n; else print "-" }')"
  fi
  printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' \
    "$backend" "$kind" "$c" "$rps" "$p50" "$p99" "$ok" "$distinct" "$in_db" "$lost" "$unanswered" \
    "$srv_cpu" "$pg_cpu" "$wrk_cpu" "$other_cpu" "$srv_us" "$per_request" "$wraps" "$statuses;$errors" >>"$results"
  log "$backend: $kind c=$c: $rps 2xx/s, p50 $p50 ms, p99 $p99 ms, 2xx $ok, statuses $statuses${in_db:+, acknowledged in DB $in_db, lost $lost}"
  if [ "$lost" != "-" ] && [ "$lost" != 0 ]; then
    die "$label: $lost guardians answered 2xx are not acknowledged in the database"
  fi
}

run_all() {
  local backend="$1" c runs=""
  for c in $connections; do runs="$runs ack$c"; done
  [ "$diagnostics" = 1 ] && runs="$runs read"
  runs="${runs# }"
  prepare "$runs"
  stop_server
  if [ "$current" = postgres ]; then sleep 1; fi
  if [ "$diagnostics" = 1 ]; then
    # Receipts of the diagnostic message are read already: GET then writes no row.
    db_query "UPDATE recipients SET read_at = created_at WHERE message_id = '$(cat "$tmp/message-read")'" >/dev/null
  fi
  for c in $connections; do
    measure "$backend" healthz "$c" "$ref_duration"
    measure "$backend" ack "$c" "$duration" "ack$c"
  done
  if [ "$diagnostics" = 1 ]; then
    measure "$backend" readyz "$diag_connections" "$ref_duration"
    measure "$backend" get "$diag_connections" "$duration" read
  fi
}

# ---- SQLite --------------------------------------------------------------------------
bench_sqlite() {
  ensure_tool sqlite3 sqlite3 || die "sqlite3 is needed to read the recipients (apt-get install sqlite3)"
  mkdir -p "$tmp/sqlite"
  sqlite_file="$tmp/sqlite/renrakumo.db"
  database_url="sqlite://$sqlite_file?mode=rwc"
  current=sqlite
  log "sqlite: $sqlite_file"
  start_server sqlite
  run_all sqlite
}

# ---- PostgreSQL ----------------------------------------------------------------------
bench_postgres() {
  local shown
  shown="$(printf '%s' "${pg_admin_url%%\?*}" | sed -E 's#//([^:/@]*):[^@/]*@#//\1:***@#')"
  if ! command -v psql >/dev/null 2>&1; then
    echo "ack.sh: PostgreSQL SKIPPED: psql is not installed" >&2
    echo "postgres: SKIPPED (psql is not installed)" >>"$skipped"
    return
  fi
  if ! PGCONNECT_TIMEOUT=5 psql "$pg_admin_url" -Atq -c 'SELECT 1' >/dev/null 2>&1; then
    echo "ack.sh: PostgreSQL SKIPPED: $shown cannot be reached (set RENRAKUMO_TEST_POSTGRES_URL)" >&2
    echo "postgres: SKIPPED ($shown unreachable)" >>"$skipped"
    return
  fi
  local name="renrakumo_ack_$(date +%s)_$$"
  PGCONNECT_TIMEOUT=5 psql "$pg_admin_url" -q -v ON_ERROR_STOP=1 -c "CREATE DATABASE \"$name\"" >/dev/null
  drop_db="$name"
  local base="${pg_admin_url%%\?*}" query=""
  [ "$base" != "$pg_admin_url" ] && query="?${pg_admin_url#*\?}"
  database_url="${base%/*}/$name$query"
  current=postgres
  log "postgres: database $name on $shown ($(psql "$pg_admin_url" -Atqc 'SHOW server_version'))"
  start_server postgres
  run_all postgres
  drop_database
}

for backend in $backends; do
  case "$backend" in
    sqlite) bench_sqlite ;;
    postgres | postgresql) bench_postgres ;;
    *) die "unknown backend '$backend' in BENCH_BACKENDS (sqlite, postgres)" ;;
  esac
done

# ---- the table -----------------------------------------------------------------------
echo
echo "acknowledgements: POST /api/v1/receipts/{token}/ack, $guardians distinct guardians per run, wrk $threads threads," \
  "${duration} s per run (references ${ref_duration} s); $(nproc) CPUs, $(date +%F)"
echo "target: >= $target_rps acknowledgements/s with p99 < $target_p99 ms, none lost." \
  "CPU columns: % of one core during the run (PostgreSQL: all its processes; other: the rest of the machine)."
printf '%-8s %-30s %5s %8s %8s %8s %8s %8s %8s %5s  %4s %4s %4s %5s %7s %6s  %s\n' \
  backend run conns 2xx/s p50ms p99ms 2xx guardian "ack'd DB" lost srv% pg% wrk% other% "us/req" "tx/req" verdict
declare -A what=(
  [healthz]="reference: GET /healthz"
  [readyz]="diag: GET /readyz (SELECT 1)"
  [ack]="POST .../ack"
  [get]="diag: GET receipt (read)"
)
missed=0
while IFS=$'\t' read -r be kind c rps p50 p99 ok distinct in_db lost unanswered srv pg wrkc other us tx wraps notes; do
  verdict=""
  if [ "$kind" = ack ]; then
    verdict="$(awk -v r="$rps" -v p="$p99" -v tr="$target_rps" -v tp="$target_p99" 'BEGIN { print (r >= tr && p < tp) ? "ok" : "MISSED" }')"
    [ "$verdict" = ok ] || missed=1
    [ "$unanswered" != 0 ] && verdict="$verdict ($unanswered more acknowledged in flight at wrk's stop)"
    [ "$wraps" != 0 ] && verdict="$verdict (walk wrapped $wraps times)"
  fi
  non2xx="$(printf '%s' "${notes%%;*}" | tr ',' '\n' | awk -F: '$1 !~ /^2/ && $2 > 0 { printf "%s%s x%s", sep, $1, $2; sep = ", " }')"
  errs="$(printf '%s' "${notes#*;}" | tr ',' '\n' | awk -F: '$2 > 0 { printf "%s%s %s", sep, $1, $2; sep = ", " }')"
  [ -n "$non2xx" ] && verdict="$verdict [status $non2xx]"
  [ -n "$errs" ] && verdict="$verdict [wrk errors: $errs]"
  printf '%-8s %-30s %5s %8s %8s %8s %8s %8s %8s %5s  %4s %4s %4s %5s %7s %6s  %s\n' \
    "$be" "${what[$kind]}" "$c" "$rps" "$p50" "$p99" "$ok" "$distinct" "$in_db" "$lost" "$srv" "$pg" "$wrkc" "$other" "$us" "$tx" "$verdict"
done <"$results"
cat "$skipped"
if [ "$missed" = 1 ]; then
  echo "target MISSED in at least one run (see bench/RESULTS.md for where the time went before)"
fi
