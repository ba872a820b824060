# Sourced by the scripts that set a server up through its API after fresh_server_start
# (scripts/lib/fresh-server.sh, which sets base_url and RENRAKUMO_OUTBOX_DIR). Needs curl
# and python3.

# api METHOD PATH [JSON] [TOKEN]: the answer's body; fails on an error answer.
api() {
  local args=(-fsS -X "$1" "$base_url$2" -H 'Content-Type: application/json')
  [ -n "${3:-}" ] && args+=(--data "$3")
  [ -n "${4:-}" ] && args+=(-H "Authorization: Bearer $4")
  curl "${args[@]}"
}
# field NAME: that field of the JSON object on stdin.
field() { python3 -c 'import json, sys; print(json.load(sys.stdin)[sys.argv[1]])' "$1"; }
# json KEY VALUE …: a JSON object of strings.
json() { python3 -c 'import json, sys; print(json.dumps(dict(zip(sys.argv[1::2], sys.argv[2::2]))))' "$@"; }

# outbox_link TO PATTERN: the first text matching PATTERN in the plain text of an e-mail
# the server wrote to TO; waits up to 10 s for the delivery tasks.
outbox_link() {
  local link=""
  for _ in $(seq 1 100); do
    link="$(python3 - "$RENRAKUMO_OUTBOX_DIR" "$1" "$2" <<'PY'
import email, email.policy, pathlib, re, sys
outbox, to, pattern = sys.argv[1:]
for eml in sorted(pathlib.Path(outbox).glob("**/*.eml")):
    mail = email.message_from_bytes(eml.read_bytes(), policy=email.policy.default)
    if to not in str(mail["To"]):
        continue
    if link := re.search(pattern, mail.get_body(("plain",)).get_content()):
        print(link.group(0))
        break
PY
)"
    [ -n "$link" ] && break
    sleep 0.1
  done
  [ -n "$link" ] || { echo "no e-mail to $1 with a link like $2 in the outbox" >&2; exit 1; }
  printf '%s' "$link"
}
