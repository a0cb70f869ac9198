#!/usr/bin/env bash
# Browser test of the operator page, self-contained: builds callvault (or runs the binary
# that CALLVAULT_BIN names, as ./scripts/test.sh does with the one its tests built), installs Chromium
# and playwright-core when missing, starts the ACS emulator and callvault (SQLite, local
# archive, one attempt per job), has the emulator answer the chunk's first download with
# 500 and deliver its event, so the one job fails, then runs browser-test.mjs, which
# replays the job from the page and waits for it to be archived, then erases the recording
# from the page. Exit 0 when it did.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
work=$(mktemp -d)
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
log() { printf '== browser-test: %s\n' "$*"; }
fail() { printf 'browser-test.sh: %s\n' "$*" >&2; for f in "$work"/*.log; do echo "--- $f" >&2; tail -n 30 "$f" >&2; done; exit 1; }
free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}
# Polls a command until it succeeds (at most ~60 s).
wait_until() {
  local what=$1; shift
  for _ in $(seq 1 300); do
    if "$@" >/dev/null 2>&1; then return 0; fi
    sleep 0.2
  done
  fail "timed out waiting for $what"
}

if [ ! -x /usr/bin/chromium ]; then
  log "installing Chromium"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
fi
if [ ! -d scripts/browser/node_modules/playwright-core ]; then
  log "installing playwright-core"
  npm ci --silent --no-audit --no-fund --prefix scripts/browser >/dev/null
fi
if [ -n "${CALLVAULT_BIN:-}" ]; then
  bin=$CALLVAULT_BIN
  [ -x "$bin" ] || fail "CALLVAULT_BIN=$bin is not an executable"
else
  log "building callvault"
  cargo build --quiet --bin callvault
  bin="${CARGO_TARGET_DIR:-$root/target}/debug/callvault"
fi

# The ACS emulator serves the chunk (HMAC-checked downloads) and delivers the event the
# way Event Grid does. Its first output line is its connection string.
acs_port=$(free_port)
port=$(free_port)
base="http://127.0.0.1:$port"
emulator="http://127.0.0.1:$acs_port"
"$bin" emulator --bind "127.0.0.1:$acs_port" --subscribe "$base/api/events?code=browser-test" \
  >"$work/emulator.out" 2>"$work/emulator.log" &
pids+=($!)
wait_until "the emulator's connection string" grep -q '^endpoint=' "$work/emulator.out"
connection_string=$(head -n 1 "$work/emulator.out")

token=$(python3 -c 'import secrets; print(secrets.token_hex(16))')
cat > "$work/callvault.toml" <<TOML
[server]
bind = "127.0.0.1:$port"
[database]
url = "sqlite://$work/callvault.db"
[acs]
connection_string = "$connection_string"
allow_http = true
[ingest]
secret = "browser-test"
[worker]
max_attempts = 1
poll_interval_ms = 500
[storage]
path = "$work/archive"
[admin]
token = "$token"
[log]
format = "json"
level = "info"
TOML
log "starting callvault on 127.0.0.1:$port"
"$bin" serve --config "$work/callvault.toml" >"$work/callvault.log" 2>&1 &
pids+=($!)
wait_until "callvault to be ready" curl -sf "$base/readyz"

# One chunk at the emulator, whose first GET answers 500: with one attempt per job,
# the job fails; the fault is then used up, so a replay succeeds.
doc="browser-doc-0"
locations=$(curl -sf -X POST "$emulator/emulator/documents" -H 'Content-Type: application/json' \
  -d "{\"documentId\": \"$doc\", \"callId\": \"browser-call\", \"bytes\": 65536}") \
  || fail "the emulator refused the document"
content=$(printf '%s' "$locations" | python3 -c 'import json,sys; print(json.load(sys.stdin)["contentLocation"])')
metadata=$(printf '%s' "$locations" | python3 -c 'import json,sys; print(json.load(sys.stdin)["metadataLocation"])')
curl -sf -X POST "$emulator/emulator/documents/$doc/fault" -H 'Content-Type: application/json' \
  -d '{"kind": "status", "status": 500, "times": 1}' >/dev/null || fail "the emulator refused the fault"
start=$(date -u +%Y-%m-%dT%H:%M:%SZ)
curl -sf -X POST "$emulator/emulator/deliver" -H 'Content-Type: application/json' -d @- >"$work/deliver.json" <<JSON \
  || fail "the emulator could not deliver the event"
{"events": [{"id": "browser-test-event", "topic": "/subscriptions/x", "subject": "/recording/call/browser-call/recordingId/browser-recording",
  "eventType": "Microsoft.Communication.RecordingFileStatusUpdated", "eventTime": "$start", "dataVersion": "1.0",
  "data": {"recordingStorageInfo": {"recordingChunks": [{"documentId": "$doc", "index": 0, "endReason": "SessionEnded",
    "contentLocation": "$content", "metadataLocation": "$metadata"}]},
    "recordingStartTime": "$start", "recordingDurationMs": 600000, "recordingFormatType": "Mp4", "recordingContentType": "AudioVideo", "recordingChannelType": "Mixed"}}]}
JSON
one_failed_job() {
  curl -sf -H "Authorization: Bearer $token" "$base/admin/jobs?state=failed" \
    | python3 -c 'import json,sys; sys.exit(0 if len(json.load(sys.stdin)["jobs"]) == 1 else 1)'
}
wait_until "the job to fail" one_failed_job
log "the job failed; opening the page"

node scripts/browser-test.mjs "$base" "$token" || fail "the browser test failed"
