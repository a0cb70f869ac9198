#!/usr/bin/env bash
# Peak memory of archiving one large chunk to S3 (moto): builds the release bench binary,
# starts moto on a free port, streams CALLVAULT_BENCH_BYTES (default 1 GiB) through
# Archive::writer and reports the peak RSS from /usr/bin/time -v. Target: under 100 MiB with
# the default part size (16 MiB) and upload concurrency (2).
set -euo pipefail
cd "$(dirname "$0")/.."
tools="$(pwd)/.tools"
mkdir -p "$tools"

if [ ! -x /usr/bin/time ]; then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq time >/dev/null
fi
command -v moto_server >/dev/null || python3 -m pip install --quiet 'moto[server]'

bench=$(cargo bench --bench archive_memory --no-run --message-format=json 2>/dev/null \
  | python3 -c 'import json,sys
for line in sys.stdin:
    m = json.loads(line)
    if m.get("reason") == "compiler-artifact" and m["target"]["name"] == "archive_memory" and m.get("executable"):
        print(m["executable"])')

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()')
moto_server -H 127.0.0.1 -p "$port" >"$tools/bench-moto.log" 2>&1 &
moto=$!
trap 'kill $moto 2>/dev/null || true' EXIT
for _ in $(seq 1 60); do curl -sf "http://127.0.0.1:$port/moto-api/" >/dev/null && break; sleep 0.5; done
curl -sf -X PUT "http://127.0.0.1:$port/callvault-bench" >/dev/null

export CALLVAULT__STORAGE__KIND=s3 CALLVAULT__STORAGE__BUCKET=callvault-bench \
  CALLVAULT__STORAGE__ENDPOINT="http://127.0.0.1:$port" CALLVAULT__STORAGE__REGION=us-east-1 \
  AWS_ACCESS_KEY_ID=bench AWS_SECRET_ACCESS_KEY=bench
/usr/bin/time -v "$bench" --bench 2>"$tools/bench-time.txt"
peak_kib=$(awk -F: '/Maximum resident set size/ {gsub(/ /, "", $2); print $2}' "$tools/bench-time.txt")
echo "peak RSS: $((peak_kib / 1024)) MiB ($peak_kib KiB)"
