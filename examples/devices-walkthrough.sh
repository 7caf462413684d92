#!/usr/bin/env bash
# Devices with curl, against `make run`: register a simulated thermostat polled every 5 s, read its
# observations, switch a plug on, and refresh a location (a Celery chord) to get its summary.
#   examples/devices-walkthrough.sh [BASE_URL]      (default http://127.0.0.1:5000)
set -euo pipefail
BASE=${1:-http://127.0.0.1:5000}
USER_NAME="iot$RANDOM"
JSON='Content-Type: application/json'

. "$(dirname "$0")/lib.sh"
say() { printf '\n$ %s\n' "$*"; }

curl -sS -X POST "$BASE/api/auth/register" -H "$JSON" \
  -d "{\"username\": \"$USER_NAME\", \"password\": \"correct horse battery\"}" >/dev/null
TOKEN=$(curl -sS -X POST "$BASE/api/auth/token" -H "$JSON" \
  -d "{\"username\": \"$USER_NAME\", \"password\": \"correct horse battery\"}" | field token)
AUTH="Authorization: Bearer $TOKEN"
echo "signed in as $USER_NAME"

say "curl -X POST $BASE/api/devices  (a simulated thermostat, polled every 5 s)"
DEVICE=$(curl -sS -X POST "$BASE/api/devices" -H "$JSON" -H "$AUTH" -d "{\"name\": \"Attic thermostat\",
  \"location\": \"attic-$USER_NAME\", \"vendor\": \"simulated\", \"vendor_id\": \"thermostat-$USER_NAME\", \"interval\": 5}")
echo "$DEVICE"
DEVICE_ID=$(echo "$DEVICE" | field id)

say "curl -X POST $BASE/api/devices  (a bad one: interval 0, unknown vendor)"
curl -sS -X POST "$BASE/api/devices" -H "$JSON" -H "$AUTH" \
  -d '{"name": "x", "location": "attic", "vendor": "acme", "vendor_id": "1", "interval": 0}'
echo

say "waiting 12 s for a few polls..."
sleep 12

say "curl $BASE/api/devices/$DEVICE_ID"
curl -sS "$BASE/api/devices/$DEVICE_ID" -H "$AUTH" | python3 -m json.tool

say "curl '$BASE/api/devices/$DEVICE_ID/observations?attribute=temperature&limit=5'"
curl -sS "$BASE/api/devices/$DEVICE_ID/observations?attribute=temperature&limit=5" -H "$AUTH" |
  python3 -c 'import json,sys
for r in json.load(sys.stdin)["items"]:
    print("%(valid_at)s  %(name)s = %(value)s %(units)s" % r)'

say "curl '$BASE/api/jobs?kind=device.poll&subject_id=$DEVICE_ID'  (the poll grid and its lateness)"
curl -sS "$BASE/api/jobs?kind=device.poll&subject_id=$DEVICE_ID" -H "$AUTH" | python3 -c 'import json,sys
for j in json.load(sys.stdin)["items"]:
    print("job %(id)s %(state)-9s due %(due_at)s lateness %(lateness)s s" % j)'

PLUG=$(curl -sS -X POST "$BASE/api/devices" -H "$JSON" -H "$AUTH" -d "{\"name\": \"Attic plug\",
  \"location\": \"attic-$USER_NAME\", \"vendor\": \"simulated\", \"vendor_id\": \"plug-$USER_NAME\", \"interval\": 60}")
PLUG_ID=$(echo "$PLUG" | field id)
say "curl -X POST $BASE/api/devices/$PLUG_ID/commands  {is_on: true}"
COMMAND=$(curl -sS -X POST "$BASE/api/devices/$PLUG_ID/commands" -H "$JSON" -H "$AUTH" -d '{"is_on": true}')
echo "$COMMAND"
sleep 3
say "curl $BASE/api/jobs/$(echo "$COMMAND" | field id)  (the command's outcome), then the plug"
curl -sS "$BASE/api/jobs/$(echo "$COMMAND" | field id)" -H "$AUTH" | python3 -c 'import json,sys; print("command job: %(state)s, error: %(last_error)s" % json.load(sys.stdin))'
curl -sS "$BASE/api/devices/$PLUG_ID" -H "$AUTH" | python3 -c 'import json,sys; d=json.load(sys.stdin); print("plug is_on:", d["is_on"], [(a["name"], a["value"], a["units"]) for a in d["attributes"]])'

say "curl -X POST $BASE/api/locations/attic-$USER_NAME/refresh  (a chord over the location)"
curl -sS -X POST "$BASE/api/locations/attic-$USER_NAME/refresh" -H "$AUTH"
echo
for _ in $(seq 1 15); do
  SUMMARY=$(curl -sS "$BASE/api/locations/attic-$USER_NAME/summary" -H "$AUTH")
  echo "$SUMMARY" | python3 -c 'import json,sys; s=json.load(sys.stdin); print("refresh %(state)s: %(polled)s/%(total)s polled" % s)'
  [ "$(echo "$SUMMARY" | field state)" = done ] && break
  sleep 1
done
echo "$SUMMARY" | python3 -m json.tool
