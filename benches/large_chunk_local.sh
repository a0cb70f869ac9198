#!/usr/bin/env bash
# One large recording chunk (CALLVAULT_BENCH_BYTES, default 2 GiB) archived by `callvault serve`
# into local storage, against the same bytes written to the same folder in the same run by
# `curl -o` (from the same emulator, signed like callvault's GET) and by `dd conv=fdatasync`.
# The folder is CALLVAULT_BENCH_DIR (default: a new folder under /tmp); it needs 2 × the bytes
# free. Peak RSS of the serve process from /usr/bin/time -v.
# Targets: callvault ≥ 0.95 × the slower of curl and dd; peak RSS ≤ 32 MiB.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
target=${CARGO_TARGET_DIR:-$root/target}
bytes=${CALLVAULT_BENCH_BYTES:-2147483648}
base=${CALLVAULT_BENCH_DIR:-/tmp}
mkdir -p "$base"
work=$(mktemp -d "$base/callvault-large-chunk.XXXXXX")
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}
wait_http() { # url
  for _ in $(seq 1 120); do curl -s -o /dev/null "$1" && return 0; sleep 0.5; done
  echo "large_chunk_local.sh: $1 did not answer" >&2; exit 1
}
now() { date +%s.%N; }
mib_per_s() { # bytes seconds
  python3 -c "print(f'{$1 / 1048576 / $2:.1f}')"
}

if [ ! -x /usr/bin/time ]; then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq time >/dev/null
fi
cargo build --quiet --release --bin callvault
callvault="$target/release/callvault"

acs_port=$(free_port); app_port=$(free_port)
"$callvault" emulator --bind "127.0.0.1:$acs_port" >"$work/emulator.out" 2>"$work/emulator.log" &
pids+=($!)
wait_http "http://127.0.0.1:$acs_port/emulator/requests"
connection_string=$(head -n 1 "$work/emulator.out")
document=$(curl -sf -X POST "http://127.0.0.1:$acs_port/emulator/documents" -H 'content-type: application/json' \
  -d "{\"documentId\":\"large-0\",\"callId\":\"call-large\",\"chunkIndex\":0,\"bytes\":$bytes,\"seed\":1}")

# dd: the disk's own fsync'd sequential write.
sync
started=$(now)
dd if=/dev/zero of="$work/dd.out" bs=1M count=$((bytes / 1048576)) conv=fdatasync status=none
dd_seconds=$(python3 -c "print($(now) - $started)")
rm -f "$work/dd.out"

# curl -o: the same media from the same emulator, with the signature ACS asks for.
mapfile -t signed < <(python3 - "$connection_string" "$document" <<'PY'
import base64, email.utils, hashlib, hmac, json, sys, urllib.parse
conn = dict(part.split("=", 1) for part in sys.argv[1].split(";") if part)
url = urllib.parse.urlsplit(json.loads(sys.argv[2])["contentLocation"])
endpoint = urllib.parse.urlsplit(conn["endpoint"])
date = email.utils.formatdate(usegmt=True)
content = base64.b64encode(hashlib.sha256(b"").digest()).decode()
path = url.path + ("?" + url.query if url.query else "")
to_sign = f"GET\n{path}\n{date};{endpoint.netloc};{content}"
signature = base64.b64encode(hmac.new(base64.b64decode(conn["accesskey"]), to_sign.encode(), hashlib.sha256).digest()).decode()
print(urllib.parse.urlunsplit(url))
print(f"x-ms-date: {date}")
print(f"x-ms-content-sha256: {content}")
print(f"Authorization: HMAC-SHA256 SignedHeaders=x-ms-date;host;x-ms-content-sha256&Signature={signature}")
PY
)
sync
started=$(now)
curl -sf -o "$work/curl.out" -H "${signed[1]}" -H "${signed[2]}" -H "${signed[3]}" "${signed[0]}"
curl_seconds=$(python3 -c "print($(now) - $started)")
curl_bytes=$(stat -c %s "$work/curl.out")
rm -f "$work/curl.out"
if [ "$curl_bytes" != "$bytes" ]; then
  echo "large_chunk_local.sh: curl wrote $curl_bytes bytes, not $bytes" >&2; exit 1
fi
sync

# callvault: the event, the signed download, sha256 and the fsync'd local write.
export CALLVAULT__SERVER__BIND="127.0.0.1:$app_port" \
  CALLVAULT__DATABASE__URL="sqlite://$work/callvault.db" \
  CALLVAULT__ACS__CONNECTION_STRING="$connection_string" CALLVAULT__ACS__ALLOW_HTTP=true \
  CALLVAULT__INGEST__SECRET=bench CALLVAULT__LOG__FORMAT=json CALLVAULT__LOG__LEVEL=warn \
  CALLVAULT__STORAGE__KIND=local CALLVAULT__STORAGE__PATH="$work/archive" \
  CALLVAULT__WORKER__POLL_INTERVAL_MS=100
/usr/bin/time -v "$callvault" serve 2>"$work/serve.err" &
serve=$!
pids+=($serve)
wait_http "http://127.0.0.1:$app_port/healthz"
event=$(python3 - "$document" <<'PY'
import json, sys, datetime
doc = json.loads(sys.argv[1])
now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
print(json.dumps([{
    "id": "large-event", "topic": "/bench", "subject": "/recording/call/call-large/serverCallId/srv-large",
    "eventType": "Microsoft.Communication.RecordingFileStatusUpdated", "dataVersion": "1.0",
    "metadataVersion": "1", "eventTime": now,
    "data": {"recordingStorageInfo": {"recordingChunks": [{
        "documentId": doc["documentId"], "index": 0, "endReason": "SessionEnded",
        "contentLocation": doc["contentLocation"], "metadataLocation": doc["metadataLocation"],
        "deleteLocation": doc["deleteLocation"]}]},
        "recordingStartTime": now, "recordingDurationMs": 1000, "sessionEndReason": "CallEnded",
        "recordingContentType": "Audio", "recordingChannelType": "Mixed", "recordingFormatType": "Mp4"}}]))
PY
)
started=$(now)
curl -sf -X POST "http://127.0.0.1:$app_port/api/events?code=bench" -H 'content-type: application/json' -d "$event" >/dev/null
state=""
for _ in $(seq 1 6000); do
  state=$(sqlite3 "$work/callvault.db" "SELECT state FROM jobs LIMIT 1" 2>/dev/null || true)
  { [ "$state" = archived ] || [ "$state" = failed ]; } && break
  sleep 0.1
done
end_to_end_seconds=$(python3 -c "print($(now) - $started)")
# The attempt's own span: claim to archived (download, hash, write, fsync, metadata document).
attempt_seconds=$(sqlite3 "$work/callvault.db" \
  "SELECT (finished_at - started_at) / 1000.0 FROM attempts WHERE outcome = 'archived' LIMIT 1" 2>/dev/null || true)
archived_bytes=$(sqlite3 "$work/callvault.db" "SELECT media_bytes FROM jobs LIMIT 1" 2>/dev/null || true)
# SIGTERM to callvault itself (the child of time), so that time reports when it exits.
kill -TERM "$(pgrep -P "$serve")"
wait "$serve" || true
if [ "$state" != archived ] || [ "$archived_bytes" != "$bytes" ]; then
  echo "large_chunk_local.sh: the job ended as '$state' with ${archived_bytes:-no} bytes; see $work" >&2
  tail -n 20 "$work/serve.err" >&2
  trap - EXIT; exit 1
fi
peak_kib=$(awk -F: '/Maximum resident set size/ {gsub(/ /, "", $2); print $2}' "$work/serve.err")

dd_rate=$(mib_per_s "$bytes" "$dd_seconds")
curl_rate=$(mib_per_s "$bytes" "$curl_seconds")
callvault_rate=$(mib_per_s "$bytes" "$attempt_seconds")
end_to_end_rate=$(mib_per_s "$bytes" "$end_to_end_seconds")
ratio=$(python3 -c "print(f'{$callvault_rate / min($dd_rate, $curl_rate):.2f}')")
mib=$((bytes / 1048576))
echo "one $mib MiB chunk to local storage ($work):"
echo "  dd conv=fdatasync  $dd_rate MiB/s"
echo "  curl -o            $curl_rate MiB/s"
echo "  callvault          $callvault_rate MiB/s (attempt ${attempt_seconds} s; event to archived $end_to_end_rate MiB/s)"
echo "  ratio to the slower of dd and curl: $ratio (target >= 0.95)"
echo "  callvault serve peak RSS: $((peak_kib / 1024)) MiB ($peak_kib KiB) (target <= 32 MiB)"
