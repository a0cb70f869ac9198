#!/usr/bin/env bash
# The store's own checksums, two ratios (medians of CALLVAULT_BENCH_ROUNDS, default 3):
# `verify --fast` against full `verify` on 1,000 objects archived to S3 (moto: the one at
# CALLVAULT_TEST_S3_ENDPOINT, else one started here), and
# MD5 + sha256 against sha256 alone over 1 GiB. See benches/integrity.rs.
# CALLVAULT_BENCH_PROFILE=dev builds the bench without the release profile's long link.
set -euo pipefail
cd "$(dirname "$0")/.."
source benches/lib.sh

bench=$(bench_executable integrity)

endpoint=${CALLVAULT_TEST_S3_ENDPOINT:-}
if [ -z "$endpoint" ]; then
  command -v moto_server >/dev/null || python3 -m pip install --quiet 'moto[server]'
  port=$(free_port)
  moto_server -H 127.0.0.1 -p "$port" >/dev/null 2>&1 &
  moto=$!
  trap 'kill $moto 2>/dev/null || true' EXIT
  endpoint="http://127.0.0.1:$port"
  wait_http "$endpoint/moto-api/"
fi
bucket="callvault-bench-$(date +%s)-$$"
curl -sf -X PUT "$endpoint/$bucket" >/dev/null

CALLVAULT__STORAGE__KIND=s3 CALLVAULT__STORAGE__BUCKET="$bucket" \
  CALLVAULT__STORAGE__ENDPOINT="$endpoint" CALLVAULT__STORAGE__REGION=us-east-1 \
  AWS_ACCESS_KEY_ID=${AWS_ACCESS_KEY_ID:-bench} AWS_SECRET_ACCESS_KEY=${AWS_SECRET_ACCESS_KEY:-bench} \
  "$bench" --bench verify "${CALLVAULT_BENCH_RECORDINGS:-500}"
"$bench" --bench hashing "${CALLVAULT_BENCH_BYTES:-1073741824}"
