#!/usr/bin/env bash
# Ingest of single-event deliveries over 64 connections (SQLite, synchronous = FULL) against
# raw SQLite single-row fsync'd commits on the same disk, in one run. Prints:
#   - raw commits/s: the sqlite3 CLI inserting one row per transaction, WAL and
#     synchronous = FULL like callvault (measured before and after the ingest run; the
#     mean is the baseline),
#   - ingest deliveries/s with every connection sending as fast as it is answered, and the
#     ratio to the raw figure (target >= 1.5),
#   - p99 latency at a fixed offered rate (default 2,000 deliveries/s; target < 50 ms),
#     counted from when each delivery was due.
# Needs the sqlite3 CLI: installed with apt-get when missing.
#
# Knobs: CALLVAULT_BENCH_DIR (folder on the disk to measure, default $TMPDIR or /tmp),
# CALLVAULT_BENCH_DELIVERIES (10000), CALLVAULT_BENCH_RAW_COMMITS (3000),
# CALLVAULT_BENCH_RATE (2000), CALLVAULT_BENCH_RATE_SECONDS (5),
# CALLVAULT_BENCH_PROFILE (cargo profile, default: cargo bench's own).
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v sqlite3 >/dev/null; then
  echo "sqlite3 CLI not found; installing it with apt-get for the raw-commit baseline" >&2
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq sqlite3 >/dev/null
fi

deliveries=${CALLVAULT_BENCH_DELIVERIES:-10000}
raw_commits=${CALLVAULT_BENCH_RAW_COMMITS:-3000}
rate=${CALLVAULT_BENCH_RATE:-2000}
rate_seconds=${CALLVAULT_BENCH_RATE_SECONDS:-5}
profile_args=()
[ -n "${CALLVAULT_BENCH_PROFILE:-}" ] && profile_args=(--profile "$CALLVAULT_BENCH_PROFILE")

dir=$(mktemp -d "${CALLVAULT_BENCH_DIR:-${TMPDIR:-/tmp}}/callvault-ingest.XXXXXX")
trap 'rm -rf "$dir"' EXIT

bench=$(cargo bench "${profile_args[@]}" --bench ingest --no-run --message-format=json 2>/dev/null \
  | python3 -c 'import json,sys
for line in sys.stdin:
    m = json.loads(line)
    if m.get("reason") == "compiler-artifact" and m["target"]["name"] == "ingest" and m.get("executable"):
        print(m["executable"])')

# One row per transaction, each fsync'd: the most a single SQLite writer can commit.
raw_commits_per_second() {
  local db="$dir/raw-$1.db" sql="$dir/raw.sql"
  {
    echo "PRAGMA journal_mode = WAL;"
    echo "PRAGMA synchronous = FULL;"
    echo "CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT NOT NULL);"
    for _ in $(seq 1 "$raw_commits"); do echo "INSERT INTO t (v) VALUES ('x');"; done
  } >"$sql"
  local started ended
  started=$(date +%s.%N)
  sqlite3 "$db" <"$sql" >/dev/null
  ended=$(date +%s.%N)
  rm -f "$db" "$db-wal" "$db-shm"
  python3 -c "print(f'{$raw_commits / ($ended - $started):.0f}')"
}

field() { python3 -c "import re,sys; print(re.search(r'$1', sys.stdin.read()).group(1))"; }

raw_before=$(raw_commits_per_second before)
throughput=$(TMPDIR="$dir" "$bench" "$deliveries" 1 64)
raw_after=$(raw_commits_per_second after)
paced=$(TMPDIR="$dir" "$bench" $((rate * rate_seconds)) 1 64 --rate "$rate")

raw=$(( (raw_before + raw_after) / 2 ))
ingest=$(echo "$throughput" | field '([0-9]+) deliveries/s')
p99=$(echo "$paced" | field 'p99 ([0-9.]+) ms')
ratio=$(python3 -c "print(f'{$ingest / $raw:.2f}')")

echo "disk: $(df -P "$dir" | awk 'NR == 2 { print $1 " mounted on " $6 }')"
echo "raw sqlite3, one fsync'd row per commit: $raw_before commits/s before, $raw_after after, mean $raw"
echo "$throughput"
echo "$paced"
echo "ingest / raw SQLite commits: $ingest / $raw = ${ratio}x (target >= 1.5)"
echo "p99 at $rate deliveries/s offered: $p99 ms (target < 50)"
