#!/usr/bin/env bash
# Runs the Postman collection (postman/) with newman against a real renrakumo server on a
# fresh database (scripts/lib/fresh-server.sh: builds the binary, creates the first admin
# with `create-admin`, serves on a free port, and always stops the server and removes what
# it created). Exits with newman's exit code.
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
# shellcheck source=lib/fresh-server.sh
source scripts/lib/fresh-server.sh

collection="$PWD/postman/renrakumo.postman_collection.json"
environment="$PWD/postman/local.postman_environment.json"

# ---- newman --------------------------------------------------------------------------
if [ -n "${NEWMAN:-}" ]; then
  newman=("$NEWMAN")
elif command -v newman >/dev/null 2>&1; then
  newman=(newman)
else
  prefix="${CARGO_TARGET_DIR:-$PWD/target}/newman"
  if [ ! -x "$prefix/node_modules/.bin/newman" ]; then
    command -v npm >/dev/null 2>&1 || { echo "postman.sh: newman is not on PATH and npm is missing" >&2; exit 1; }
    fresh_server_log "installing newman 6 into $prefix"
    mkdir -p "$prefix"
    npm install --prefix "$prefix" newman@6 --no-audit --no-fund --loglevel=error </dev/null
  fi
  newman=("$prefix/node_modules/.bin/newman")
fi

fresh_server_start postman 'Postman School' "${POSTMAN_DATABASE_URL:-}"

# ---- newman --------------------------------------------------------------------------
fresh_server_log "newman run $(basename "$collection")"
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
  tail -n 200 "$server_log" >&2 || true
fi
exit "$newman_status"
