#!/usr/bin/env bash
# A poll's life with curl, against `make run`: register, sign in, create a poll that closes in
# 10 seconds, vote, and watch the worker close it and compute the results.
#   examples/polls-walkthrough.sh [BASE_URL]      (default http://127.0.0.1:5000)
set -euo pipefail
BASE=${1:-http://127.0.0.1:5000}
USER_NAME="walker$RANDOM"

. "$(dirname "$0")/lib.sh"
say() { printf '\n\033[1m$ %s\033[0m\n' "$*"; }

say "curl -X POST $BASE/api/auth/register  {username, password}"
curl -sS -X POST "$BASE/api/auth/register" -H 'Content-Type: application/json' \
  -d "{\"username\": \"$USER_NAME\", \"password\": \"correct horse battery\"}"

say "curl -X POST $BASE/api/auth/token"
TOKEN=$(curl -sS -X POST "$BASE/api/auth/token" -H 'Content-Type: application/json' \
  -d "{\"username\": \"$USER_NAME\", \"password\": \"correct horse battery\"}" | field token)
echo "token: ${TOKEN:0:24}..."
AUTH="Authorization: Bearer $TOKEN"

CLOSE=$(python3 -c 'import datetime as d; print((d.datetime.now(d.UTC) + d.timedelta(seconds=10)).isoformat())')
say "curl -X POST $BASE/api/polls  (closes at $CLOSE)"
POLL=$(curl -sS -X POST "$BASE/api/polls" -H 'Content-Type: application/json' -H "$AUTH" \
  -d "{\"title\": \"Tabs or spaces?\", \"options\": [\"Tabs\", \"Spaces\"], \"close_date\": \"$CLOSE\"}")
echo "$POLL"
POLL_ID=$(echo "$POLL" | field id)
OPTION_ID=$(echo "$POLL" | field options.1.id)

say "curl -X POST $BASE/api/polls/$POLL_ID/votes  {option_id: $OPTION_ID}"
curl -sS -X POST "$BASE/api/polls/$POLL_ID/votes" -H 'Content-Type: application/json' -H "$AUTH" \
  -d "{\"option_id\": $OPTION_ID}"

say "curl -X POST $BASE/api/polls/$POLL_ID/votes  (again: one vote per user)"
curl -sS -X POST "$BASE/api/polls/$POLL_ID/votes" -H 'Content-Type: application/json' -H "$AUTH" \
  -d "{\"option_id\": $OPTION_ID}"

say "curl $BASE/api/polls/$POLL_ID  (every 2 s until the worker has closed it)"
for _ in $(seq 1 20); do
  STATE=$(curl -sS "$BASE/api/polls/$POLL_ID")
  echo "$STATE" | python3 -c 'import json,sys; p=json.load(sys.stdin)
print("status=%(status)s seconds_remaining=%(seconds_remaining)s closed_at=%(closed_at)s" % p,
      "results=" + ("yes" if p["results"] else "not yet"))'
  if echo "$STATE" | python3 -c 'import json,sys; sys.exit(0 if json.load(sys.stdin)["results"] else 1)'; then
    break
  fi
  sleep 2
done

say "curl $BASE/api/polls/$POLL_ID  (results)"
echo "$STATE" | python3 -m json.tool

say "curl '$BASE/api/jobs?kind=poll.close&subject_id=$POLL_ID'  (the close job, with its lateness)"
curl -sS "$BASE/api/jobs?kind=poll.close&subject_id=$POLL_ID" -H "$AUTH" | python3 -c 'import json,sys
for j in json.load(sys.stdin)["items"]:
    print("job %(id)s %(kind)s %(state)s due %(due_at)s started %(started_at)s lateness %(lateness)s s" % j)'
