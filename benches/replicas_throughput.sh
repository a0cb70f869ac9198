#!/usr/bin/env bash
# Worker processes sharing one PostgreSQL: the same backlog drained by 1, then by 3
# `callvault serve --role worker` processes (plus one `--role ingest` that takes the events),
# each run on a fresh database and local archive, in one run of this script. The emulator
# throttles every download (CALLVAULT_BENCH_BYTES_PER_SECOND per transfer), so a transfer is
# latency-bound and throughput is set by how many transfers run at once.
# Knobs: CALLVAULT_BENCH_JOBS (default 120 one-chunk recordings), CALLVAULT_BENCH_BYTES (per
# chunk, default 256 KiB), CALLVAULT_BENCH_BYTES_PER_SECOND (default 256 KiB/s: ~1 s a
# transfer), CALLVAULT_BENCH_CONCURRENCY (worker.concurrency, default 4), CALLVAULT_TEST_POSTGRES
# (default postgres://postgres@127.0.0.1:5432).
# Target: 3 processes ≥ 2.5 × the throughput of 1.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
target=${CARGO_TARGET_DIR:-$root/target}
jobs=${CALLVAULT_BENCH_JOBS:-120}
bytes=${CALLVAULT_BENCH_BYTES:-262144}
rate=${CALLVAULT_BENCH_BYTES_PER_SECOND:-262144}
concurrency=${CALLVAULT_BENCH_CONCURRENCY:-4}
server=${CALLVAULT_TEST_POSTGRES:-postgres://postgres@127.0.0.1:5432}
work=$(mktemp -d)
pids=()
databases=()
emulator=""
stop_all() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  pids=()
}
cleanup() {
  stop_all
  [ -n "$emulator" ] && kill "$emulator" 2>/dev/null || true
  for db in "${databases[@]}"; do psql -q "$server/postgres" -c "DROP DATABASE IF EXISTS $db" >/dev/null 2>&1 || true; done
  rm -rf "$work"
}
trap cleanup EXIT

source benches/lib.sh

cargo build --quiet --release --bin callvault
callvault="$target/release/callvault"

acs_port=$(free_port)
"$callvault" emulator --bind "127.0.0.1:$acs_port" >"$work/emulator.out" 2>"$work/emulator.log" &
emulator=$!
wait_http "http://127.0.0.1:$acs_port/emulator/requests"
connection_string=$(head -n 1 "$work/emulator.out")

# The backlog: one-chunk recordings of distinct calls, so no chunk waits for an earlier one.
for n in $(seq 0 $((jobs - 1))); do
  curl -sf -X POST "http://127.0.0.1:$acs_port/emulator/documents" -H 'content-type: application/json' \
    -d "{\"documentId\":\"bench-$n\",\"callId\":\"call-bench-$n\",\"chunkIndex\":0,\"bytes\":$bytes,\"seed\":$n}" >>"$work/documents.jsonl"
  echo >>"$work/documents.jsonl"
  curl -sf -X POST "http://127.0.0.1:$acs_port/emulator/documents/bench-$n/fault" -H 'content-type: application/json' \
    -d "{\"kind\":\"throttle\",\"bytesPerSecond\":$rate}" >/dev/null
done
python3 - "$work/documents.jsonl" >"$work/events.json" <<'PY'
import json, sys, datetime
now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
events = []
for n, line in enumerate(l for l in open(sys.argv[1]) if l.strip()):
    doc = json.loads(line)
    events.append({
        "id": f"bench-event-{n}", "topic": "/bench", "subject": f"/recording/call/call-bench-{n}",
        "eventType": "Microsoft.Communication.RecordingFileStatusUpdated", "dataVersion": "1.0",
        "metadataVersion": "1", "eventTime": now,
        "data": {"recordingStorageInfo": {"recordingChunks": [{
            "documentId": doc["documentId"], "index": 0, "endReason": "SessionEnded",
            "contentLocation": doc["contentLocation"], "metadataLocation": doc["metadataLocation"],
            "deleteLocation": doc["deleteLocation"]}]},
            "recordingStartTime": now, "recordingDurationMs": 1000, "sessionEndReason": "CallEnded",
            "recordingContentType": "Audio", "recordingChannelType": "Mixed", "recordingFormatType": "Mp4"}})
print(json.dumps(events))
PY

# Starts one serve process; sets $port to where it listens.
start_serve() { # name role db archive
  port=$(free_port)
  CALLVAULT__SERVER__BIND="127.0.0.1:$port" CALLVAULT__DATABASE__URL="$server/$3" \
    CALLVAULT__DATABASE__MAX_CONNECTIONS=4 \
    CALLVAULT__ACS__CONNECTION_STRING="$connection_string" CALLVAULT__ACS__ALLOW_HTTP=true \
    CALLVAULT__INGEST__SECRET=bench CALLVAULT__LOG__FORMAT=json CALLVAULT__LOG__LEVEL=warn \
    CALLVAULT__STORAGE__KIND=local CALLVAULT__STORAGE__PATH="$4" \
    CALLVAULT__WORKER__CONCURRENCY="$concurrency" CALLVAULT__WORKER__POLL_INTERVAL_MS=100 \
    HOSTNAME="$1" "$callvault" serve --role "$2" >/dev/null 2>"$work/$1-$3.log" &
  pids+=($!)
  wait_http "http://127.0.0.1:$port/healthz"
}

# Drains the backlog with $1 worker processes; sets $seconds (from the delivery to the last job
# archived) and $twice (jobs attempted more than once).
drain() { # workers
  local db="callvault_bench_replicas_$1_$$"
  databases+=("$db")
  psql -q "$server/postgres" -c "CREATE DATABASE $db" >/dev/null
  CALLVAULT__DATABASE__URL="$server/$db" "$callvault" migrate >/dev/null 2>"$work/migrate-$1.log"
  local archive="$work/archive-$1"
  start_serve "ingest" ingest "$db" "$archive"
  local ingest_port=$port
  for w in $(seq 1 "$1"); do start_serve "worker$w" worker "$db" "$archive"; done
  local started; started=$(now)
  curl -sf -X POST "http://127.0.0.1:$ingest_port/api/events?code=bench" -H 'content-type: application/json' \
    --data-binary "@$work/events.json" >/dev/null
  local archived=0
  for _ in $(seq 1 6000); do
    archived=$(psql -qtA "$server/$db" -c "SELECT count(*) FROM jobs WHERE state = 'archived'")
    [ "$archived" -ge "$jobs" ] && break
    sleep 0.05
  done
  local finished; finished=$(now)
  twice=$(psql -qtA "$server/$db" -c "SELECT count(*) FROM (SELECT job_id FROM attempts GROUP BY job_id HAVING count(*) > 1) AS t")
  local stored; stored=$(find "$archive" -name '*.mp4' | wc -l)
  stop_all
  if [ "$archived" -lt "$jobs" ] || [ "$stored" -ne "$jobs" ]; then
    echo "replicas_throughput.sh: with $1 workers $archived of $jobs jobs archived, $stored objects stored" >&2
    exit 1
  fi
  seconds=$(python3 -c "print($finished - $started)")
}

drain 1
one_seconds=$seconds one_twice=$twice
drain 3
three_seconds=$seconds three_twice=$twice
python3 - "$jobs" "$one_seconds" "$three_seconds" "$one_twice" "$three_twice" "$bytes" "$rate" "$concurrency" <<'PY'
import sys
jobs, one, three = int(sys.argv[1]), float(sys.argv[2]), float(sys.argv[3])
print(f"{jobs} jobs of {int(sys.argv[6]) // 1024} KiB, each download throttled to {int(sys.argv[7]) // 1024} KiB/s, worker.concurrency = {sys.argv[8]}, PostgreSQL:")
print(f"  1 worker process:   {jobs / one:6.1f} jobs/s ({one:.1f} s; jobs attempted twice: {sys.argv[4]})")
print(f"  3 worker processes: {jobs / three:6.1f} jobs/s ({three:.1f} s; jobs attempted twice: {sys.argv[5]})")
print(f"  ratio 3 : 1 = {one / three:.2f} (target >= 2.5)")
PY
