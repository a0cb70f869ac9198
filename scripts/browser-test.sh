#!/usr/bin/env bash
# Browser test of the operator page, self-contained: builds callvault, installs Chromium
# and playwright-core when missing, starts a stand-in ACS download server that answers
# 500, starts callvault (SQLite, local archive, one attempt per job) so the one job
# fails, repairs the stand-in, then runs browser-test.mjs, which replays the job from the
# page and waits for it to be archived. Exit code 0 when the page did all that.
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
log "building callvault"
cargo build --quiet --bin callvault
bin="$root/target/debug/callvault"

# The stand-in for ACS's download endpoints: 500 while $work/broken exists.
acs_port=$(free_port)
touch "$work/broken"
cat > "$work/acs.py" <<'PY'
import json, os, sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

broken, port = sys.argv[1], int(sys.argv[2])

class Handler(BaseHTTPRequestHandler):
    def do_GET(self):
        if os.path.exists(broken):
            body, status, kind = b"storage hiccup", 500, "text/plain"
        elif self.path.endswith("/acsmetadata"):
            doc = self.path.split("/")[3]
            body = json.dumps({"chunkDocumentId": doc, "participants": [{"participantId": "8:acs:browser-test"}]}).encode()
            status, kind = 200, "application/octet-stream"
        else:
            body, status, kind = b"ID3" + b"\0" * 4096, 200, "audio/mpeg"
        self.send_response(status)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

ThreadingHTTPServer(("127.0.0.1", port), Handler).serve_forever()
PY
python3 "$work/acs.py" "$work/broken" "$acs_port" >"$work/acs.log" 2>&1 &
pids+=($!)

port=$(free_port)
token=$(python3 -c 'import secrets; print(secrets.token_hex(16))')
cat > "$work/callvault.toml" <<TOML
[server]
bind = "127.0.0.1:$port"
[database]
url = "sqlite://$work/callvault.db"
[acs]
connection_string = "endpoint=http://127.0.0.1:$acs_port/;accesskey=aGVsbG8="
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
base="http://127.0.0.1:$port"
wait_until "callvault to be ready" curl -sf "$base/readyz"

start=$(date -u +%Y-%m-%dT%H:%M:%SZ)
doc="browser-doc-0"
curl -sf -X POST "$base/api/events?code=browser-test" -H 'Content-Type: application/json' -d @- >/dev/null <<JSON || fail "the webhook refused the event"
[{"id": "browser-test-event", "topic": "/subscriptions/x", "subject": "/recording/call/browser-call/recordingId/browser-recording",
  "eventType": "Microsoft.Communication.RecordingFileStatusUpdated", "eventTime": "$start", "dataVersion": "1.0",
  "data": {"recordingStorageInfo": {"recordingChunks": [{"documentId": "$doc", "index": 0, "endReason": "SessionEnded",
    "contentLocation": "http://127.0.0.1:$acs_port/v1/objects/$doc/content/audio",
    "metadataLocation": "http://127.0.0.1:$acs_port/v1/objects/$doc/content/acsmetadata"}]},
    "recordingStartTime": "$start", "recordingFormatType": "Mp3", "recordingContentType": "Audio", "recordingChannelType": "Mixed"}}]
JSON
one_failed_job() {
  curl -sf -H "Authorization: Bearer $token" "$base/admin/jobs?state=failed" \
    | python3 -c 'import json,sys; sys.exit(0 if len(json.load(sys.stdin)["jobs"]) == 1 else 1)'
}
wait_until "the job to fail" one_failed_job
log "the job failed; repairing the ACS stand-in and opening the page"
rm "$work/broken"

node scripts/browser-test.mjs "$base" "$token" || fail "the browser test failed"
