#!/usr/bin/env bash
# Faults in the middle of a send, and what reaches the guardians (issue 15, "Proofs anyone
# can run"). Two instances of renrakumo (`serve`, delivery workers on) share one fresh
# PostgreSQL database and send one message to CHAOS_GUARDIANS guardians (2 e-mail addresses
# each) through Postfix's smtp-sink on 127.0.0.1. When about a quarter of the e-mails have
# reached the sink, one fault, each in a run of its own on a fresh database:
#
#   kill      `kill -9` of instance A. Instance B must finish the send, A's claimed jobs
#             included once their lease ends: the seconds from the kill until B's
#             GET /api/v1/messages/{id}/stats shows every job ended (target <= 30 s:
#             a 15-second lease, plus the rounds that send what A held).
#   restart   the PostgreSQL server is stopped (fast mode), left down CHAOS_OUTAGE seconds
#             (default 3), and started again; both instances stay up. The seconds from the
#             stop until stats shows every job ended, and from the moment PostgreSQL accepts
#             connections again (target <= 30 s: the workers' pause grows to 5 s at most,
#             then they record what they kept and claim again). /readyz of B is probed
#             while the database is down (1 s each): it must not answer 200, and the
#             503s are counted.
#
# For each run it prints the e-mails expected (2 per guardian), those the sink received,
# counted per recipient address from smtp-sink's dump files (-d: one file per message
# received in full, written when the client sends the final ".", removed when the
# transaction is aborted), the addresses that received nothing (lost), the extra copies
# (duplicates), the recovery seconds and the failed count of stats. It exits non-zero when
# any e-mail is lost, any job failed, a recovery exceeds its target, or duplicates exceed
# what the fault can explain: for the kill, what A had handed to the relay without
# recording it, at most two batches per worker task (the batch being sent and the one
# being recorded: 2 x WorkerSettings::batch = 2 x 500); for the restart, none (README,
# "When the database goes away": the outcomes are kept and recorded later).
#
# Pacing. Unpaced, the release binary sends 2,000 e-mails in well under a second, too
# fast to stop anything at a quarter. For such small sends smtp-sink delays its answer to
# DATA by 1 s for a random share of the messages (-W data:1:ODDS: 1 s times the number of
# dice rolls, 0..99, below ODDS before one reaches it), ODDS chosen so that both instances
# together (16 SMTP connections each, the mailer's bound) would need about
# CHAOS_SEND_SECONDS (default 5) for the whole send: 7 for 2,000 e-mails. Long enough to
# catch a quarter; short enough that what the survivor has left stays inside the target.
# Larger sends (where that gives ODDS under 5, above about 3,000 e-mails) are not paced:
# they take seconds anyway, and even a rare 1 s answer holds up every round of 500, since a
# worker task records its batch and sends the next one only when the last e-mail of the
# current one is answered. At ODDS 1 (1 % of the answers after 1 s or more) 20,000 e-mails
# went at about 500/s per instance, and the survivor's remaining three quarters, not the
# lease, made the recovery (36 s; 2026-12-08, bench/RESULTS.md). Each instance runs
# RENRAKUMO_WORKERS=1, so that it holds at most a batch being sent and one claimed ahead
# (1,000 jobs): with the default 4 tasks, the first instance to poll could claim a small
# send whole and the other would have nothing to lose. The trigger counts the sink's
# files rather than stats, which moves one recorded batch (500) at a time. The instances
# differ only by their From address (RENRAKUMO_MAIL_FROM), so that each received e-mail
# shows which instance sent it.
#
# The restart run stops the PostgreSQL cluster of this machine (pg_ctlcluster, as root;
# RENRAKUMO_TEST_POSTGRES_URL must point at 127.0.0.1 or localhost): anything else using it
# sees the outage too. It is started again whatever happens (EXIT trap), and the script
# waits until it accepts connections. It installs Postfix when smtp-sink is missing,
# contacts only 127.0.0.1, bounds every wait, and stops everything it started and removes
# every temporary file and database, whatever happens.
#
#   bench/chaos.sh                                            # 10,000 guardians, both faults
#   CHAOS_GUARDIANS=1000 RENRAKUMO_BIN=target/debug/renrakumo bench/chaos.sh   # CI
#
# Environment:
#   RENRAKUMO_BIN                use this binary instead of `cargo build --release --locked`
#   RENRAKUMO_TEST_POSTGRES_URL  PostgreSQL role that may create databases (default
#                                postgres://postgres@127.0.0.1:5432/postgres)
#   CHAOS_GUARDIANS              default 10000 (2 e-mail addresses each)
#   CHAOS_FAULTS                 default "kill restart"
#   CHAOS_OUTAGE                 seconds PostgreSQL stays down in the restart run; default 3
#   CHAOS_SEND_SECONDS           the paced length of a small send; default 5
#   CHAOS_SINK_ODDS              smtp-sink's -W data:1:ODDS instead of the computed one;
#                                0 = not paced
#   CHAOS_TIMEOUT                seconds a run may take after the send; default 300
#   CHAOS_KEEP_LOGS              a folder to copy the server and sink logs into
set -euo pipefail
cd "$(dirname "$0")/.."
root="$PWD"

guardians="${CHAOS_GUARDIANS:-10000}"
faults="${CHAOS_FAULTS:-kill restart}"
outage_s="${CHAOS_OUTAGE:-3}"
send_seconds="${CHAOS_SEND_SECONDS:-5}"
run_timeout="${CHAOS_TIMEOUT:-300}"
pg_admin_url="${RENRAKUMO_TEST_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432/postgres}"
kill_target_s=30
restart_target_s=30 # after PostgreSQL accepts connections again
workers=1           # RENRAKUMO_WORKERS of each instance (see Pacing)
batch="$(sed -nE 's/^ *batch: ([0-9]+),.*/\1/p' src/delivery/worker.rs | head -n 1)"
[ -n "$batch" ] || batch=500
smtp_connections="$(sed -nE 's/^pub const DEFAULT_MAX_CONNECTIONS: usize = ([0-9]+);.*/\1/p' src/delivery/email/pool.rs)"
[ -n "$smtp_connections" ] || smtp_connections=16
emails=$((guardians * 2))

bench_name=chaos.sh
. "$root/bench/lib.sh"

require_tools curl python3 awk psql pg_isready
for fault in $faults; do
  case "$fault" in kill | restart) ;; *) die "unknown fault '$fault' in CHAOS_FAULTS (kill, restart)" ;; esac
done
PGCONNECT_TIMEOUT=5 psql "$pg_admin_url" -Atq -c 'SELECT 1' >/dev/null 2>&1 \
  || die "PostgreSQL cannot be reached at ${pg_admin_url%%\?*} (set RENRAKUMO_TEST_POSTGRES_URL)"
pg_host="$(python3 -c 'import sys, urllib.parse; u = urllib.parse.urlsplit(sys.argv[1]); print(u.hostname or "127.0.0.1", u.port or 5432)' "$pg_admin_url")"
pg_port="${pg_host#* }"
pg_host="${pg_host% *}"
if [[ " $faults " == *" restart "* ]]; then
  case "$pg_host" in 127.0.0.1 | localhost | ::1) ;; *) die "the restart run restarts the local cluster, but PostgreSQL is $pg_host" ;; esac
  [ "$(id -u)" = 0 ] && command -v pg_ctlcluster >/dev/null 2>&1 \
    || die "the restart run needs root and pg_ctlcluster (or CHAOS_FAULTS=kill)"
  pg_cluster_version="$(ls /etc/postgresql | head -n 1)"
  [ -n "$pg_cluster_version" ] || die "no cluster in /etc/postgresql"
fi

renrakumo_binary

# ---- clean-up, whatever happens ------------------------------------------------------
tmp="$(mktemp -d "${TMPDIR:-/tmp}/renrakumo-chaos.XXXXXX")"
chmod 755 "$tmp" # smtp-sink drops to the postfix user
pid_a=""
pid_b=""
sink_pid=""
readyz_pid=""
pg_stopped=""
databases=()
pg_ctl() { timeout 90 pg_ctlcluster --skip-systemctl-redirect "$pg_cluster_version" main "$@"; }
pg_accepting() { pg_isready -h "$pg_host" -p "$pg_port" -q -t 1 2>/dev/null; }
# wait_for_pg SECONDS: true once PostgreSQL accepts connections.
wait_for_pg() {
  local deadline=$((SECONDS + $1))
  until pg_accepting; do
    [ "$SECONDS" -lt "$deadline" ] || return 1
    sleep 0.1
  done
}
start_pg_again() {
  [ -n "$pg_stopped" ] || return 0
  pg_ctl start >/dev/null 2>&1 || true
  if wait_for_pg 60; then pg_stopped=""; else echo "chaos.sh: PostgreSQL did not come back within 60 s" >&2; fi
}
cleanup() {
  local status=$?
  start_pg_again # first: whatever else fails, the cluster is up again
  stop_pid "$readyz_pid"
  stop_pid "$pid_a"
  stop_pid "$pid_b"
  stop_pid "$sink_pid"
  for db in "${databases[@]}"; do drop_pg_database "$db"; done
  if [ -n "${CHAOS_KEEP_LOGS:-}" ]; then
    mkdir -p "$CHAOS_KEEP_LOGS" && cp "$tmp"/*.log "$CHAOS_KEEP_LOGS"/ 2>/dev/null || true
  fi
  rm -rf "$tmp"
  exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# ---- helpers -------------------------------------------------------------------------
now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1f", b - a }'; }
free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}
json() { # json FILE EXPR: a Python expression on `d`, the parsed file
  python3 -c 'import json, sys; d = json.load(open(sys.argv[1])); v = eval(sys.argv[2]); print(v if isinstance(v, (str, int)) else json.dumps(v, ensure_ascii=False))' "$1" "$2"
}

ensure_postfix_tools() {
  command -v smtp-sink >/dev/null 2>&1 && return
  PATH="$PATH:/usr/sbin:/sbin"
  command -v smtp-sink >/dev/null 2>&1 && return
  [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1 || die "smtp-sink missing: install Postfix (Debian: postfix)"
  log "installing Postfix (smtp-sink) with apt-get"
  echo "postfix postfix/main_mailer_type select No configuration" | debconf-set-selections
  if ! DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends postfix >"$tmp/apt.log" 2>&1; then
    apt-get update -qq >>"$tmp/apt.log" 2>&1 || true
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends postfix >>"$tmp/apt.log" 2>&1 \
      || { tail -n 20 "$tmp/apt.log" >&2; die "could not install postfix"; }
  fi
  command -v smtp-sink >/dev/null 2>&1 || die "postfix installed but no smtp-sink in PATH"
}

# The -W odds for a send of $emails over 2 x $smtp_connections connections lasting
# $send_seconds (see Pacing); 0 = not paced.
sink_odds="${CHAOS_SINK_ODDS:-$(awk -v n="$emails" -v c="$((2 * smtp_connections))" -v t="$send_seconds" 'BEGIN {
  d = c * t / n; o = int(100 * d / (1 + d)); print (o < 5) ? 0 : (o > 90) ? 90 : o }')}"
if [ "$sink_odds" -gt 0 ]; then pacing=(-W "data:1:$sink_odds"); pacing_shown="smtp-sink -W data:1:$sink_odds"; else
  pacing=(); pacing_shown="smtp-sink not paced"; fi

# start_sink RUN: smtp-sink dumping each message into $dump; sets $sink_port.
start_sink() {
  dump="$tmp/dump-$1"
  mkdir -p "$dump"
  chmod 777 "$dump"
  sink_port="$(free_port)"
  local user=()
  [ "$(id -u)" = 0 ] && user=(-u "$(id -un postfix 2>/dev/null || echo nobody)")
  smtp-sink "${user[@]}" -m 1000 "${pacing[@]}" -d "$dump/m." "127.0.0.1:$sink_port" 2000 >"$tmp/sink-$1.log" 2>&1 &
  sink_pid=$!
  local deadline=$((SECONDS + 10))
  until python3 -c 'import socket, sys; socket.create_connection(("127.0.0.1", int(sys.argv[1])), 1).close()' "$sink_port" 2>/dev/null; do
    kill -0 "$sink_pid" 2>/dev/null || { cat "$tmp/sink-$1.log" >&2; die "smtp-sink exited"; }
    [ "$SECONDS" -lt "$deadline" ] || die "smtp-sink did not listen within 10 s"
    sleep 0.1
  done
}
received_count() { find "$dump" -type f -name 'm.*' 2>/dev/null | wc -l; }

# new_database RUN: a fresh database and its first admin; sets $database_url.
new_database() {
  local db="renrakumo_chaos_${1}_$(date +%s)_$$"
  PGCONNECT_TIMEOUT=5 psql "$pg_admin_url" -q -v ON_ERROR_STOP=1 -c "CREATE DATABASE \"$db\"" >/dev/null
  databases+=("$db")
  local base="${pg_admin_url%%\?*}" query=""
  [ "$base" != "$pg_admin_url" ] && query="?${pg_admin_url#*\?}"
  database_url="${base%/*}/$db$query"
  admin_email="chaos-admin@chaos.example.jp"
  admin_password="chaos admin passphrase $RANDOM$RANDOM"
  RENRAKUMO_DATABASE_URL="$database_url" "$bin" create-admin --org 'カオス市教育委員会' --email "$admin_email" \
    --password "$admin_password" </dev/null >/dev/null
}

# start_instance RUN LETTER: `serve` with delivery workers and the sink; sets $pid_LETTER
# and $url_LETTER.
start_instance() {
  local run="$1" letter="$2" port log
  port="$(free_port)"
  log="$tmp/server-$run-$letter.log"
  env -u RENRAKUMO_OUTBOX_DIR RENRAKUMO_DATABASE_URL="$database_url" RENRAKUMO_BIND="127.0.0.1:$port" \
    RENRAKUMO_PUBLIC_URL="http://127.0.0.1:$port" RENRAKUMO_WORKERS="$workers" \
    RENRAKUMO_SMTP_URL="smtp://127.0.0.1:$sink_port" RENRAKUMO_MAIL_FROM="renrakumo $letter <noreply-$letter@localhost>" \
    "$bin" serve </dev/null >"$log" 2>&1 &
  local pid=$! deadline=$((SECONDS + 30))
  printf -v "pid_$letter" '%s' "$pid"
  printf -v "url_$letter" '%s' "http://127.0.0.1:$port"
  until curl -fsS --noproxy '*' -o /dev/null --max-time 1 "http://127.0.0.1:$port/healthz" 2>/dev/null; do
    kill -0 "$pid" 2>/dev/null || { cat "$log" >&2; die "instance $letter exited at start-up"; }
    [ "$SECONDS" -lt "$deadline" ] || { cat "$log" >&2; die "instance $letter did not answer /healthz within 30 s"; }
    sleep 0.1
  done
}

login() { # login BASE_URL: sets $token
  curl -fsS --noproxy '*' --max-time 30 -o "$tmp/login.json" -H 'content-type: application/json' \
    --data-binary "{\"email\":\"$admin_email\",\"password\":\"$admin_password\"}" "$1/api/v1/auth/login" \
    || die "login failed"
  token="$(json "$tmp/login.json" 'd["access_token"]')"
}

# api BASE_URL METHOD PATH [JSON]: the answer in $tmp/answer.json, dies unless 2xx.
api() {
  local code
  code="$(curl -sS --noproxy '*' --max-time 600 -o "$tmp/answer.json" -w '%{http_code}' -X "$2" \
    -H "authorization: Bearer $token" -H 'content-type: application/json' \
    ${4:+--data-binary "$4"} "$1/api/v1$3")"
  case "$code" in
    2??) ;;
    *) echo "chaos.sh: $2 $3 answered $code:" >&2; head -c 2000 "$tmp/answer.json" >&2; echo >&2; exit 1 ;;
  esac
}

# email_stats BASE_URL: "sent failed bounced" of the message's e-mail jobs, or "" when
# stats does not answer (the database is away).
email_stats() {
  curl -sS --noproxy '*' --max-time 5 -o "$tmp/stats.json" -H "authorization: Bearer $token" \
    "$1/api/v1/messages/$message_id/stats" 2>/dev/null || { echo ""; return; }
  local stats
  stats="$(<"$tmp/stats.json")"
  if [[ "$stats" =~ \"email\":\{\"queued\":([0-9]+),\"sent\":([0-9]+),\"failed\":([0-9]+),\"bounced\":([0-9]+)\} ]]; then
    echo "${BASH_REMATCH[2]} ${BASH_REMATCH[3]} ${BASH_REMATCH[4]}"
  else
    echo ""
  fi
}

# count_received: what the sink received per guardian address, against the roster's
# addresses; prints "received lost duplicates by_a by_b both other".
count_received() {
  python3 - "$tmp/guardians.csv" "$dump" "$tmp/lost.txt" <<'EOF'
import collections, csv, os, re, sys
expected = set()
with open(sys.argv[1], encoding="utf-8", newline="") as f:
    for row in csv.DictReader(f):
        expected.add(row["email1"].lower())
        expected.add(row["email2"].lower())
got = collections.Counter()
senders = collections.defaultdict(set)
other = 0
for name in os.listdir(sys.argv[2]):
    sender, rcpts = None, []
    with open(os.path.join(sys.argv[2], name), encoding="utf-8", errors="replace") as f:
        for line in f:
            if not line.startswith("X-"):
                break
            m = re.match(r"X-(Mail|Rcpt)-Args: <([^>]*)>", line)
            if m and m.group(1) == "Mail":
                sender = m.group(2).lower()
            elif m:
                rcpts.append(m.group(2).lower())
    for rcpt in rcpts:
        if rcpt in expected:
            got[rcpt] += 1
            senders[rcpt].add(sender)
        else:
            other += 1
lost = sorted(expected - set(got))
with open(sys.argv[3], "w") as f:
    f.write("\n".join(lost))
duplicates = sum(n - 1 for n in got.values())
by = lambda letter: sum(1 for s in senders.values() if f"noreply-{letter}@localhost" in s)
both = sum(1 for s in senders.values() if len(s) > 1)
print(sum(got.values()), len(lost), duplicates, by("a"), by("b"), both, other)
EOF
}

results="$tmp/results.txt"
: >"$results"
ensure_postfix_tools
log "$emails e-mails per run ($guardians guardians x 2), 2 instances x RENRAKUMO_WORKERS=$workers, $pacing_shown"
python3 "$root/bench/gen_guardians.py" "$guardians" >"$tmp/guardians.csv"

# ---- one run -------------------------------------------------------------------------
run() {
  local fault="$1"
  log "$fault: fresh database, smtp-sink, instances A and B"
  new_database "$fault"
  start_sink "$fault"
  start_instance "$fault" a
  start_instance "$fault" b
  login "$url_a"
  log "$fault: importing $guardians guardians"
  api "$url_a" POST /lists '{"name":"カオス 全校"}'
  local list_id code
  list_id="$(json "$tmp/answer.json" 'd["id"]')"
  code="$(curl -sS --noproxy '*' --max-time 900 -o "$tmp/answer.json" -w '%{http_code}' \
    -H "authorization: Bearer $token" -H 'content-type: text/csv' \
    --data-binary @"$tmp/guardians.csv" "$url_a/api/v1/members/import?list_id=$list_id")"
  [ "$code" = 200 ] || { head -c 2000 "$tmp/answer.json" >&2; die "import answered $code"; }
  api "$url_a" POST /messages "{\"subject\":\"【重要】台風接近に伴う臨時休校のお知らせ\",\"body\":\"保護者各位\\n\\n明日は臨時休校とします。\\n\\nさくら小学校\",\"from_name\":\"さくら小学校\",\"channels\":[\"email\"],\"targets\":{\"list_ids\":[\"$list_id\"]}}"
  message_id="$(json "$tmp/answer.json" 'd["id"]')"

  local t_send t_fault t_up="" t_done="" quarter=$((emails / 4))
  t_send="$(now)"
  api "$url_b" POST "/messages/$message_id/send"
  [ "$(json "$tmp/answer.json" 'd.get("recipient_count")')" = "$guardians" ] || die "$fault: bad send answer: $(cat "$tmp/answer.json")"

  # A quarter at the sink.
  local deadline=$((SECONDS + run_timeout)) n
  while n="$(received_count)"; [ "$n" -lt "$quarter" ]; do
    [ "$SECONDS" -lt "$deadline" ] || die "$fault: only $n of $emails e-mails at the sink after ${run_timeout} s"
    sleep 0.05
  done
  local at_fault stats_at_fault
  at_fault="$(received_count)"
  stats_at_fault="$(email_stats "$url_b")"
  t_fault="$(now)"
  local readyz="-" readyz_ok=0
  case "$fault" in
    kill)
      kill -9 "$pid_a"
      wait "$pid_a" 2>/dev/null || true
      pid_a=""
      log "kill: kill -9 of instance A at $at_fault of $emails e-mails received, $(elapsed "$t_send" "$t_fault") s after the send (stats sent/failed/bounced: ${stats_at_fault:-none})"
      ;;
    restart)
      pg_stopped=1
      pg_ctl stop >"$tmp/pg-stop.log" 2>&1 || { cat "$tmp/pg-stop.log" >&2; die "pg_ctlcluster stop failed"; }
      log "restart: PostgreSQL stopped (in $(elapsed "$t_fault" "$(now)") s) at $at_fault of $emails e-mails received, $(elapsed "$t_send" "$t_fault") s after the send; down for ${outage_s} s"
      # /readyz of B while the database is down.
      local codes="" t_down t_end
      t_down="$(now)"
      t_end="$(awk -v t="$t_down" -v d="$outage_s" 'BEGIN { printf "%.3f", t + d }')"
      while awk -v t="$(now)" -v e="$t_end" 'BEGIN { exit !(t < e - 0.2) }'; do
        local code=""
        code="$(curl -sS --noproxy '*' -o /dev/null -w '%{http_code}' --max-time 1 "$url_b/readyz" 2>/dev/null)" || true
        codes+="${code:-000} "
        sleep 0.3
      done
      pg_ctl start >"$tmp/pg-start.log" 2>&1 || { cat "$tmp/pg-start.log" >&2; die "pg_ctlcluster start failed"; }
      wait_for_pg 60 || die "PostgreSQL did not accept connections within 60 s of its start"
      pg_stopped=""
      t_up="$(now)"
      readyz="$(tr ' ' '\n' <<<"$codes" | grep -c '^503$' || true)/$(wc -w <<<"$codes")"
      readyz_ok="$(tr ' ' '\n' <<<"$codes" | grep -c '^2' || true)"
      log "restart: PostgreSQL accepts connections again $(elapsed "$t_fault" "$t_up") s after the stop began; /readyz answered 503 to $readyz probes while it was down (answers: $(tr ' ' '\n' <<<"$codes" | grep . | sort | uniq -c | awk '{printf "%s x%s ", $2, $1}'); 000 = none within 1 s)"
      ;;
  esac

  # Every job ended, as the surviving instance's stats tell.
  local stats sent=0 failed=0 bounced=0 verdict=ok
  while :; do
    stats="$(email_stats "$url_b")"
    if [ -n "$stats" ]; then
      read -r sent failed bounced <<<"$stats"
      [ $((sent + failed + bounced)) -ge "$emails" ] && { t_done="$(now)"; break; }
    fi
    if [ "$SECONDS" -ge "$deadline" ]; then verdict="TIMEOUT"; t_done="$(now)"; break; fi
    kill -0 "$pid_b" 2>/dev/null || die "$fault: instance B exited: $(tail -n 20 "$tmp/server-$fault-b.log")"
    sleep 0.2
  done
  # The sender's summary e-mail comes last; up to 10 s for it, then the sink is read.
  local end=$((SECONDS + 10))
  until grep -qs "^X-Rcpt-Args: <$admin_email>" "$dump"/m.* 2>/dev/null || [ "$SECONDS" -ge "$end" ]; do sleep 0.2; done
  sleep 0.5
  local statuses
  statuses="$(psql "$database_url" -Atq -c "SELECT status || ':' || COUNT(*) FROM delivery_jobs GROUP BY status ORDER BY status" | tr '\n' ' ')"
  local received lost duplicates by_a by_b both other
  read -r received lost duplicates by_a by_b both other <<<"$(count_received)"
  local recovery since_up="-" target bound
  recovery="$(elapsed "$t_fault" "$t_done")"
  case "$fault" in
    kill) target="$kill_target_s s after the kill"; bound=$((2 * batch * workers)) ;;
    restart) since_up="$(elapsed "$t_up" "$t_done")"; target="$restart_target_s s after PostgreSQL is back"; bound=0 ;;
  esac
  log "$fault: done $recovery s after the fault; stats sent $sent, failed $failed, bounced $bounced; jobs by status (2 = sent) $statuses; e-mails from A $by_a, from B $by_b addresses, both $both; other mail $other"
  [ "$lost" = 0 ] || { verdict="$verdict, LOST $lost (first: $(head -n 3 "$tmp/lost.txt" | tr '\n' ' '))"; }
  [ "$failed" = 0 ] && [ "$bounced" = 0 ] || verdict="$verdict, FAILED $failed, bounced $bounced"
  [ "$sent" = "$emails" ] || verdict="$verdict, stats sent $sent of $emails"
  [ "$duplicates" -le "$bound" ] || verdict="$verdict, DUPLICATES above $bound"
  case "$fault" in
    kill) awk -v r="$recovery" -v t="$kill_target_s" 'BEGIN { exit !(r <= t) }' || verdict="$verdict, RECOVERY above $kill_target_s s" ;;
    restart)
      awk -v r="$since_up" -v t="$restart_target_s" 'BEGIN { exit !(r <= t) }' || verdict="$verdict, RECOVERY above $restart_target_s s"
      # A probe may also go unanswered within its 1 s: with no connection left in the pool,
      # sqlx retries a refused connection until the pool's acquire timeout (10 s) before
      # the 503. Only a 200 while the database is down is wrong.
      [ "$readyz_ok" = 0 ] || verdict="$verdict, /readyz answered 200 $readyz_ok times while PostgreSQL was down"
      ;;
  esac
  verdict="${verdict#ok, }"
  if [ "$verdict" != ok ]; then
    for letter in a b; do
      echo "--- instance $letter, last lines" >&2
      tail -n 15 "$tmp/server-$fault-$letter.log" >&2 || true
    done
  fi
  echo "$fault|$emails|$received|$lost|$duplicates|$bound|$recovery|$since_up|$target|$failed|$readyz|$(elapsed "$t_send" "$t_fault")|$at_fault|$verdict" >>"$results"

  stop_pid "$pid_a"
  pid_a=""
  stop_pid "$pid_b"
  pid_b=""
  stop_pid "$sink_pid"
  sink_pid=""
  rm -rf "$dump"
}

for fault in $faults; do run "$fault"; done

# ---- the table -----------------------------------------------------------------------
echo
echo "chaos, $(nproc) CPUs, $(date +%F), $(basename "$bin") $("$bin" --version 2>/dev/null | awk '{print $2}'), $guardians guardians x 2 addresses, 2 instances x RENRAKUMO_WORKERS=$workers (batch $batch), $pacing_shown"
printf '%-8s %8s %9s %5s %16s %10s %10s %7s %8s %12s  %s\n' fault expected received lost "duplicates/bound" "recovery s" "after pg s" failed "/readyz" "fault at" verdict
status=0
while IFS='|' read -r fault expected received lost duplicates bound recovery since_up target failed readyz fault_s at_fault verdict; do
  printf '%-8s %8s %9s %5s %16s %10s %10s %7s %8s %12s  %s\n' "$fault" "$expected" "$received" "$lost" "$duplicates/$bound" \
    "$recovery" "$since_up" "$failed" "$readyz" "${at_fault}@${fault_s}s" "$verdict (target: $target)"
  [ "$verdict" = ok ] || status=1
done <"$results"
echo "duplicates: extra copies beyond one per address; the bound is what the fault can explain (kill: 2 batches of $batch per worker task of the killed instance; restart: none)"
echo "/readyz: probes of instance B answered 503 / probes while PostgreSQL was down (the others: no answer within 1 s)"
exit "$status"
