#!/usr/bin/env bash
# The queue-at-scale figures, one line each with its ratio and target:
#   backlog drain on SQLite and on PostgreSQL (64 KiB chunks, local archive with fsync,
#   worker.concurrency = 8, backlogs of 1,000 and 100,000, both in one run), and the median
#   claim with 1,000,000 archived + 100,000 pending jobs on each.
# PostgreSQL is CALLVAULT_TEST_POSTGRES (default postgres://postgres@127.0.0.1:5432).
# Every database and archive is made in a temporary folder (CALLVAULT_BENCH_DIR, default the
# system one; it must be on the disk being measured) and removed afterwards.
# Add figures by appending `figure NAME ARGS…` lines; detail goes to stderr, figures to stdout.
set -euo pipefail
cd "$(dirname "$0")/.."
export CALLVAULT_TEST_POSTGRES="${CALLVAULT_TEST_POSTGRES:-postgres://postgres@127.0.0.1:5432}"

source benches/lib.sh
bench=$(bench_executable queue_scale)

# Runs the bench with ARGS; its indented detail lines go to stderr, the figure to stdout.
figure() {
  "$bench" "$@" | while IFS= read -r line; do
    case "$line" in
      " "*) echo "$line" >&2 ;;
      *) echo "$line" ;;
    esac
  done
}

figure drain sqlite 1000 100000
figure drain postgres 1000 100000
figure claim sqlite 1000000 100000
figure claim postgres 1000000 100000
