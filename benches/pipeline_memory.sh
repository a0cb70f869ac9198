#!/usr/bin/env bash
# Peak memory of `callvault serve` archiving one large recording chunk end to end: the ACS
# emulator (`callvault emulator`) serves CALLVAULT_BENCH_BYTES (default 1 GiB) of synthetic
# media, an Event Grid event announces it, callvault downloads it and streams it into S3 (moto).
# Reports the peak RSS of the serve process from /usr/bin/time -v. Target: under 100 MiB.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
bytes=${CALLVAULT_BENCH_BYTES:-1073741824}
work=$(mktemp -d)
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT

source benches/lib.sh

if [ ! -x /usr/bin/time ]; then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq time >/dev/null
fi
command -v moto_server >/dev/null || python3 -m pip install --quiet 'moto[server]'
cargo build --quiet --release --bin callvault
callvault="$root/target/release/callvault"

s3_port=$(free_port); acs_port=$(free_port); app_port=$(free_port)
moto_server -H 127.0.0.1 -p "$s3_port" >"$work/moto.log" 2>&1 &
pids+=($!)
wait_http "http://127.0.0.1:$s3_port/moto-api/"
curl -sf -X PUT "http://127.0.0.1:$s3_port/callvault-bench" >/dev/null

"$callvault" emulator --bind "127.0.0.1:$acs_port" \
  --subscribe "http://127.0.0.1:$app_port/api/events?code=bench" >"$work/emulator.out" 2>"$work/emulator.log" &
pids+=($!)
wait_http "http://127.0.0.1:$acs_port/emulator/requests"
connection_string=$(head -n 1 "$work/emulator.out")

export CALLVAULT__SERVER__BIND="127.0.0.1:$app_port" \
  CALLVAULT__DATABASE__URL="sqlite://$work/callvault.db" \
  CALLVAULT__ACS__CONNECTION_STRING="$connection_string" CALLVAULT__ACS__ALLOW_HTTP=true \
  CALLVAULT__INGEST__SECRET=bench CALLVAULT__LOG__FORMAT=json CALLVAULT__LOG__LEVEL=warn \
  CALLVAULT__STORAGE__KIND=s3 CALLVAULT__STORAGE__BUCKET=callvault-bench \
  CALLVAULT__STORAGE__ENDPOINT="http://127.0.0.1:$s3_port" CALLVAULT__STORAGE__REGION=us-east-1 \
  AWS_ACCESS_KEY_ID=bench AWS_SECRET_ACCESS_KEY=bench
/usr/bin/time -v "$callvault" serve 2>"$work/serve.err" &
serve=$!
pids+=($serve)
wait_http "http://127.0.0.1:$app_port/healthz"

document=$(curl -sf -X POST "http://127.0.0.1:$acs_port/emulator/documents" -H 'content-type: application/json' \
  -d "{\"documentId\":\"bench-0\",\"callId\":\"call-bench\",\"chunkIndex\":0,\"bytes\":$bytes,\"seed\":1}")
event=$(python3 - "$document" <<'PY'
import json, sys, datetime
doc = json.loads(sys.argv[1])
now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
print(json.dumps({"events": [{
    "id": "bench-event", "topic": "/bench", "subject": "/recording/call/call-bench/serverCallId/srv-bench",
    "eventType": "Microsoft.Communication.RecordingFileStatusUpdated", "dataVersion": "1.0",
    "metadataVersion": "1", "eventTime": now,
    "data": {"recordingStorageInfo": {"recordingChunks": [{
        "documentId": doc["documentId"], "index": 0, "endReason": "SessionEnded",
        "contentLocation": doc["contentLocation"], "metadataLocation": doc["metadataLocation"],
        "deleteLocation": doc["deleteLocation"]}]},
        "recordingStartTime": now, "recordingDurationMs": 1000, "sessionEndReason": "CallEnded",
        "recordingContentType": "Audio", "recordingChannelType": "Mixed", "recordingFormatType": "Mp4"}}],
    "retryDelaysMs": [1000, 1000]}))
PY
)
started=$(date +%s.%N)
curl -sf -X POST "http://127.0.0.1:$acs_port/emulator/deliver" -H 'content-type: application/json' -d "$event" >/dev/null

state=""
for _ in $(seq 1 1200); do
  state=$(sqlite3 "$work/callvault.db" "SELECT state FROM jobs LIMIT 1" 2>/dev/null || true)
  [ "$state" = archived ] || [ "$state" = failed ] && break
  sleep 0.5
done
finished=$(date +%s.%N)
# SIGTERM to callvault itself (the child of time), so that time reports when it exits.
kill -TERM "$(pgrep -P "$serve")"
wait "$serve" || true
if [ "$state" != archived ]; then
  echo "pipeline_memory.sh: the job ended as '$state'; see $work" >&2
  tail -n 20 "$work/serve.err" >&2
  trap - EXIT; exit 1
fi
peak_kib=$(awk -F: '/Maximum resident set size/ {gsub(/ /, "", $2); print $2}' "$work/serve.err")
seconds=$(python3 -c "print(f'{$finished - $started:.1f}')")
mib=$((bytes / 1048576))
echo "archived $mib MiB from the emulator to S3 (moto) in ${seconds} s; callvault serve peak RSS: $((peak_kib / 1024)) MiB ($peak_kib KiB)"
