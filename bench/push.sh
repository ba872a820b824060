#!/usr/bin/env bash
# Push benchmark: notifications per second through the APNs and FCM clients
# (src/delivery/apns.rs, fcm.rs) to the local test servers of tests/api/push_servers.rs,
# which verify every request like Apple and Google do (JWT / access token, headers,
# payload). examples/push_bench.rs runs the servers in their own process (`push_bench
# serve`) and the clients in another (`push_bench send`). In the same run, h2load (Debian:
# nghttp2-client, installed when missing) sends the same requests to the same servers with the same number of
# streams in flight: the server's ceiling, printed next to each client's figure. Only
# 127.0.0.1 is contacted; the server process and its temporary folder are removed
# whatever happens.
#
#   bench/push.sh
#   BENCH_APNS=200000 BENCH_IN_FLIGHT=512 bench/push.sh
#
# Environment:
#   BENCH_APNS        APNs notifications (default 100000)
#   BENCH_FCM         FCM notifications (default 100000)
#   BENCH_IN_FLIGHT   concurrent sends (default 256: on one HTTP/2 connection more in flight
#                     adds latency, not throughput; 64–256 keeps it low)
#   BENCH_CONNECTIONS HTTP/2 connections per client (default: the client's default)
#   PUSH_BENCH_BIN    use this binary instead of `cargo build --release --example push_bench`
set -euo pipefail
cd "$(dirname "$0")/.."
bench_name=push.sh
. bench/lib.sh

apns_n=${BENCH_APNS:-100000}
fcm_n=${BENCH_FCM:-100000}
in_flight=${BENCH_IN_FLIGHT:-256}
connections=${BENCH_CONNECTIONS:-}

if [[ -n "${PUSH_BENCH_BIN:-}" ]]; then
    bin=$PUSH_BENCH_BIN
else
    cargo build --release --locked --example push_bench >&2
    bin=${CARGO_TARGET_DIR:-target}/release/examples/push_bench
fi

dir=$(mktemp -d)
server=""
cleanup() {
    if [[ -n "$server" ]]; then
        kill "$server" 2>/dev/null || true
        wait "$server" 2>/dev/null || true
    fi
    rm -rf "$dir"
}
trap cleanup EXIT

"$bin" serve "$dir" >"$dir/server.log" 2>&1 &
server=$!
for _ in $(seq 1 300); do
    [[ -e "$dir/ready" ]] && break
    kill -0 "$server" 2>/dev/null || { cat "$dir/server.log" >&2; exit 1; }
    sleep 0.1
done
[[ -e "$dir/ready" ]] || { echo "the push servers did not start" >&2; exit 1; }
# shellcheck disable=SC1091
source "$dir/env"

echo "push benchmark on $(nproc) cores, $in_flight in flight"
args=(--apns "$apns_n" --fcm "$fcm_n" --in-flight "$in_flight")
[[ -n "$connections" ]] && args+=(--connections "$connections")
"$bin" send "$dir" "${args[@]}"
sleep 0.5
read -r apns_accepted fcm_accepted <"$dir/accepted"
echo "servers accepted: apns $apns_accepted, fcm $fcm_accepted (warm-up included)"

# The server's ceiling: h2load with the same streams in flight on one connection.
ceiling() { # name n url header...
    local name=$1 n=$2 url=$3 body=$4
    shift 4
    local headers=()
    for h in "$@"; do headers+=(-H "$h"); done
    local out
    out=$(h2load -n "$n" -c 1 -m "$in_flight" "${headers[@]}" -d "$body" "$url" 2>&1) || true
    local rate ok
    rate=$(grep -oE 'finished in [0-9.]+m?s, [0-9.]+ req/s' <<<"$out" | grep -oE '[0-9.]+ req/s' | cut -d' ' -f1)
    ok=$(grep -oE '[0-9]+ 2xx' <<<"$out" | cut -d' ' -f1)
    if [[ -z "$rate" || "$ok" != "$n" ]]; then
        echo "$name h2load: failed or not all 2xx:" >&2
        echo "$out" | tail -8 >&2
        return
    fi
    printf '%s h2load (server ceiling): %d requests = %.0f/s (1 connection, %d streams)\n' "$name" "$n" "$rate" "$in_flight"
}

if ensure_tool h2load nghttp2-client; then
    expiration=$(($(date +%s) + 86400))
    ceiling apns "$apns_n" "$APNS_URL/3/device/$APNS_DEVICE" "$dir/apns.json" \
        "authorization: bearer $(cat "$dir/apns.jwt")" "apns-topic: $APNS_TOPIC" "apns-push-type: alert" \
        "apns-priority: 10" "apns-expiration: $expiration" "content-type: application/json"
    ceiling fcm "$fcm_n" "$FCM_URL/v1/projects/$FCM_PROJECT/messages:send" "$dir/fcm.json" \
        "authorization: Bearer $(cat "$dir/fcm.token")" "content-type: application/json; charset=UTF-8"
else
    echo "h2load could not be installed (Debian: nghttp2-client): server ceiling not measured"
fi
