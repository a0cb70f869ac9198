#!/usr/bin/env bash
# fsyncs per archived chunk: two SQLite drains (`queue_scale fsync`: 64 KiB chunks, one per
# recording, local archive with fsync) of N and 2 × N chunks under `strace -f`, and the
# difference of their fsync + fdatasync counts divided by N, so start-up and shut-down cancel
# out. Split into the archive's data files (staging files), its folders, and the database.
# N is the first argument (default 200).
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:-200}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

source benches/lib.sh
bench=$(bench_executable queue_scale)

# Prints "data folders database" for one drain of $1 chunks.
count() { # chunks
  CALLVAULT_BENCH_DIR="$work" strace -f -y -qq -e trace=fsync,fdatasync -o "$work/trace" \
    "$bench" fsync sqlite "$1" >&2
  python3 - "$work/trace" <<'PY'
import re, sys
data = folders = database = 0
for line in open(sys.argv[1]):
    path = re.search(r"sync\(\d+<([^>]*)>", line)
    if not path:
        continue
    path = path.group(1)
    if "/archive" not in path:
        database += 1
    elif re.search(r"#\d+$", path):
        data += 1
    else:
        folders += 1
print(data, folders, database)
PY
}

read -r d1 f1 b1 < <(count "$n")
read -r d2 f2 b2 < <(count $((2 * n)))
python3 - "$n" "$d1" "$f1" "$b1" "$d2" "$f2" "$b2" <<'PY'
import sys
n, d1, f1, b1, d2, f2, b2 = map(int, sys.argv[1:])
per = lambda a, b: (b - a) / n
data, folders, database = per(d1, d2), per(f1, f2), per(b1, b2)
print(f"  raw: {n} chunks: {d1} data, {f1} folder, {b1} database; {2 * n} chunks: {d2}, {f2}, {b2}")
print(f"fsyncs per archived chunk: {data + folders + database:.2f}: archive data files {data:.2f}, "
      f"archive folders {folders:.2f}, database {database:.2f}")
PY
