#!/usr/bin/env bash
# Checks Swagger UI as a person uses it, in headless Chromium: Authorize with e-mail and
# password, then "Try it out" on GET /api/v1/me. Installs chromium and playwright-core when
# missing (scripts/lib/browser.sh); starts the server on a fresh SQLite database with its
# first admin (scripts/lib/fresh-server.sh) and always stops it.
#
# Environment:
#   RENRAKUMO_BIN        use this binary instead of `cargo build` + target/debug/renrakumo
#   SWAGGER_SCREENSHOT   keep the screenshot at this path (default: in the temporary folder)
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=lib/browser.sh
source scripts/lib/browser.sh
# shellcheck source=lib/fresh-server.sh
source scripts/lib/fresh-server.sh

browser_install
# Nothing is sent here: no delivery tasks.
export RENRAKUMO_WORKERS=0
fresh_server_start swagger 'さくら小学校' ""
fresh_server_on_exit() {
  [ "$1" -eq 0 ] && return 0
  echo "== swagger-ui failed (exit $1); the server's log (last 100 lines):" >&2
  tail -n 100 "$server_log" >&2 || true
}
NODE_PATH="$browser_node_path" node scripts/browser/swagger-ui.js "$base_url" "$admin_email" "$admin_password" \
  "${SWAGGER_SCREENSHOT:-$tmp/swagger-ui.png}" </dev/null
