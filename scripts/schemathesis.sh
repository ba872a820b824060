#!/usr/bin/env bash
# Contract fuzzing: runs schemathesis (pinned in scripts/schemathesis-requirements.txt,
# installed into a venv under target/) with every check against a real renrakumo server on
# a fresh database (scripts/lib/fresh-server.sh), using the spec the server itself serves at
# /api-docs/openapi.json. Any finding (a 5xx, an answer outside the schema, a body the
# schema calls invalid but the server takes, …) fails the run. Prints schemathesis's summary.
#
# Environment:
#   RENRAKUMO_BIN                use this binary instead of `cargo build` + target/debug/renrakumo
#   SCHEMATHESIS_DATABASE_URL    as POSTMAN_DATABASE_URL in scripts/postman.sh: unset = a fresh
#                                SQLite file, `postgres` = a fresh PostgreSQL database
#   SCHEMATHESIS_MAX_EXAMPLES    test cases per operation and phase (default 15)
#   SCHEMATHESIS_SEED            a seed, to replay a run (the summary prints the one used)
#   Extra arguments go to `schemathesis run` (e.g. --include-path-regex '^/api/v1/lists').
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=lib/fresh-server.sh
source scripts/lib/fresh-server.sh

requirements="$PWD/scripts/schemathesis-requirements.txt"
config="$PWD/scripts/schemathesis.toml"

# ---- schemathesis, in its own venv (kept as a cache; reinstalled when the pins change) ----
venv="${CARGO_TARGET_DIR:-$PWD/target}/schemathesis-venv"
if ! cmp -s "$requirements" "$venv/requirements.txt"; then
  fresh_server_log "installing schemathesis into $venv"
  command -v python3 >/dev/null 2>&1 || { echo "schemathesis.sh: needs python3 (3.11)" >&2; exit 1; }
  rm -rf "$venv"
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check --no-input -r "$requirements" </dev/null
  cp "$requirements" "$venv/requirements.txt"
fi
py="$venv/bin/python"
command -v curl >/dev/null 2>&1 || { echo "schemathesis.sh: needs curl" >&2; exit 1; }

# Request lines would drown the warnings and errors that matter here.
export RUST_LOG="${RUST_LOG:-warn,sqlx=warn}"
fresh_server_start schemathesis 'Schemathesis School' "${SCHEMATHESIS_DATABASE_URL:-}"

# ---- credentials ---------------------------------------------------------------------
# shellcheck source=lib/api.sh
source scripts/lib/api.sh

sign_in() { api POST /api/v1/auth/login "$(json email "$admin_email" password "$admin_password")" | field access_token; }
staff_token="$(sign_in)"
# A guardian with an address on a list, and two app sessions from invitations.
list_id="$(api POST /api/v1/lists '{"name":"1年1組"}' "$staff_token" | field id)"
member_id="$(api POST /api/v1/members \
  "{\"name\":\"山田 花子\",\"emails\":[\"hanako@example.jp\"],\"list_ids\":[\"$list_id\"]}" "$staff_token" | field id)"
# A guardian has one app session at a time: the session that signs out is another guardian's.
logout_member_id="$(api POST /api/v1/members '{"name":"山田 太郎"}' "$staff_token" | field id)"
guardian_session() {
  local code
  code="$(api POST "/api/v1/members/$1/invitations" '' "$staff_token" | field code)"
  api POST /api/v1/app/session "$(json code "$code")" | field access_token
}
export RENRAKUMO_ST_STAFF_TOKEN="$staff_token"
RENRAKUMO_ST_STAFF_LOGOUT_TOKEN="$(sign_in)"
export RENRAKUMO_ST_STAFF_LOGOUT_TOKEN
RENRAKUMO_ST_GUARDIAN_TOKEN="$(guardian_session "$member_id")"
export RENRAKUMO_ST_GUARDIAN_TOKEN
RENRAKUMO_ST_GUARDIAN_LOGOUT_TOKEN="$(guardian_session "$logout_member_id")"
export RENRAKUMO_ST_GUARDIAN_LOGOUT_TOKEN

# ---- fixtures ------------------------------------------------------------------------
# A sent message with a survey and an attachment, and the guardian's personal link to it:
# ids no generated value would hit, so that the operations on a sent message reach their
# handlers (scripts/schemathesis.toml hands them these).
message_id="$(api POST /api/v1/messages "{\"subject\":\"運動会\",\"body\":\"明日は運動会です。\",
  \"survey\":{\"questions\":[{\"text\":\"参加しますか\",\"kind\":\"single\",\"options\":[\"はい\",\"いいえ\"]},
  {\"text\":\"連絡事項\",\"kind\":\"text\"}]},
  \"targets\":{\"list_ids\":[\"$list_id\"]},\"channels\":[\"email\"]}" "$staff_token" | field id)"
attachment_id="$(curl -fsS "$base_url/api/v1/messages/$message_id/attachments" -H "Authorization: Bearer $staff_token" \
  -F "file=@$root/postman/fixtures/letter.pdf;type=application/pdf" | field id)"
api POST "/api/v1/messages/$message_id/send" '{}' "$staff_token" >/dev/null
receipt_link="$(outbox_link hanako@example.jp '/r/[A-Za-z0-9_.-]+')"
receipt_token="${receipt_link#/r/}"
export RENRAKUMO_ST_MESSAGE_ID="$message_id" RENRAKUMO_ST_ATTACHMENT_ID="$attachment_id" \
  RENRAKUMO_ST_RECEIPT_TOKEN="$receipt_token"

# ---- schemathesis --------------------------------------------------------------------
seed=()
[ -n "${SCHEMATHESIS_SEED:-}" ] && seed=(--seed "$SCHEMATHESIS_SEED")
fresh_server_log "schemathesis run $base_url/api-docs/openapi.json"
set +e
"$venv/bin/schemathesis" --config-file "$config" --no-color run "$base_url/api-docs/openapi.json" \
  --checks all \
  --phases examples,coverage,fuzzing,stateful \
  --max-examples "${SCHEMATHESIS_MAX_EXAMPLES:-15}" \
  --workers 2 \
  --request-timeout 10 \
  "${seed[@]}" "$@" </dev/null
st_status=$?
set -e

if [ "$st_status" -ne 0 ]; then
  echo "== schemathesis failed (exit $st_status); the server's warnings and errors (last 100 lines):" >&2
  tail -n 100 "$server_log" >&2 || true
fi
exit "$st_status"
