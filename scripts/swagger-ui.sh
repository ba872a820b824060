#!/usr/bin/env bash
# Checks Swagger UI as a person uses it, in headless Chromium: Authorize with e-mail and
# password, then "Try it out" on GET /api/v1/me. Installs Debian's chromium (and CJK fonts
# for readable screenshots) and playwright-core (npm, into target/) when missing; starts the
# server on a fresh SQLite database and always stops it.
set -euo pipefail
cd "$(dirname "$0")/.."
root="$PWD"

if ! command -v chromium >/dev/null 2>&1; then
  echo "== installing chromium"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium fonts-noto-cjk >/dev/null
fi
prefix="${CARGO_TARGET_DIR:-$root/target}/browser"
if [ ! -d "$prefix/node_modules/playwright-core" ]; then
  echo "== installing playwright-core into $prefix"
  mkdir -p "$prefix"
  npm install --prefix "$prefix" playwright-core@1 --no-audit --no-fund --loglevel=error </dev/null
fi
cargo build --locked --quiet --bin renrakumo
bin="${CARGO_TARGET_DIR:-$root/target}/debug/renrakumo"

tmp="$(mktemp -d "${TMPDIR:-/tmp}/renrakumo-swagger.XXXXXX")"
server_pid=""
cleanup() {
  [ -n "$server_pid" ] && kill "$server_pid" 2>/dev/null && wait "$server_pid" 2>/dev/null
  rm -rf "$tmp"
}
trap cleanup EXIT

port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
export RENRAKUMO_DATABASE_URL="sqlite://$tmp/renrakumo.db?mode=rwc" RENRAKUMO_BIND="127.0.0.1:$port" \
  RENRAKUMO_WORKERS=0 RENRAKUMO_OUTBOX_DIR="$tmp/outbox"
email="swagger-$(date +%s)@school.example.jp"
password="correct horse battery staple"
"$bin" create-admin --org "さくら小学校" --email "$email" --password "$password" >/dev/null
"$bin" serve >"$tmp/server.log" 2>&1 &
server_pid=$!
for _ in $(seq 1 60); do
  curl -fs "http://127.0.0.1:$port/healthz" >/dev/null 2>&1 && break
  sleep 0.5
done
NODE_PATH="$prefix/node_modules" node scripts/browser/swagger-ui.js "http://127.0.0.1:$port" "$email" "$password" \
  "${SWAGGER_SCREENSHOT:-$tmp/swagger-ui.png}"
