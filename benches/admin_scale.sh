#!/usr/bin/env bash
# The operator's reads with 1,000,000 archived + 100,000 pending jobs, on SQLite and on
# PostgreSQL: /metrics gauges, /admin/stats, the first and a later /admin/recordings page
# (the query `callvault recordings list` runs) and the manifest sweep, each a median against
# the 100 ms target, then the queries they replaced on the same database.
# PostgreSQL is CALLVAULT_TEST_POSTGRES (default postgres://postgres@127.0.0.1:5432);
# databases are made under CALLVAULT_BENCH_DIR (default the system temp folder) and removed.
# Figures go to stdout, detail (seeding time) to stderr. ARGS (e.g. `100000 10000`) override
# the sizes.
set -euo pipefail
cd "$(dirname "$0")/.."
export CALLVAULT_TEST_POSTGRES="${CALLVAULT_TEST_POSTGRES:-postgres://postgres@127.0.0.1:5432}"

source benches/lib.sh
bench=$(bench_executable admin_scale)

for backend in sqlite postgres; do
  "$bench" "$backend" before "$@" | while IFS= read -r line; do
    case "$line" in
      " "*) echo "$line" >&2 ;;
      *) echo "$line" ;;
    esac
  done
done
