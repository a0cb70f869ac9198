#!/usr/bin/env bash
# One large recording chunk (CALLVAULT_BENCH_BYTES, default 2 GiB) archived by `callvault serve`
# into local storage, against the same bytes written to the same folder in the same run by
# `curl -o` (from the same emulator, signed like callvault's GET) and by `dd conv=fdatasync`.
# The folder is CALLVAULT_BENCH_DIR (default: a new folder under /tmp); it needs 2 × the bytes
# free. CALLVAULT_BENCH_ROUNDS (default 3) rounds, each figure their median. Peak RSS of the
# serve process from /usr/bin/time -v.
# Targets: callvault ≥ 0.95 × the slower of curl and dd; peak RSS ≤ 32 MiB.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
target=${CARGO_TARGET_DIR:-$root/target}
bytes=${CALLVAULT_BENCH_BYTES:-2147483648}
rounds=${CALLVAULT_BENCH_ROUNDS:-3}
base=${CALLVAULT_BENCH_DIR:-/tmp}
mkdir -p "$base"
work=$(mktemp -d "$base/callvault-large-chunk.XXXXXX")
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT

source benches/lib.sh
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
add_document() { # round
  curl -sf -X POST "http://127.0.0.1:$acs_port/emulator/documents" -H 'content-type: application/json' \
    -d "{\"documentId\":\"large-$1\",\"callId\":\"call-large-$1\",\"chunkIndex\":0,\"bytes\":$bytes,\"seed\":$1}"
}

# dd: the disk's own fsync'd sequential write.
measure_dd() {
  sync
  local started; started=$(now)
  dd if=/dev/zero of="$work/dd.out" bs=1M count=$((bytes / 1048576)) conv=fdatasync status=none
  dd_runs+=("$(python3 -c "print($(now) - $started)")")
  rm -f "$work/dd.out"
}

# curl -o: the same media from the same emulator, with the signature ACS asks for.
measure_curl() { # document
  local signed
  mapfile -t signed < <(python3 - "$connection_string" "$1" <<'PY'
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
  local started; started=$(now)
  curl -sf -o "$work/curl.out" -H "${signed[1]}" -H "${signed[2]}" -H "${signed[3]}" "${signed[0]}"
  curl_runs+=("$(python3 -c "print($(now) - $started)")")
  local written; written=$(stat -c %s "$work/curl.out")
  rm -f "$work/curl.out"
  if [ "$written" != "$bytes" ]; then
    echo "large_chunk_local.sh: curl wrote $written bytes, not $bytes" >&2; exit 1
  fi
  sync
}

# callvault: the event, the signed download, sha256 and the fsync'd local write. The attempt's
# own span is measured: claim to archived (download, hash, write, fsync, metadata document).
measure_callvault() { # round document
  local event
  event=$(python3 - "$1" "$2" <<'PY'
import json, sys, datetime
n, doc = sys.argv[1], json.loads(sys.argv[2])
now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
print(json.dumps([{
    "id": f"large-event-{n}", "topic": "/bench", "subject": f"/recording/call/call-large-{n}",
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
  curl -sf -X POST "http://127.0.0.1:$app_port/api/events?code=bench" -H 'content-type: application/json' -d "$event" >/dev/null
  local query="SELECT j.state, j.media_bytes, (a.finished_at - a.started_at) / 1000.0 FROM jobs j
    JOIN attempts a ON a.job_id = j.id WHERE j.document_id = 'large-$1' ORDER BY a.attempt DESC LIMIT 1"
  local row=""
  for _ in $(seq 1 6000); do
    row=$(sqlite3 "$work/callvault.db" "$query" 2>/dev/null || true)
    case "$row" in archived\|*|failed\|*) break ;; esac
    sleep 0.1
  done
  IFS='|' read -r state archived_bytes seconds <<<"$row"
  if [ "$state" != archived ] || [ "$archived_bytes" != "$bytes" ]; then
    echo "large_chunk_local.sh: chunk $1 ended as '$state' with ${archived_bytes:-no} bytes; see $work" >&2
    tail -n 20 "$work/serve.err" >&2
    trap - EXIT; exit 1
  fi
  callvault_runs+=("$seconds")
  rm -rf "$work/archive/call-large-$1"
  sync
}

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

# Rounds interleave the three writers, so that load from elsewhere on the machine falls on all
# of them alike; each figure is the median of its rounds.
dd_runs=(); curl_runs=(); callvault_runs=()
for round in $(seq 1 "$rounds"); do
  document=$(add_document "$round")
  measure_dd
  measure_curl "$document"
  measure_callvault "$round" "$document"
done
# SIGTERM to callvault itself (the child of time), so that time reports when it exits.
kill -TERM "$(pgrep -P "$serve")"
wait "$serve" || true
peak_kib=$(awk -F: '/Maximum resident set size/ {gsub(/ /, "", $2); print $2}' "$work/serve.err")
cpu_seconds=$(awk -F: '/(User|System) time \(seconds\)/ {sum += $2} END {print sum}' "$work/serve.err")

round1() { printf '%.1f ' "$@"; }
median() { printf '%s\n' "$@" | sort -g | awk '{a[NR]=$1} END {print (NR % 2) ? a[(NR+1)/2] : (a[NR/2] + a[NR/2+1]) / 2}'; }
dd_seconds=$(median "${dd_runs[@]}")
curl_seconds=$(median "${curl_runs[@]}")
attempt_seconds=$(median "${callvault_runs[@]}")
dd_rate=$(mib_per_s "$bytes" "$dd_seconds")
curl_rate=$(mib_per_s "$bytes" "$curl_seconds")
callvault_rate=$(mib_per_s "$bytes" "$attempt_seconds")
ratio=$(python3 -c "print(f'{$callvault_rate / min($dd_rate, $curl_rate):.2f}')")
mib=$((bytes / 1048576))
echo "one $mib MiB chunk to local storage ($work), median of $rounds rounds:"
echo "  dd conv=fdatasync  $dd_rate MiB/s (runs: $(round1 "${dd_runs[@]}")s)"
echo "  curl -o            $curl_rate MiB/s (runs: $(round1 "${curl_runs[@]}")s)"
echo "  callvault          $callvault_rate MiB/s (attempts: $(round1 "${callvault_runs[@]}")s; serve CPU ${cpu_seconds} s for all $rounds)"
echo "  ratio to the slower of dd and curl: $ratio (target >= 0.95)"
echo "  callvault serve peak RSS: $((peak_kib / 1024)) MiB ($peak_kib KiB) (target <= 32 MiB)"
