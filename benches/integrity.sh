#!/usr/bin/env bash
# The store's own checksums, two ratios (medians of CALLVAULT_BENCH_ROUNDS, default 3):
# `verify --fast` against full `verify` on 1,000 objects archived to S3 (moto: the one at
# CALLVAULT_TEST_S3_ENDPOINT, else one started here), and
# MD5 + sha256 against sha256 alone over 1 GiB, hashing only, then streamed through the writer
# into Azure (Azurite: the one at CALLVAULT_TEST_AZURE_ENDPOINT, else one started here) with
# storage.content_md5 on and off. See benches/integrity.rs.
# CALLVAULT_BENCH_PROFILE=dev builds the bench without the release profile's long link.
# CALLVAULT_BENCH_MEDIA_BYTES sizes the media objects of the verify ratio (default 16 KiB);
# CALLVAULT_BENCH_ONLY_VERIFY=1 stops after it.
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
[ -n "${CALLVAULT_BENCH_ONLY_VERIFY:-}" ] && exit 0
"$bench" --bench hashing "${CALLVAULT_BENCH_BYTES:-1073741824}"

azure=${CALLVAULT_TEST_AZURE_ENDPOINT:-}
if [ -z "$azure" ]; then
  azurite_bin=.tools/node_modules/.bin/azurite-blob
  [ -x "$azurite_bin" ] || npm install --silent --no-audit --no-fund --prefix .tools azurite >/dev/null
  azure_port=$(free_port)
  azure_data=$(mktemp -d)
  "$azurite_bin" --blobHost 127.0.0.1 --blobPort "$azure_port" --location "$azure_data" \
    --skipApiVersionCheck --loose --silent >/dev/null 2>&1 &
  azurite=$!
  trap 'kill ${moto:-} $azurite 2>/dev/null || true; rm -rf "$azure_data"' EXIT
  azure="http://127.0.0.1:$azure_port/devstoreaccount1"
  wait_http "$azure?comp=list"
fi
container="callvault-bench-$(date +%s)-$$"
CALLVAULT__STORAGE__KIND=azure CALLVAULT__STORAGE__CONTAINER="$container" \
  CALLVAULT__STORAGE__ENDPOINT="$azure" AZURE_STORAGE_ACCOUNT_NAME=devstoreaccount1 \
  "$bench" --bench azure-stream "${CALLVAULT_BENCH_BYTES:-1073741824}"
