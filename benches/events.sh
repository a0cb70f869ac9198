#!/usr/bin/env bash
# The events figures, one line each: outbox delivery to a local webhook receiver on SQLite and
# on PostgreSQL, and archiving throughput with one webhook sink against none, in the same run
# with rounds interleaved (target: a drop under 5 %), medians of CALLVAULT_BENCH_ROUNDS
# (default 3). PostgreSQL is CALLVAULT_TEST_POSTGRES (default postgres://postgres@127.0.0.1:5432).
# CALLVAULT_BENCH_PROFILE=dev builds without the release profile's thin LTO (quicker to build;
# the on/off ratio is what the target is about). Detail goes to stderr, figures to stdout.
set -euo pipefail
cd "$(dirname "$0")/.."
export CALLVAULT_TEST_POSTGRES="${CALLVAULT_TEST_POSTGRES:-postgres://postgres@127.0.0.1:5432}"

source benches/lib.sh
bench=$(bench_executable events)

figure() {
  "$bench" "$@" | while IFS= read -r line; do
    case "$line" in
      " "*) echo "$line" >&2 ;;
      *) echo "$line" ;;
    esac
  done
}

figure outbox sqlite 5000
figure outbox postgres 5000
figure archive sqlite 300
figure archive postgres 300
