#!/usr/bin/env bash
# Checks the pages guardians see, as a guardian sees them: in headless Chromium on a
# phone-sized screen (scripts/browser/guardian-pages.js). Starts a real server on a fresh
# SQLite database (scripts/lib/fresh-server.sh), sets up through the API what a school does
# (a list, a guardian with an address, a message with a survey and an attachment, sent; the
# guardian invited to the app, adding a second address), takes the personal link and the
# confirmation link from the e-mails the server writes to its outbox, and hands them to the
# browser. Installs chromium and playwright-core when missing (scripts/lib/browser.sh).
#
# Environment:
#   RENRAKUMO_BIN                 use this binary instead of `cargo build` + target/debug/renrakumo
#   GUARDIAN_PAGES_SCREENSHOTS    keep the screenshots in this folder (default: a temporary
#                                 folder, removed at exit)
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=lib/browser.sh
source scripts/lib/browser.sh
# shellcheck source=lib/fresh-server.sh
source scripts/lib/fresh-server.sh

browser_install
command -v python3 >/dev/null 2>&1 || { echo "guardian-pages.sh: needs python3 (to read JSON and e-mails)" >&2; exit 1; }

# The delivery tasks write the message's e-mail: this server runs them.
export RENRAKUMO_WORKERS=1
fresh_server_start guardian-pages 'さくら小学校' ""
fresh_server_on_exit() {
  [ "$1" -eq 0 ] && return 0
  echo "== guardian-pages failed (exit $1); the server's log (last 100 lines):" >&2
  tail -n 100 "$server_log" >&2 || true
}
shots="${GUARDIAN_PAGES_SCREENSHOTS:-$tmp/screenshots}"
mkdir -p "$shots"

# ---- the API, with curl ----------------------------------------------------------------
# shellcheck source=lib/api.sh
source scripts/lib/api.sh

fresh_server_log "setting up through the API: a list, a guardian, a message with a survey and an attachment"
staff_token="$(api POST /api/v1/auth/login "$(json email "$admin_email" password "$admin_password")" | field access_token)"
list_id="$(api POST /api/v1/lists '{"name":"1年1組"}' "$staff_token" | field id)"
member_id="$(api POST /api/v1/members \
  "{\"name\":\"山田 花子\",\"emails\":[\"hanako@example.jp\"],\"list_ids\":[\"$list_id\"]}" "$staff_token" | field id)"
# A body as schools write them: several paragraphs, and a long link that must wrap on a phone.
message_id="$(api POST /api/v1/messages "$(python3 -c 'import json, sys; print(json.dumps({
  "subject": "運動会のお知らせと出欠確認",
  "from_name": "1年1組 担任 佐藤",
  "body": "保護者の皆様\n\n10月12日（土）に運動会を行います。雨天の場合は翌日に延期します。\n"
          "詳しくは添付のお便りと、学校のページをご覧ください。\n"
          "https://www.sakura-sho.example.jp/events/2026/undokai/oshirase-hogosha-muke-shosai.html\n\n"
          "下のアンケートに10月5日までにお答えください。フォームからも回答できます:\n"
          "https://docs.example.jp/forms/d/e/1FAIpQLSe8xK2mVq7RzT4nWbYc9HdLpUo3JfGs6AiNkE5tZyX0vMwQ/viewform?usp=sf_link",
  "answer_required": True,
  "survey": {"questions": [
    {"text": "当日は参観されますか", "kind": "single", "options": ["参観する", "参観しない"], "required": True},
    {"text": "お手伝いいただける係（いくつでも）", "kind": "multiple", "options": ["受付", "片付け", "撮影"]},
    {"text": "連絡事項", "kind": "text"}]},
  "targets": {"list_ids": [sys.argv[1]]},
  "channels": ["email"]}))' "$list_id")" "$staff_token" | field id)"
curl -fsS "$base_url/api/v1/messages/$message_id/attachments" -H "Authorization: Bearer $staff_token" \
  -F "file=@$root/postman/fixtures/letter.pdf;type=application/pdf" >/dev/null
api POST "/api/v1/messages/$message_id/send" '{}' "$staff_token" >/dev/null
personal_link="$(outbox_link hanako@example.jp '\S*/r/[A-Za-z0-9_.-]+')"

fresh_server_log "the guardian opens the app and adds an address"
code="$(api POST "/api/v1/members/$member_id/invitations" '' "$staff_token" | field code)"
app_token="$(api POST /api/v1/app/session "$(json code "$code")" | field access_token)"
api POST /api/v1/app/me/emails "$(json address hanako.mobile@example.jp)" "$app_token" >/dev/null
confirmation_link="$(outbox_link hanako.mobile@example.jp '\S*/confirm-email/[A-Za-z0-9_.-]+')"

# ---- the browser -----------------------------------------------------------------------
fresh_server_log "headless Chromium, phone-sized (screenshots: $shots)"
json base_url "$base_url" staff_token "$staff_token" app_token "$app_token" message_id "$message_id" \
  member_id "$member_id" personal_link "$personal_link" confirmation_link "$confirmation_link" \
  added_address hanako.mobile@example.jp screenshots "$shots" >"$tmp/fixture.json"
NODE_PATH="$browser_node_path" node scripts/browser/guardian-pages.js "$tmp/fixture.json" </dev/null
