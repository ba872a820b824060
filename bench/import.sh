#!/usr/bin/env bash
# Benchmark of the roster import (POST /api/v1/members/import) with a 50,000-row
# Shift_JIS CSV (what Excel writes), on SQLite and on PostgreSQL, against the release
# binary. For each backend, on a fresh database, it times three imports of the whole file:
#   create     50,000 new guardians
#   unchanged  the same file again (nothing to write)
#   update     the same guardians one school year later (every grade and class list moved)
# and checks the reported counts (a wrong count fails the script). Next to each backend it
# measures, in the same run, the raw engine loading the same CSV into a plain table
# (sqlite3 `.import`, psql `\copy`): the bulk-load ceiling our figure compares with. Then it
# posts the hostile files of `bench/gen_roster.py --hostile` (a 20,000-column header over
# 50,000 one-cell rows, one 10 MiB cell, 5 million tiny rows, quoted cells of escaped
# quotes, 50,000 rows of errors) as dry runs, each expected to be refused or reported, not
# to hold memory. Beside every import it reports the server's peak RSS during it (VmHWM
# from /proc/PID/status, reset before each import through /proc/PID/clear_refs).
# A full run takes about 10 minutes on a 2-CPU machine (most of it the SQLite update).
# Only 127.0.0.1 is contacted. Everything started is stopped and every temporary file and
# database removed, whatever happens.
#
#   bench/import.sh                       # both backends
#   BENCH_BACKENDS=sqlite bench/import.sh
#
# Environment:
#   RENRAKUMO_BIN                use this binary instead of `cargo build --release --locked`
#   RENRAKUMO_TEST_POSTGRES_URL  PostgreSQL role that may create databases (default
#                                postgres://postgres@127.0.0.1:5432/postgres); a fresh
#                                database is created there and dropped afterwards. When it
#                                cannot be reached the PostgreSQL half is skipped, saying so.
#   BENCH_BACKENDS               default "sqlite postgres"
#   BENCH_PARTS                  default "roster hostile"
#   BENCH_ROWS                   default 50000 (the import's maximum)
#   BENCH_RSS_LIMIT_MIB          default 3000: a server past it during a hostile file is
#                                stopped (and restarted for the next), reported as "> limit"
#   BENCH_TARGET_SECONDS         default 10: each phase is reported as within it or not
#   BENCH_STRICT                 1: exit 3 when an import misses the target (default: report only)
#   BENCH_KEEP_LOGS              a folder to copy the server logs into (they are removed otherwise)
# The machine's load average is printed with the figures: other processes on the same CPUs
# make every figure slower, the raw references included.
set -euo pipefail
cd "$(dirname "$0")/.."
root="$PWD"

rows="${BENCH_ROWS:-50000}"
backends="${BENCH_BACKENDS:-sqlite postgres}"
parts="${BENCH_PARTS:-roster hostile}"
rss_limit_mib="${BENCH_RSS_LIMIT_MIB:-3000}"
target="${BENCH_TARGET_SECONDS:-10}"
pg_admin_url="${RENRAKUMO_TEST_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432/postgres}"

bench_name=import.sh
. "$root/bench/lib.sh"

require_tools curl python3 iconv awk

# ---- the binary ----------------------------------------------------------------------
renrakumo_binary

# ---- clean-up, whatever happens ------------------------------------------------------
tmp="$(mktemp -d "${TMPDIR:-/tmp}/renrakumo-bench.XXXXXX")"
server_pid=""
curl_pid=""
drop_db=""
stop_server() { stop_pid "$server_pid"; server_pid=""; }
drop_database() { [ -z "$drop_db" ] || drop_pg_database "$drop_db"; drop_db=""; }
cleanup() {
  local status=$?
  stop_pid "$curl_pid"
  stop_server
  drop_database
  if [ -n "${BENCH_KEEP_LOGS:-}" ]; then
    mkdir -p "$BENCH_KEEP_LOGS" && cp "$tmp"/*.log "$BENCH_KEEP_LOGS"/ 2>/dev/null || true
  fi
  rm -rf "$tmp"
  exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

load_start="$(cut -d' ' -f1 /proc/loadavg)"

# ---- the files -----------------------------------------------------------------------
log "generating $rows rows (UTF-8, then Shift_JIS/CP932 with iconv)"
python3 "$root/bench/gen_roster.py" "$rows" >"$tmp/roster.csv"
python3 "$root/bench/gen_roster.py" "$rows" --promote 1 >"$tmp/roster-next-year.csv"
iconv -f UTF-8 -t CP932 "$tmp/roster.csv" >"$tmp/roster.sjis.csv"
iconv -f UTF-8 -t CP932 "$tmp/roster-next-year.csv" >"$tmp/roster-next-year.sjis.csv"
log "roster.sjis.csv: $(wc -c <"$tmp/roster.sjis.csv") bytes ($(wc -c <"$tmp/roster.csv") as UTF-8), $(($(wc -l <"$tmp/roster.csv") - 1)) rows"
hostile_shapes="wide cell rows quotes errors"
for shape in $hostile_shapes; do
  python3 "$root/bench/gen_roster.py" 0 --hostile "$shape" >"$tmp/hostile-$shape.csv"
done

# ---- helpers -------------------------------------------------------------------------
now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.4f", b - a }'; }
per_second() { awk -v n="$1" -v s="$2" 'BEGIN { if (s > 0) printf "%.0f", n / s; else print "-" }'; }
kib_of() { # kib_of PID FIELD: VmRSS, VmHWM… in KiB, with bash builtins only (cheap to sample)
  local key value _
  while read -r key value _; do
    [ "$key" = "$2:" ] && { echo "$value"; return; }
  done <"/proc/$1/status" 2>/dev/null || true
}
mib() { awk -v k="$1" 'BEGIN { printf "%.0f", k / 1024 }'; }
free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}
json_field() { # json_field FILE KEY: prints the value (lists and objects as JSON)
  python3 -c 'import json, sys; v = json.load(open(sys.argv[1]))[sys.argv[2]]; print(v if isinstance(v, (str, int)) else json.dumps(v, ensure_ascii=False))' "$1" "$2"
}

results="$tmp/results.tsv" # backend phase rows seconds rows/s peak-rss-MiB
: >"$results"
hostile_results="$tmp/hostile.tsv" # backend shape bytes http-status seconds peak-rss-MiB answer
: >"$hostile_results"
refs="$tmp/refs.txt"       # backend|kind (raw, hwm, skip)|label|seconds|rss MiB
: >"$refs"

# Starts the server on $database_url, creates the admin (once per database), sets $base_url
# and $server_pid.
start_server() {
  local name="$1"
  export RENRAKUMO_DATABASE_URL="$database_url"
  export RENRAKUMO_OUTBOX_DIR="$tmp/outbox"
  export RENRAKUMO_WORKERS=0
  if [ "${admin_database:-}" != "$database_url" ]; then # once per database (restarts reuse it)
    admin_email="bench-admin@bench.example.jp"
    admin_password="bench admin passphrase $RANDOM$RANDOM"
    "$bin" create-admin --org 'ベンチ市教育委員会' --email "$admin_email" --password "$admin_password" </dev/null >/dev/null
    admin_database="$database_url"
  fi
  local port
  port="$(free_port)"
  base_url="http://127.0.0.1:$port"
  export RENRAKUMO_BIND="127.0.0.1:$port"
  export RENRAKUMO_PUBLIC_URL="$base_url"
  "$bin" serve </dev/null >"$tmp/server-$name.log" 2>&1 &
  server_pid=$!
  local deadline=$((SECONDS + 30))
  while :; do
    kill -0 "$server_pid" 2>/dev/null || { cat "$tmp/server-$name.log" >&2; die "the $name server exited at start-up"; }
    curl -fsS --noproxy '*' -o /dev/null --max-time 1 "$base_url/healthz" 2>/dev/null && break
    [ "$SECONDS" -lt "$deadline" ] || { cat "$tmp/server-$name.log" >&2; die "the $name server did not answer /healthz within 30 s"; }
    sleep 0.1
  done
}

login() {
  curl -fsS --noproxy '*' --max-time 30 -o "$tmp/login.json" -H 'content-type: application/json' \
    --data-binary "{\"email\":\"$admin_email\",\"password\":\"$admin_password\"}" "$base_url/api/v1/auth/login" \
    || die "login failed"
  token="$(json_field "$tmp/login.json" access_token)"
}

# post_import QUERY FILE: posts FILE to the import in the background (curl_pid), writing
# the answer to $tmp/report.json and "status seconds" to $tmp/curl.out; then watches the
# server until curl ends and sets `peak` (KiB): VmHWM after resetting it, which counts
# every page the import touched, or else the highest VmRSS sampled. With `limit` (KiB)
# set, a server past it is killed and `over_limit` set.
post_import() {
  local query="$1" file="$2"
  local hwm_reset=0
  echo 5 >"/proc/$server_pid/clear_refs" 2>/dev/null && hwm_reset=1
  curl -sS --noproxy '*' --max-time 900 -o "$tmp/report.json" -w '%{http_code} %{time_total}\n' \
    -H "authorization: Bearer $token" -H 'content-type: text/csv' \
    --data-binary @"$file" "$base_url/api/v1/members/import$query" >"$tmp/curl.out" &
  curl_pid=$!
  peak=0
  over_limit=0
  local rss
  while kill -0 "$curl_pid" 2>/dev/null; do
    rss="$(kib_of "$server_pid" VmRSS)"
    [ -n "$rss" ] && [ "$rss" -gt "$peak" ] && peak="$rss"
    if [ -n "${limit:-}" ] && [ -n "$rss" ] && [ "$rss" -gt "$limit" ]; then
      over_limit=1
      stop_pid "$curl_pid"
      kill -9 "$server_pid" 2>/dev/null || true
      break
    fi
    sleep 0.05
  done
  if [ "$hwm_reset" = 1 ] && [ "$over_limit" = 0 ]; then
    rss="$(kib_of "$server_pid" VmHWM)"
    [ -n "$rss" ] && peak="$rss"
  fi
}

# import_phase BACKEND PHASE FILE EXPECTED_FIELD: one timed import, counts checked.
import_phase() {
  local backend="$1" phase="$2" file="$3" expect="$4"
  login # a fresh 15-minute token for each phase
  log "$backend: $phase ($(basename "$file"))"
  limit="" post_import "" "$file"
  local curl_status=0
  wait "$curl_pid" || curl_status=$?
  curl_pid=""
  if [ "$curl_status" -ne 0 ]; then
    echo "import.sh: $backend $phase: curl failed (exit $curl_status); the server is $(kill -0 "$server_pid" 2>/dev/null && echo running || echo gone); its log:" >&2
    tail -n 30 "$tmp/server-$backend.log" >&2
    exit 1
  fi
  local code seconds
  read -r code seconds <"$tmp/curl.out"
  if [ "$code" != 200 ]; then
    echo "import.sh: $backend $phase answered $code:" >&2
    head -c 2000 "$tmp/report.json" >&2; echo >&2
    tail -n 20 "$tmp/server-$backend.log" >&2
    exit 1
  fi
  local created updated unchanged errors encoding
  created="$(json_field "$tmp/report.json" created)"
  updated="$(json_field "$tmp/report.json" updated)"
  unchanged="$(json_field "$tmp/report.json" unchanged)"
  errors="$(json_field "$tmp/report.json" errors)"
  encoding="$(json_field "$tmp/report.json" encoding)"
  local want_created=0 want_updated=0 want_unchanged=0
  case "$expect" in
    created) want_created="$rows" ;;
    updated) want_updated="$rows" ;;
    unchanged) want_unchanged="$rows" ;;
  esac
  if [ "$created/$updated/$unchanged" != "$want_created/$want_updated/$want_unchanged" ] || [ "$errors" != "[]" ]; then
    echo "import.sh: $backend $phase: expected created/updated/unchanged $want_created/$want_updated/$want_unchanged with no errors, got $created/$updated/$unchanged:" >&2
    head -c 2000 "$tmp/report.json" >&2; echo >&2
    exit 1
  fi
  [ "$encoding" = "Shift_JIS" ] || die "$backend $phase: the server read the file as $encoding, not Shift_JIS"
  printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$backend" "$phase" "$rows" "$seconds" "$(per_second "$rows" "$seconds")" "$(mib "$peak")" >>"$results"
  log "$backend: $phase: ${seconds} s, counts ok"
}

# hostile_phase BACKEND SHAPE: a dry run of the hostile file; any answer but a 5xx is fine,
# what counts is the time and the memory it took.
hostile_phase() {
  local backend="$1" shape="$2" file="$tmp/hostile-$shape.csv"
  kill -0 "$server_pid" 2>/dev/null || start_server "$backend"
  login
  log "$backend: hostile $shape ($(wc -c <"$file") bytes)"
  limit=$((rss_limit_mib * 1024)) post_import "?dry_run=true" "$file"
  wait "$curl_pid" 2>/dev/null || true
  curl_pid=""
  local code="-" seconds="-" answer peak_mib
  peak_mib="$(mib "$peak")"
  if [ "$over_limit" = 1 ]; then
    answer="stopped: past ${rss_limit_mib} MiB"
    peak_mib="> $rss_limit_mib"
    server_pid=""
  else
    read -r code seconds <"$tmp/curl.out" || true
    answer="$(python3 -c 'import json, sys
try:
    r = json.load(open(sys.argv[1]))
except Exception:
    print("(not JSON)"); sys.exit()
e = r.get("errors") or []
if "created" in r:
    print(f"{len(e)} errors listed")
else:
    first = e[0] if e else {}
    print(("%s line %s: %s" % (first.get("field", "-"), first.get("line", "-"), first.get("message", r.get("detail", ""))))[:70])' "$tmp/report.json")"
    case "$code" in 5*|000) die "$backend hostile $shape answered $code" ;; esac
  fi
  printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$backend" "$shape" "$(wc -c <"$file")" "$code" "$seconds" "$peak_mib" "$answer" >>"$hostile_results"
}

run_phases() {
  local backend="$1" shape
  case " $parts " in *" roster "*)
    import_phase "$backend" create "$tmp/roster.sjis.csv" created
    import_phase "$backend" unchanged "$tmp/roster.sjis.csv" unchanged
    import_phase "$backend" update "$tmp/roster-next-year.sjis.csv" updated
    ;;
  esac
  case " $parts " in *" hostile "*)
    for shape in $hostile_shapes; do hostile_phase "$backend" "$shape"; done
    ;;
  esac
  if [ -n "$server_pid" ]; then
    local hwm
    hwm="$(kib_of "$server_pid" VmHWM)"
    printf '%s|hwm|%s||%s\n' "$backend" "server VmHWM at the end (last import)" "$(mib "${hwm:-0}")" >>"$refs"
  fi
  stop_server
}

# ---- SQLite --------------------------------------------------------------------------
bench_sqlite() {
  ensure_tool sqlite3 sqlite3 || true # for the reference load only
  mkdir -p "$tmp/sqlite"
  database_url="sqlite://$tmp/sqlite/renrakumo.db?mode=rwc"
  log "sqlite: $tmp/sqlite/renrakumo.db"
  start_server sqlite
  run_phases sqlite
  if [ "$parts" = hostile ]; then
    return
  elif command -v sqlite3 >/dev/null 2>&1; then
    # sqlite3 does not transcode: it reads the UTF-8 copy of the same rows. One
    # transaction, a table without indexes, the CLI's defaults (rollback journal).
    local t0 t1
    t0="$(now)"
    sqlite3 "$tmp/sqlite/reference.db" ".mode csv" ".import $tmp/roster.csv roster"
    t1="$(now)"
    local n
    n="$(sqlite3 "$tmp/sqlite/reference.db" 'SELECT count(*) FROM roster')"
    [ "$n" = "$rows" ] || die "sqlite3 .import loaded $n rows, not $rows"
    printf '%s|raw|%s|%s|\n' sqlite "raw: sqlite3 .import, plain table" "$(elapsed "$t0" "$t1")" >>"$refs"
  else
    printf '%s|skip|%s||\n' sqlite "(no sqlite3 CLI: no raw reference)" >>"$refs"
  fi
}

# ---- PostgreSQL ----------------------------------------------------------------------
bench_postgres() {
  local shown
  shown="$(printf '%s' "${pg_admin_url%%\?*}" | sed -E 's#//([^:/@]*):[^@/]*@#//\1:***@#')"
  if ! command -v psql >/dev/null 2>&1; then
    echo "import.sh: PostgreSQL SKIPPED: psql is not installed" >&2
    printf '%s|skip|%s||\n' postgres "SKIPPED: psql is not installed" >>"$refs"
    return
  fi
  if ! PGCONNECT_TIMEOUT=5 psql "$pg_admin_url" -Atq -c 'SELECT 1' >/dev/null 2>&1; then
    echo "import.sh: PostgreSQL SKIPPED: $shown cannot be reached (set RENRAKUMO_TEST_POSTGRES_URL)" >&2
    printf '%s|skip|%s||\n' postgres "SKIPPED: $shown unreachable" >>"$refs"
    return
  fi
  local name="renrakumo_bench_$(date +%s)_$$"
  PGCONNECT_TIMEOUT=5 psql "$pg_admin_url" -q -v ON_ERROR_STOP=1 -c "CREATE DATABASE \"$name\"" >/dev/null
  drop_db="$name"
  local base="${pg_admin_url%%\?*}" query=""
  [ "$base" != "$pg_admin_url" ] && query="?${pg_admin_url#*\?}"
  database_url="${base%/*}/$name$query"
  log "postgres: database $name on $shown ($(psql "$pg_admin_url" -Atqc 'SHOW server_version'))"
  start_server postgres
  run_phases postgres
  [ "$parts" != hostile ] || { drop_database; return; }
  # The same Shift_JIS file, transcoded by the server as ours is (client_encoding SJIS,
  # which is CP932 in PostgreSQL), one transaction, a table without indexes.
  psql "$database_url" -q -v ON_ERROR_STOP=1 -c "CREATE TABLE reference_roster (name text, name_kana text, student_name text, relation text, email1 text, email2 text, email3 text, email4 text, grade text, class text, club text, route text, external_id text, lists text)"
  local t0 t1 s n
  t0="$(now)"
  psql "$database_url" -q -v ON_ERROR_STOP=1 -c "\\copy reference_roster FROM '$tmp/roster.sjis.csv' WITH (FORMAT csv, HEADER true, ENCODING 'SJIS')"
  t1="$(now)"
  n="$(psql "$database_url" -Atq -c 'SELECT count(*) FROM reference_roster')"
  [ "$n" = "$rows" ] || die "psql \\copy loaded $n rows, not $rows"
  printf '%s|raw|%s|%s|\n' postgres "raw: psql \\copy, plain table" "$(elapsed "$t0" "$t1")" >>"$refs"
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
echo "roster import of $rows rows (Shift_JIS, $(wc -c <"$tmp/roster.sjis.csv") bytes), $(nproc) CPUs, $(date +%F), load average $load_start at the start and $(cut -d' ' -f1 /proc/loadavg) at the end"
echo "target: each import under $target s; x raw = the import's time over the raw engine's bulk load of the same CSV"
printf '%-9s %-34s %7s %8s %8s %9s  %s\n' backend phase rows seconds rows/s "peak RSS" "x raw  target"
for backend in sqlite postgres; do
  raw="$(awk -F'|' -v b="$backend" '$1 == b && $2 == "raw" { print $4 }' "$refs")"
  while IFS=$'\t' read -r be phase n seconds rate rss; do
    [ "$be" = "$backend" ] || continue
    verdict="$(awk -v s="$seconds" -v t="$target" 'BEGIN { print (s < t) ? "ok" : "MISSED" }')"
    ratio="$(awk -v s="$seconds" -v r="${raw:-0}" 'BEGIN { if (r > 0) printf "%.0fx", s / r; else print "-" }')"
    printf '%-9s %-34s %7s %8.2f %8s %5s MiB  %5s  %s\n' "$be" "import: $phase" "$n" "$seconds" "$rate" "$rss" "$ratio" "$verdict"
  done <"$results"
  while IFS='|' read -r be kind what seconds rss; do
    [ "$be" = "$backend" ] || continue
    case "$kind" in
      raw) printf '%-9s %-34s %7s %8.2f %8s\n' "$be" "$what" "$rows" "$seconds" "$(per_second "$rows" "$seconds")" ;;
      hwm) printf '%-9s %-34s %7s %8s %8s %5s MiB\n' "$be" "$what" "" "" "" "$rss" ;;
      *) printf '%-9s %s\n' "$be" "$what" ;;
    esac
  done <"$refs"
done

if [ -s "$hostile_results" ]; then
  echo
  echo "hostile files, each a dry run (a 4xx answer is the expected one); peak RSS of the server during each"
  printf '%-9s %-7s %9s %6s %8s %10s  %s\n' backend shape bytes status seconds "peak RSS" answer
  while IFS=$'\t' read -r be shape bytes code seconds rss answer; do
    printf '%-9s %-7s %9s %6s %8s %6s MiB  %s\n' "$be" "$shape" "$bytes" "$code" "$seconds" "$rss" "$answer"
  done <"$hostile_results"
fi

missed="$(awk -F'\t' -v t="$target" '$4 >= t { printf "%s %s (%.1f s); ", $1, $2, $4 }' "$results")"
if [ -n "$missed" ]; then
  echo
  echo "target of $target s MISSED: ${missed%; }"
  [ "${BENCH_STRICT:-}" != 1 ] || exit 3
fi
