#!/usr/bin/env bash
# Benchmark of the delivery engine against the release binary, on SQLite and PostgreSQL
# (issue 5, "Performance"):
#
#   fan-out   a message to 50,000 guardians (2 e-mail addresses and 2 app devices each,
#             all in one list) on a fresh database, the server started with
#             RENRAKUMO_WORKERS=0 so that only the fan-out runs: the time of
#             POST /api/v1/messages/{id}/send (target under 3 s), the answer's
#             recipient_count (50,000) and the jobs it queued (200,000) are checked, and the
#             server's peak RSS (VmHWM of a server started just for the send) is compared
#             with the 200 MB target.
#   e-mail    personalised e-mails (each with its own link) to Postfix's smtp-sink on
#             127.0.0.1, from a server with RENRAKUMO_WORKERS=1, 2, 4 and
#             RENRAKUMO_SMTP_URL: the time from the send call until GET …/stats shows every
#             e-mail sent, in messages/s (target at least 3,000/s). Next to it, in the same
#             run, smtp-source → the same smtp-sink with a message of the same size (one of
#             ours, rendered into the outbox first) and as many messages, over as many
#             connections as our mailer keeps (DEFAULT_MAX_CONNECTIONS), reusing them as we
#             do (-d); the reference is the better of a run before and one after ours
#             (target: ours at least 40 % of it).
#
# It installs Postfix (for smtp-sink/smtp-source) when missing, contacts only 127.0.0.1,
# bounds every wait, and stops everything it started and removes every temporary file and
# database, whatever happens.
#
#   bench/delivery.sh                          # both backends, both parts
#   BENCH_BACKENDS=sqlite BENCH_PARTS=email bench/delivery.sh
#
# Environment:
#   RENRAKUMO_BIN                use this binary instead of `cargo build --release --locked`
#   RENRAKUMO_TEST_POSTGRES_URL  PostgreSQL role that may create databases (default
#                                postgres://postgres@127.0.0.1:5432/postgres); fresh
#                                databases are created there and dropped afterwards. When it
#                                cannot be reached the PostgreSQL half is skipped, saying so.
#   BENCH_BACKENDS               default "sqlite postgres"
#   BENCH_PARTS                  default "fanout email"
#   BENCH_FANOUT_GUARDIANS       default 50000
#   BENCH_EMAIL_GUARDIANS        default 20000 (2 addresses each: 40,000 e-mails per run)
#   BENCH_EMAIL_WORKERS          default "1 2 4" (RENRAKUMO_WORKERS of each e-mail run)
#   BENCH_SMTP_CONNECTIONS       smtp-source's sessions; default: DEFAULT_MAX_CONNECTIONS as
#                                src/delivery/email/pool.rs sets it (what the binary uses)
#   BENCH_EMAIL_TIMEOUT          default 300 s per e-mail run (then the partial rate is shown)
#   BENCH_KEEP_LOGS              a folder to copy the server logs into (removed otherwise)
set -euo pipefail
cd "$(dirname "$0")/.."
root="$PWD"

backends="${BENCH_BACKENDS:-sqlite postgres}"
parts="${BENCH_PARTS:-fanout email}"
fanout_guardians="${BENCH_FANOUT_GUARDIANS:-50000}"
email_guardians="${BENCH_EMAIL_GUARDIANS:-20000}"
email_workers="${BENCH_EMAIL_WORKERS:-1 2 4}"
smtp_connections="${BENCH_SMTP_CONNECTIONS:-$(sed -nE 's/^pub const DEFAULT_MAX_CONNECTIONS: usize = ([0-9]+);.*/\1/p' src/delivery/email/pool.rs)}"
[ -n "$smtp_connections" ] || { echo "delivery.sh: set BENCH_SMTP_CONNECTIONS (no DEFAULT_MAX_CONNECTIONS in src/delivery/email/pool.rs)" >&2; exit 1; }
email_timeout="${BENCH_EMAIL_TIMEOUT:-300}"
pg_admin_url="${RENRAKUMO_TEST_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432/postgres}"
fanout_target_s=3
rss_target_mb=200
rate_target=3000
ratio_target=40

bench_name=delivery.sh
. "$root/bench/lib.sh"

require_tools curl python3 awk

# ---- the binary ----------------------------------------------------------------------
renrakumo_binary

# ---- clean-up, whatever happens ------------------------------------------------------
tmp="$(mktemp -d "${TMPDIR:-/tmp}/renrakumo-delivery.XXXXXX")"
chmod 755 "$tmp" # smtp-sink drops to the postfix user
server_pid=""
sink_pid=""
child_pid=""
databases=() # PostgreSQL databases to drop
stop_server() { stop_pid "$server_pid"; server_pid=""; }
cleanup() {
  local status=$?
  stop_pid "$child_pid"
  stop_server
  stop_pid "$sink_pid"
  for db in "${databases[@]}"; do drop_pg_database "$db"; done
  if [ -n "${BENCH_KEEP_LOGS:-}" ]; then
    mkdir -p "$BENCH_KEEP_LOGS" && cp "$tmp"/*.log "$BENCH_KEEP_LOGS"/ 2>/dev/null || true
  fi
  rm -rf "$tmp"
  exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# ---- helpers -------------------------------------------------------------------------
now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", b - a }'; }
per_second() { awk -v n="$1" -v s="$2" 'BEGIN { if (s > 0) printf "%.0f", n / s; else print "-" }'; }
kib_of() { # kib_of PID FIELD: VmRSS, VmHWM… in KiB
  local key value _
  while read -r key value _; do
    [ "$key" = "$2:" ] && { echo "$value"; return; }
  done <"/proc/$1/status" 2>/dev/null || true
}
mib() { awk -v k="$1" 'BEGIN { printf "%.0f", k / 1024 }'; }
free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}
json() { # json FILE EXPR: a Python expression on `d`, the parsed file
  python3 -c 'import json, sys; d = json.load(open(sys.argv[1])); v = eval(sys.argv[2]); print(v if isinstance(v, (str, int)) else json.dumps(v, ensure_ascii=False))' "$1" "$2"
}
# CPU snapshot: "machine_busy machine_total server sink postgres" in clock ticks; postgres
# counts the backends serving our database (by their process title).
cpu_snapshot() {
  python3 - "${server_pid:-0}" "${sink_pid:-0}" "${pg_database:-}" <<'EOF'
import os, sys
def ticks(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return int(fields[11]) + int(fields[12])
    except (OSError, IndexError, ValueError):
        return 0
def children_of(pid):
    out = []
    for p in os.listdir("/proc"):
        if p.isdigit():
            try:
                with open(f"/proc/{p}/stat") as f:
                    if int(f.read().rsplit(")", 1)[1].split()[1]) == pid:
                        out.append(int(p))
            except (OSError, IndexError, ValueError):
                pass
    return out
with open("/proc/stat") as f:
    cpu = [int(x) for x in f.readline().split()[1:]]
idle = cpu[3] + cpu[4]
total = sum(cpu[:8])
pg = 0
database = sys.argv[3]
for p in os.listdir("/proc") if database else []:
    if p.isdigit():
        try:
            with open(f"/proc/{p}/cmdline", "rb") as f:
                title = f.read().replace(b"\0", b" ").decode(errors="replace").split()
            if len(title) > 3 and title[0] == "postgres:" and title[3] == database:
                pg += ticks(p)
        except OSError:
            pass
sink = int(sys.argv[2])
sink_ticks = ticks(sink) + sum(ticks(c) for c in children_of(sink)) if sink else 0
print(total - idle, total, ticks(int(sys.argv[1])), sink_ticks, pg)
EOF
}
hz="$(getconf CLK_TCK)"

load_at_start="$(cut -d' ' -f1-3 /proc/loadavg)"
results="$tmp/results.txt" # lines: kind|backend|fields…
: >"$results"

# ---- databases -----------------------------------------------------------------------
pg_ok=""
pg_checked=""
pg_reachable() {
  if [ -z "$pg_checked" ]; then
    pg_checked=1
    local shown
    shown="$(printf '%s' "${pg_admin_url%%\?*}" | sed -E 's#//([^:/@]*):[^@/]*@#//\1:***@#')"
    if ! command -v psql >/dev/null 2>&1; then
      echo "delivery.sh: PostgreSQL SKIPPED: psql is not installed" >&2
      echo "skip|postgres|SKIPPED: psql is not installed" >>"$results"
    elif ! PGCONNECT_TIMEOUT=5 psql "$pg_admin_url" -Atq -c 'SELECT 1' >/dev/null 2>&1; then
      echo "delivery.sh: PostgreSQL SKIPPED: $shown cannot be reached (set RENRAKUMO_TEST_POSTGRES_URL)" >&2
      echo "skip|postgres|SKIPPED: $shown unreachable" >>"$results"
    else
      pg_ok=1
      log "postgres: $shown ($(psql "$pg_admin_url" -Atqc 'SHOW server_version'))"
    fi
  fi
  [ -n "$pg_ok" ]
}

# new_database BACKEND NAME: sets $database_url to a fresh database.
new_database() {
  local backend="$1" name="$2"
  case "$backend" in
    sqlite)
      sqlite_file="$tmp/$name.db"
      pg_database=""
      database_url="sqlite://$sqlite_file?mode=rwc"
      ;;
    postgres)
      local db="renrakumo_bench_${name}_$(date +%s)_$$"
      PGCONNECT_TIMEOUT=5 psql "$pg_admin_url" -q -v ON_ERROR_STOP=1 -c "CREATE DATABASE \"$db\"" >/dev/null
      databases+=("$db")
      pg_database="$db"
      local base="${pg_admin_url%%\?*}" query=""
      [ "$base" != "$pg_admin_url" ] && query="?${pg_admin_url#*\?}"
      database_url="${base%/*}/$db$query"
      ;;
  esac
  admin_email="bench-admin@bench.example.jp"
  admin_password="bench admin passphrase $RANDOM$RANDOM"
  RENRAKUMO_DATABASE_URL="$database_url" "$bin" create-admin --org 'ベンチ市教育委員会' --email "$admin_email" \
    --password "$admin_password" </dev/null >/dev/null
}

# sql BACKEND STATEMENT: runs one statement on $database_url beside the server, prints rows.
sql() {
  case "$1" in
    sqlite)
      python3 - "$sqlite_file" "$2" <<'EOF'
import sqlite3, sys
db = sqlite3.connect(sys.argv[1], timeout=60)
rows = db.execute(sys.argv[2]).fetchall()
db.commit()
for row in rows:
    print("|".join(str(c) for c in row))
EOF
      ;;
    postgres) psql "$database_url" -Atq -v ON_ERROR_STOP=1 -c "$2" ;;
  esac
}

# ---- the server ----------------------------------------------------------------------
# start_server NAME WORKERS [SMTP_URL]: serve on $database_url; sets $base_url, $server_pid.
start_server() {
  local name="$1" workers="$2" smtp="${3:-}"
  local port
  port="$(free_port)"
  base_url="http://127.0.0.1:$port"
  local -a env=(RENRAKUMO_DATABASE_URL="$database_url" RENRAKUMO_BIND="127.0.0.1:$port"
    RENRAKUMO_PUBLIC_URL="$base_url" RENRAKUMO_OUTBOX_DIR="$tmp/outbox" RENRAKUMO_WORKERS="$workers")
  [ -n "$smtp" ] && env+=(RENRAKUMO_SMTP_URL="$smtp")
  env -u RENRAKUMO_SMTP_URL "${env[@]}" "$bin" serve </dev/null >"$tmp/server-$name.log" 2>&1 &
  server_pid=$!
  local deadline=$((SECONDS + 30))
  while :; do
    kill -0 "$server_pid" 2>/dev/null || { cat "$tmp/server-$name.log" >&2; die "the $name server exited at start-up"; }
    curl -fsS --noproxy '*' -o /dev/null --max-time 1 "$base_url/healthz" 2>/dev/null && break
    [ "$SECONDS" -lt "$deadline" ] || { cat "$tmp/server-$name.log" >&2; die "the $name server did not answer /healthz within 30 s"; }
    sleep 0.1
  done
  login
}

login() {
  curl -fsS --noproxy '*' --max-time 30 -o "$tmp/login.json" -H 'content-type: application/json' \
    --data-binary "{\"email\":\"$admin_email\",\"password\":\"$admin_password\"}" "$base_url/api/v1/auth/login" \
    || die "login failed"
  token="$(json "$tmp/login.json" 'd["access_token"]')"
}

# api METHOD PATH [JSON]: the answer in $tmp/answer.json, dies unless 2xx.
api() {
  local code
  code="$(curl -sS --noproxy '*' --max-time 600 -o "$tmp/answer.json" -w '%{http_code}' -X "$1" \
    -H "authorization: Bearer $token" -H 'content-type: application/json' \
    ${3:+--data-binary "$3"} "$base_url/api/v1$2")"
  case "$code" in
    2??) ;;
    *) echo "delivery.sh: $1 $2 answered $code:" >&2; head -c 2000 "$tmp/answer.json" >&2; echo >&2; exit 1 ;;
  esac
}

# load_guardians ROWS: a list and ROWS guardians (2 addresses each) in it; sets $list_id.
load_guardians() {
  local rows="$1"
  python3 "$root/bench/gen_guardians.py" "$rows" >"$tmp/guardians.csv"
  api POST /lists '{"name":"ベンチ 全校"}'
  list_id="$(json "$tmp/answer.json" 'd["id"]')"
  local code
  code="$(curl -sS --noproxy '*' --max-time 900 -o "$tmp/answer.json" -w '%{http_code}' \
    -H "authorization: Bearer $token" -H 'content-type: text/csv' \
    --data-binary @"$tmp/guardians.csv" "$base_url/api/v1/members/import?list_id=$list_id")"
  [ "$code" = 200 ] || { head -c 2000 "$tmp/answer.json" >&2; die "import answered $code"; }
  [ "$(json "$tmp/answer.json" 'd["created"]')" = "$rows" ] || die "import created $(json "$tmp/answer.json" 'd["created"]'), not $rows"
}

# create_message CHANNELS TARGETS: a draft with a realistic Japanese notice; sets $message_id.
create_message() {
  local body
  body="$(python3 -c 'import json; print(json.dumps(
    "保護者各位\n\nいつも本校の教育活動にご理解とご協力をいただき、ありがとうございます。\n"
    "台風の接近に伴い、明日は臨時休校とします。児童は自宅で安全に過ごすようご指導ください。\n"
    "なお、学童保育は通常どおり開所します。給食費の返金については後日お知らせします。\n"
    "ご不明な点は学校までお問い合わせください。\n\n"
    "さくら小学校 校長 山田 太郎\n電話 03-1234-5678（平日 8:00〜17:00）", ensure_ascii=False))')"
  api POST /messages "{\"subject\":\"【重要】台風接近に伴う臨時休校のお知らせ\",\"body\":$body,\"from_name\":\"さくら小学校\",\"channels\":$1,\"targets\":$2}"
  message_id="$(json "$tmp/answer.json" 'd["id"]')"
}

# ---- fan-out -------------------------------------------------------------------------
bench_fanout() {
  local backend="$1" rows="$fanout_guardians"
  new_database "$backend" fanout
  log "$backend fan-out: loading $rows guardians (CSV import) and $((rows * 2)) devices (SQL)"
  start_server "$backend-fanout-load" 0
  load_guardians "$rows"
  local t="(CAST(strftime('%s','now') AS INTEGER) * 1000)"
  case "$backend" in
    sqlite)
      sql sqlite "INSERT INTO member_devices (id, member_id, org_id, platform, token, app_id, created_at, updated_at)
        SELECT printf('%s-%s-4%s-a%s-%s', lower(hex(randomblob(4))), lower(hex(randomblob(2))), substr(lower(hex(randomblob(2))), 2),
                      substr(lower(hex(randomblob(2))), 2), lower(hex(randomblob(6)))),
               m.id, m.org_id, p.platform,
               CASE p.platform WHEN 'apns' THEN lower(hex(randomblob(32))) ELSE 'fcm:' || lower(hex(randomblob(70))) END,
               NULL, $t, $t
        FROM members m CROSS JOIN (SELECT 'apns' AS platform UNION ALL SELECT 'fcm') p"
      ;;
    postgres)
      t="(extract(epoch FROM now()) * 1000)::bigint"
      sql postgres "INSERT INTO member_devices (id, member_id, org_id, platform, token, app_id, created_at, updated_at)
        SELECT gen_random_uuid()::text, m.id, m.org_id, p.platform,
               CASE p.platform WHEN 'apns' THEN md5(random()::text) || md5(random()::text)
                    ELSE 'fcm:' || md5(random()::text) || md5(random()::text) || md5(random()::text) || md5(random()::text) END,
               NULL, $t, $t
        FROM members m CROSS JOIN (VALUES ('apns'), ('fcm')) AS p (platform)"
      sql postgres "ANALYZE" >/dev/null
      ;;
  esac
  local devices
  devices="$(sql "$backend" "SELECT COUNT(*) FROM member_devices")"
  [ "$devices" = "$((rows * 2))" ] || die "$backend: $devices devices, not $((rows * 2))"
  create_message '["email","push"]' "{\"list_ids\":[\"$list_id\"]}"
  api GET "/messages/$message_id/preview"
  log "$backend fan-out: preview $(tr -d '\n' <"$tmp/answer.json")"
  # A server of its own for the send, so its peak RSS is the send's, not the import's.
  stop_server
  start_server "$backend-fanout" 0
  local rss_before
  rss_before="$(kib_of "$server_pid" VmHWM)"
  log "$backend fan-out: POST /messages/$message_id/send"
  curl -sS --noproxy '*' --max-time 600 -o "$tmp/send.json" -w '%{http_code} %{time_total}\n' -X POST \
    -H "authorization: Bearer $token" "$base_url/api/v1/messages/$message_id/send" >"$tmp/curl.out" &
  child_pid=$!
  local peak=0 rss
  while kill -0 "$child_pid" 2>/dev/null; do
    rss="$(kib_of "$server_pid" VmRSS)"
    [ -n "$rss" ] && [ "$rss" -gt "$peak" ] && peak="$rss"
    sleep 0.05
  done
  wait "$child_pid" || die "$backend fan-out: curl failed"
  child_pid=""
  local code seconds
  read -r code seconds <"$tmp/curl.out"
  [ "$code" = 202 ] || { head -c 2000 "$tmp/send.json" >&2; echo >&2; tail -n 20 "$tmp/server-$backend-fanout.log" >&2; die "$backend fan-out: the send answered $code"; }
  local count hwm jobs
  count="$(json "$tmp/send.json" 'd["recipient_count"]')"
  hwm="$(kib_of "$server_pid" VmHWM)"
  jobs="$(sql "$backend" "SELECT channel || ':' || COUNT(*) FROM delivery_jobs WHERE message_id = '$message_id' AND status = 0 GROUP BY channel ORDER BY channel" | tr '\n' ' ')"
  local queued
  queued="$(sql "$backend" "SELECT COUNT(*) FROM delivery_jobs WHERE message_id = '$message_id' AND status = 0")"
  log "$backend fan-out: ${seconds} s, recipient_count $count, queued jobs $jobs, VmHWM $(mib "$hwm") MiB (before the send $(mib "$rss_before") MiB)"
  [ "$count" = "$rows" ] || die "$backend fan-out: recipient_count $count, not $rows"
  [ "$queued" = "$((rows * 4))" ] || die "$backend fan-out: $queued queued jobs, not $((rows * 4))"
  stop_server
  # Reference, same run: the engine's own client runs the send's statements (as
  # src/db/repositories/messages.rs writes them for a list target: three on SQLite, one on
  # PostgreSQL) in one transaction that it rolls back, after clearing this message's rows
  # in it; only the inserts count.
  local org reference fan_sql
  org="$(sql "$backend" "SELECT org_id FROM messages WHERE id = '$message_id'")"
  local targeted="FROM members m WHERE m.org_id = '$org' AND m.status = 'active' AND (EXISTS (SELECT 1 FROM list_members lm WHERE lm.member_id = m.id AND lm.list_id IN ('$list_id')))"
  local email_jobs="INSERT INTO delivery_jobs (message_id, member_id, channel, address, priority, status, attempts, run_after, updated_at) SELECT '$message_id', t.member_id, 'email', e.address, 0, 0, 0, 1, 1 FROM %s t JOIN member_emails e ON e.member_id = t.member_id WHERE e.status IN ('active', 'bounced') ORDER BY t.member_id, e.position"
  local push_jobs="INSERT INTO delivery_jobs (message_id, member_id, channel, address, platform, device_id, priority, status, attempts, run_after, updated_at) SELECT '$message_id', t.member_id, 'push', d.token, d.platform, d.id, 0, 0, 0, 1, 1 FROM %s t JOIN member_devices d ON d.member_id = t.member_id ORDER BY t.member_id, d.id"
  case "$backend" in
    sqlite)
      local recipients="(SELECT r.member_id FROM recipients r JOIN members m ON m.id = r.member_id WHERE r.message_id = '$message_id' AND m.status = 'active' AND TRUE)"
      # shellcheck disable=SC2059 # the job statements are formats with the guardians' relation
      fan_sql="INSERT INTO recipients (message_id, member_id, org_id, created_at) SELECT '$message_id', m.id, m.org_id, 1 $targeted;
$(printf "$email_jobs" "$recipients");
$(printf "$push_jobs" "$recipients");"
      ;;
    postgres)
      # shellcheck disable=SC2059
      fan_sql="WITH targeted AS MATERIALIZED (SELECT m.id AS member_id, m.org_id $targeted FOR KEY SHARE OF m), added AS (INSERT INTO recipients (message_id, member_id, org_id, created_at) SELECT '$message_id', member_id, org_id, 1 FROM targeted RETURNING 1), email_jobs AS ($(printf "$email_jobs" targeted) RETURNING 1), push_jobs AS ($(printf "$push_jobs" targeted) RETURNING 1) SELECT (SELECT COUNT(*) FROM added), (SELECT COUNT(*) FROM email_jobs), (SELECT COUNT(*) FROM push_jobs);"
      ;;
  esac
  local clear="DELETE FROM delivery_jobs WHERE message_id = '$message_id'; DELETE FROM recipients WHERE message_id = '$message_id';"
  case "$backend" in
    sqlite)
      reference="$(python3 - "$sqlite_file" "$clear" "$fan_sql" <<'EOF2'
import sqlite3, sys, time
db = sqlite3.connect(sys.argv[1], timeout=60, isolation_level=None)
db.execute("PRAGMA foreign_keys = ON")
db.execute("BEGIN IMMEDIATE")
for statement in sys.argv[2].split(";"):
    if statement.strip():
        db.execute(statement)
started = time.perf_counter()
for statement in sys.argv[3].split(";\n"):
    db.execute(statement.rstrip(";"))
print(f"{time.perf_counter() - started:.2f}")
db.execute("ROLLBACK")
EOF2
)"
      ;;
    postgres)
      reference="$(printf '%s\n' 'BEGIN;' "$clear" '\timing on' "$fan_sql" 'ROLLBACK;' \
        | psql "$database_url" -q -v ON_ERROR_STOP=1 | awk '/^Time:/ { ms += $2 } END { printf "%.2f", ms / 1000 }')"
      ;;
  esac
  log "$backend fan-out: the same statements in the engine's own client: $reference s"
  echo "fanout|$backend|$rows|$seconds|$queued|$(mib "$hwm")|$(mib "$rss_before")|$reference" >>"$results"
}

# ---- e-mail rate ---------------------------------------------------------------------
ensure_postfix_tools() {
  command -v smtp-sink >/dev/null 2>&1 && command -v smtp-source >/dev/null 2>&1 && return
  PATH="$PATH:/usr/sbin:/sbin"
  command -v smtp-sink >/dev/null 2>&1 && command -v smtp-source >/dev/null 2>&1 && return
  [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1 || die "smtp-sink/smtp-source missing: install Postfix (Debian: postfix)"
  log "installing Postfix (smtp-sink, smtp-source) with apt-get"
  echo "postfix postfix/main_mailer_type select No configuration" | debconf-set-selections
  if ! DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends postfix >"$tmp/apt.log" 2>&1; then
    apt-get update -qq >>"$tmp/apt.log" 2>&1 || true
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends postfix >>"$tmp/apt.log" 2>&1 \
      || { tail -n 20 "$tmp/apt.log" >&2; die "could not install postfix"; }
  fi
  command -v smtp-sink >/dev/null 2>&1 || die "postfix installed but no smtp-sink in PATH"
}

start_sink() {
  sink_port="$(free_port)"
  local user=()
  [ "$(id -u)" = 0 ] && user=(-u "$(id -un postfix 2>/dev/null || echo nobody)")
  # -m: more simultaneous connections than anyone here opens; no -c counter (it costs CPU).
  smtp-sink "${user[@]}" -m 1000 "127.0.0.1:$sink_port" 2000 >"$tmp/sink.log" 2>&1 &
  sink_pid=$!
  local deadline=$((SECONDS + 10))
  until python3 -c 'import socket, sys; socket.create_connection(("127.0.0.1", int(sys.argv[1])), 1).close()' "$sink_port" 2>/dev/null; do
    kill -0 "$sink_pid" 2>/dev/null || { cat "$tmp/sink.log" >&2; die "smtp-sink exited"; }
    [ "$SECONDS" -lt "$deadline" ] || die "smtp-sink did not listen within 10 s"
    sleep 0.1
  done
  log "smtp-sink on 127.0.0.1:$sink_port"
}

# reference MESSAGES: smtp-source → smtp-sink, our message size and connection count;
# prints "seconds rate".
reference() {
  local n="$1" t0 t1
  t0="$(now)"
  timeout 600 smtp-source -4 -d -s "$smtp_connections" -m "$n" -M renrakumo.bench -f noreply@localhost \
    -t guardian@example.jp -F "$tmp/sample.txt" "127.0.0.1:$sink_port" >"$tmp/source.log" 2>&1 \
    || { cat "$tmp/source.log" >&2; die "smtp-source failed"; }
  t1="$(now)"
  echo "$(elapsed "$t0" "$t1") $(per_second "$n" "$(elapsed "$t0" "$t1")")"
}

bench_email() {
  local backend="$1" rows="$email_guardians"
  local emails=$((rows * 2))
  ensure_postfix_tools
  [ -n "$sink_pid" ] || start_sink
  new_database "$backend" email
  log "$backend e-mail: loading $rows guardians ($emails addresses)"
  # One worker and the outbox: a sample of what we send, to size smtp-source's message.
  start_server "$backend-email-load" 1
  load_guardians "$rows"
  api GET "/members?limit=1"
  local member
  member="$(json "$tmp/answer.json" 'd["items"][0]["id"]')"
  rm -rf "$tmp/outbox"
  create_message '["email"]' "{\"member_ids\":[\"$member\"]}"
  api POST "/messages/$message_id/send"
  local deadline=$((SECONDS + 30)) sample=""
  while [ -z "$sample" ]; do
    sample="$(find "$tmp/outbox" -name '*.eml' ! -name '*summary*' 2>/dev/null | head -n 1 || true)"
    [ "$SECONDS" -lt "$deadline" ] || die "$backend e-mail: no .eml in the outbox after 30 s"
    [ -n "$sample" ] || sleep 0.2
  done
  sleep 0.5
  # smtp-source appends CRLF to each line itself.
  tr -d '\r' <"$sample" >"$tmp/sample.txt"
  sample_bytes="$(wc -c <"$sample")"
  log "$backend e-mail: our message is $sample_bytes bytes (as sent, CRLF)"
  stop_server

  local before after
  before="$(reference "$emails")"
  log "$backend e-mail: smtp-source before: $emails messages in ${before% *} s = ${before#* }/s"

  local workers
  for workers in $email_workers; do
    start_server "$backend-email-w$workers" "$workers" "smtp://127.0.0.1:$sink_port"
    create_message '["email"]' "{\"list_ids\":[\"$list_id\"]}"
    local c0 c1 t0 t1 send_s
    c0="$(cpu_snapshot)"
    t0="$(now)"
    send_s="$(curl -sS --noproxy '*' --max-time 600 -o "$tmp/send.json" -w '%{time_total}' -X POST \
      -H "authorization: Bearer $token" "$base_url/api/v1/messages/$message_id/send")"
    [ "$(json "$tmp/send.json" 'd.get("recipient_count")')" = "$rows" ] || { cat "$tmp/send.json" >&2; die "$backend e-mail: bad send answer"; }
    local sent=0 done_count=0 verdict=ok deadline=$((SECONDS + email_timeout)) peak=0 rss
    while :; do
      curl -sS --noproxy '*' --max-time 10 -o "$tmp/stats.json" -H "authorization: Bearer $token" \
        "$base_url/api/v1/messages/$message_id/stats" || true
      # Parsed in bash: a Python start per poll would take CPU from the server measured.
      local stats=""
      stats="$(<"$tmp/stats.json")" 2>/dev/null || true
      if [[ "$stats" =~ \"email\":\{\"queued\":([0-9]+),\"sent\":([0-9]+),\"failed\":([0-9]+),\"bounced\":([0-9]+)\} ]]; then
        sent="${BASH_REMATCH[2]}"
        done_count=$((BASH_REMATCH[2] + BASH_REMATCH[3] + BASH_REMATCH[4]))
      fi
      rss="$(kib_of "$server_pid" VmRSS)"
      [ -n "$rss" ] && [ "$rss" -gt "$peak" ] && peak="$rss"
      [ "$done_count" -ge "$emails" ] && break
      if [ "$SECONDS" -ge "$deadline" ]; then verdict=TIMEOUT; break; fi
      # Each stats call costs the server tens of milliseconds of CPU on a big message:
      # sleep half the expected remaining time (0.05 to 1 s), so that few polls are made
      # and the last one lands close to the end.
      sleep "$(awk -v t0="$t0" -v now="$(now)" -v d="$done_count" -v n="$emails" 'BEGIN {
        e = now - t0; s = (d > 0) ? (n - d) * e / d / 2 : 0.2;
        printf "%.3f", (s < 0.05) ? 0.05 : (s > 1) ? 1 : s }')"
    done
    t1="$(now)"
    c1="$(cpu_snapshot)"
    local seconds rate cpu
    seconds="$(elapsed "$t0" "$t1")"
    rate="$(per_second "$sent" "$seconds")"
    # CPU during the run, in % of one core: renrakumo, smtp-sink, PostgreSQL; machine busy %.
    cpu="$(awk -v a="$c0" -v b="$c1" -v s="$seconds" -v hz="$hz" 'BEGIN {
      split(a, x, " "); split(b, y, " ");
      printf "%.0f %.0f %.0f %.0f", (y[3]-x[3])/hz/s*100, (y[4]-x[4])/hz/s*100, (y[5]-x[5])/hz/s*100, (y[1]-x[1])/(y[2]-x[2])*100 }')"
    [ "$sent" = "$emails" ] || verdict="$verdict ($sent of $emails sent, $((done_count - sent)) failed/bounced)"
    log "$backend e-mail: $workers worker(s): $sent e-mails in $seconds s = $rate/s (send call ${send_s} s; CPU % server/sink/pg/machine: $cpu) $verdict"
    echo "email|$backend|$workers|$sent|$seconds|$rate|$send_s|$cpu|$(mib "$peak")|$verdict" >>"$results"
    stop_server
  done

  after="$(reference "$emails")"
  log "$backend e-mail: smtp-source after: $emails messages in ${after% *} s = ${after#* }/s"
  local best="${before#* }"
  [ "${after#* }" -gt "$best" ] && best="${after#* }"
  echo "ref|$backend|$emails|${before#* }|${after#* }|$best|$sample_bytes" >>"$results"
}

for backend in $backends; do
  case "$backend" in
    sqlite) ;;
    postgres | postgresql) backend=postgres; pg_reachable || continue ;;
    *) die "unknown backend '$backend' in BENCH_BACKENDS (sqlite, postgres)" ;;
  esac
  for part in $parts; do
    case "$part" in
      fanout) bench_fanout "$backend" ;;
      email) bench_email "$backend" ;;
      *) die "unknown part '$part' in BENCH_PARTS (fanout, email)" ;;
    esac
  done
done

# ---- the table -----------------------------------------------------------------------
echo
echo "delivery benchmark, $(nproc) CPUs, $(date +%F), $(basename "$bin") $("$bin" --version 2>/dev/null | awk '{print $2}'), load average at start $load_at_start (other work on the machine skews every figure)"
while IFS='|' read -r kind backend a b c d e f g; do
  case "$kind" in
    skip) printf '%-9s %s\n' "$backend" "$a" ;;
  esac
done <"$results"
if grep -q '^fanout|' "$results"; then
  echo
  echo "fan-out: POST /messages/{id}/send to G guardians x (2 addresses + 2 devices), RENRAKUMO_WORKERS=0 (target < ${fanout_target_s} s, < ${rss_target_mb} MB)"
  echo "reference: the engine's own client (psql, Python sqlite3) runs the send's INSERT ... SELECT statements (SQLite 3, PostgreSQL 1) in the same run"
  printf '%-9s %9s %9s %10s %13s %10s %9s  %s\n' backend guardians seconds reference "queued jobs" "peak RSS" "at start" verdict
  while IFS='|' read -r kind backend rows seconds queued hwm start reference; do
    [ "$kind" = fanout ] || continue
    verdict="$(awk -v s="$seconds" -v m="$hwm" -v ts="$fanout_target_s" -v tm="$rss_target_mb" \
      'BEGIN { print ((s < ts) ? "time ok" : "time MISSED") ", " ((m * 1.048576 < tm) ? "memory ok" : "memory MISSED") }')"
    printf '%-9s %9s %9.2f %8s s %13s %6s MiB %5s MiB  %s\n' "$backend" "$rows" "$seconds" "$reference" "$queued" "$hwm" "$start" "$verdict"
  done <"$results"
fi
if grep -q '^email|' "$results"; then
  echo
  echo "e-mail rate: personalised e-mails to smtp-sink on 127.0.0.1, ${smtp_connections} SMTP connections (target >= ${rate_target}/s and >= ${ratio_target} % of smtp-source)"
  printf '%-9s %7s %7s %8s %7s %12s %6s  %-22s %8s  %s\n' backend workers e-mails seconds "msg/s" "smtp-source" "ratio" "CPU% srv/sink/pg/all" "peak RSS" verdict
  while IFS='|' read -r kind backend workers sent seconds rate send_s cpu peak verdict; do
    [ "$kind" = email ] || continue
    ref="$(awk -F'|' -v b="$backend" '$1 == "ref" && $2 == b { print $6 }' "$results")"
    ratio="$(awk -v r="$rate" -v f="${ref:-0}" 'BEGIN { if (f > 0) printf "%.0f %%", r / f * 100; else print "-" }')"
    ok="$(awk -v r="$rate" -v f="${ref:-0}" -v t="$rate_target" -v q="$ratio_target" \
      'BEGIN { print ((r >= t) ? "rate ok" : "rate MISSED") ", " ((f > 0 && r / f * 100 >= q) ? "ratio ok" : "ratio MISSED") }')"
    [ "$verdict" = ok ] || ok="$ok, $verdict"
    printf '%-9s %7s %7s %8.2f %7s %10s/s %6s  %-22s %4s MiB  %s\n' "$backend" "$workers" "$sent" "$seconds" "$rate" "${ref:--}" "$ratio" "${cpu// //}" "$peak" "$ok"
  done <"$results"
  while IFS='|' read -r kind backend n before after best bytes; do
    [ "$kind" = ref ] || continue
    printf '%-9s smtp-source -d -s %s -m %s, %s-byte message: %s/s before, %s/s after ours (best is the reference)\n' \
      "$backend" "$smtp_connections" "$n" "$bytes" "$before" "$after"
  done <"$results"
fi
