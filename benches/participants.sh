#!/usr/bin/env bash
# Participant lookups on an index of 1,000,000 rows, on SQLite and on PostgreSQL: a customer's
# recordings through callvault::participants::recordings_of (the phone number as typed,
# normalised, with its chunk keys) and an agent's first page, each a median against a raw
# primary-key query (`SELECT * FROM recordings WHERE id = $1`) timed in the same runs.
# PostgreSQL is CALLVAULT_TEST_POSTGRES (default postgres://postgres@127.0.0.1:5432);
# databases are made under CALLVAULT_BENCH_DIR (default the system temp folder) and removed.
# Figures go to stdout, detail (seeding time) to stderr. An argument (e.g. `100000`) sets
# the number of index rows.
set -euo pipefail
cd "$(dirname "$0")/.."
export CALLVAULT_TEST_POSTGRES="${CALLVAULT_TEST_POSTGRES:-postgres://postgres@127.0.0.1:5432}"

source benches/lib.sh
bench=$(bench_executable participants)

for backend in sqlite postgres; do
  "$bench" "$backend" "$@" | while IFS= read -r line; do
    case "$line" in
      " "*) echo "$line" >&2 ;;
      *) echo "$line" ;;
    esac
  done
done
