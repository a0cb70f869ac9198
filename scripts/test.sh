#!/usr/bin/env bash
# The whole test suite on a fresh machine: installs (when missing) and starts what the tests
# talk to (PostgreSQL, an S3-compatible server, Azurite), then runs formatting, lints and tests.
# The tests find the services through the CALLVAULT_TEST_* variables exported below; a plain
# `cargo test` skips the suites whose variable is unset, but here a missing one is a failure.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
tools="$root/.tools"
mkdir -p "$tools"
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
}
trap cleanup EXIT

log() { printf '== %s\n' "$*"; }

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

wait_for() { # name, command...
  local name=$1; shift
  for _ in $(seq 1 120); do
    if "$@" >/dev/null 2>&1; then return 0; fi
    sleep 0.5
  done
  echo "test.sh: $name did not come up; see $tools/$name.log" >&2
  tail -n 20 "$tools/$name.log" >&2 || true
  exit 1
}

start_postgres() {
  if ! pg_isready -h 127.0.0.1 -p 5432 >/dev/null 2>&1; then
    log "starting PostgreSQL"
    if ! command -v pg_ctlcluster >/dev/null 2>&1; then
      apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
    fi
    pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | sort -V | tail -n 1)" main start
    wait_for postgres pg_isready -h 127.0.0.1 -p 5432
  fi
  export CALLVAULT_TEST_POSTGRES="postgres://postgres@127.0.0.1:5432"
}

start_s3() {
  if ! command -v moto_server >/dev/null 2>&1; then
    log "installing moto (S3-compatible server)"
    python3 -m pip install --quiet 'moto[server]'
  fi
  local port; port=$(free_port)
  moto_server -H 127.0.0.1 -p "$port" >"$tools/moto.log" 2>&1 &
  pids+=($!)
  wait_for moto curl -sf "http://127.0.0.1:$port/moto-api/"
  export CALLVAULT_TEST_S3_ENDPOINT="http://127.0.0.1:$port"
  export CALLVAULT_TEST_S3_PORT="$port"
  # moto accepts any credentials; callvault reads them from the standard variables.
  export AWS_ACCESS_KEY_ID=callvault-test AWS_SECRET_ACCESS_KEY=callvault-test
}

start_azurite() {
  if [ ! -x "$tools/node_modules/.bin/azurite-blob" ]; then
    log "installing Azurite (Azure Blob emulator)"
    npm install --silent --no-audit --no-fund --prefix "$tools" azurite >/dev/null
  fi
  local port; port=$(free_port)
  rm -rf "$tools/azurite-data"
  "$tools/node_modules/.bin/azurite-blob" --blobHost 127.0.0.1 --blobPort "$port" --location "$tools/azurite-data" \
    --skipApiVersionCheck --loose --silent >"$tools/azurite.log" 2>&1 &
  pids+=($!)
  wait_for azurite bash -c "curl -s -o /dev/null http://127.0.0.1:$port/devstoreaccount1?comp=list"
  export CALLVAULT_TEST_AZURE_ENDPOINT="http://127.0.0.1:$port/devstoreaccount1"
  export CALLVAULT_TEST_AZURE_PORT="$port"
}

# The queue service of the same Azurite package, for the storage-queue event sink.
start_azurite_queue() {
  local port; port=$(free_port)
  rm -rf "$tools/azurite-queue-data"
  "$tools/node_modules/.bin/azurite-queue" --queueHost 127.0.0.1 --queuePort "$port" --location "$tools/azurite-queue-data" \
    --skipApiVersionCheck --loose --silent >"$tools/azurite-queue.log" 2>&1 &
  pids+=($!)
  wait_for azurite-queue bash -c "curl -s -o /dev/null http://127.0.0.1:$port/devstoreaccount1?comp=list"
  export CALLVAULT_TEST_AZURE_QUEUE_ENDPOINT="http://127.0.0.1:$port/devstoreaccount1"
  export CALLVAULT_TEST_AZURE_QUEUE_PORT="$port"
}

start_postgres
start_s3
start_azurite
start_azurite_queue
export CALLVAULT_TEST_REQUIRE_SERVICES=1

log "deployment files"
bash deploy/check.sh

log "cargo fmt --all --check"
cargo fmt --all --check
log "cargo clippy --workspace --all-targets -- -D warnings"
cargo clippy --quiet --workspace --all-targets -- -D warnings
log "cargo test --workspace"
cargo test --workspace
log "browser test of the operator page"
# The binary `cargo test --workspace` just built for the integration tests: building it again
# with `cargo build` would resolve other dependency features and recompile for minutes.
CALLVAULT_BIN="${CARGO_TARGET_DIR:-$root/target}/debug/callvault" scripts/browser-test.sh
