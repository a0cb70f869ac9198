#!/usr/bin/env bash
# Export throughput: `callvault export` of every recording of a seeded local archive (made by
# `callvault demo --calls N`: SQLite and a local folder), against `tar cf` of the same
# objects read from the same folder to the same disk, in the same run. CALLVAULT_BENCH_CALLS
# (default 12) recorded calls, CALLVAULT_BENCH_ROUNDS (default 5) interleaved rounds, each
# figure their median; peak RSS of the export from /usr/bin/time -v. The export hashes every
# byte and checks it against its manifest, fsyncs after each entry and writes index.json and
# SHA256SUMS; `tar cf` only copies. CALLVAULT_BENCH_PROFILE=dev uses a debug build.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
target=${CARGO_TARGET_DIR:-$root/target}
calls=${CALLVAULT_BENCH_CALLS:-12}
rounds=${CALLVAULT_BENCH_ROUNDS:-5}
profile=${CALLVAULT_BENCH_PROFILE:-release}
work=$(mktemp -d "${CALLVAULT_BENCH_DIR:-/tmp}/callvault-export-bench.XXXXXX")
trap 'rm -rf "$work"' EXIT

if [ ! -x /usr/bin/time ]; then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq time >/dev/null
fi
cargo build --quiet --profile "$profile" --bin callvault
folder=$([ "$profile" = dev ] && echo debug || echo "$profile")
callvault="$target/$folder/callvault"

"$callvault" demo --calls "$calls" --dir "$work/seed" >"$work/demo.log" 2>&1 \
  || { cat "$work/demo.log" >&2; exit 1; }
export CALLVAULT__DATABASE__URL="sqlite://$work/seed/callvault.db"
export CALLVAULT__STORAGE__PATH="$work/seed/archive"
ids=()
for id in $(seq 1 "$calls"); do ids+=(--recording "$id"); done
objects=$(cd "$work/seed/archive" && find . -type f ! -name '*#*' | sort)
bytes=$(cd "$work/seed/archive" && echo "$objects" | xargs du -cb | tail -n 1 | cut -f 1)

seconds() { python3 -c "print($2 - $1)"; }
median() { python3 -c 'import statistics,sys; print(statistics.median(float(x) for x in sys.argv[1:]))' "$@"; }
mib_per_s() { python3 -c "print(f'{$1 / 1048576 / $2:.1f}')"; }

export_times=(); tar_times=(); rss=()
for round in $(seq 1 "$rounds"); do
  sync
  start=$(date +%s.%N)
  /usr/bin/time -v -o "$work/time.txt" "$callvault" export "${ids[@]}" --out "$work/export-$round.tar" \
    --requested-by bench >/dev/null 2>"$work/export.log" || { cat "$work/export.log" "$work/time.txt" >&2; exit 1; }
  end=$(date +%s.%N)
  export_times+=("$(seconds "$start" "$end")")
  rss+=("$(awk '/Maximum resident/ {print $NF}' "$work/time.txt")")
  mkdir -p "$work/export-check"
  (cd "$work/export-check" && tar -xf "$work/export-$round.tar" && sha256sum --quiet --strict -c SHA256SUMS) \
    || { echo "export $round does not check" >&2; exit 1; }
  rm -rf "$work/export-check" "$work/export-$round.tar"
  sync
  start=$(date +%s.%N)
  (cd "$work/seed/archive" && echo "$objects" | tar -cf "$work/baseline-$round.tar" -T - && sync -f "$work/baseline-$round.tar")
  end=$(date +%s.%N)
  tar_times+=("$(seconds "$start" "$end")")
  rm -f "$work/baseline-$round.tar"
done

export_s=$(median "${export_times[@]}"); tar_s=$(median "${tar_times[@]}")
echo "objects: $(echo "$objects" | wc -l) files, $bytes bytes, $calls recordings; $rounds rounds, $profile build"
echo "callvault export: median $export_s s = $(mib_per_s "$bytes" "$export_s") MiB/s (rounds: ${export_times[*]})"
echo "tar cf + sync:    median $tar_s s = $(mib_per_s "$bytes" "$tar_s") MiB/s (rounds: ${tar_times[*]})"
echo "ratio export/tar: $(python3 -c "print(f'{$tar_s / $export_s:.2f}')") x; export peak RSS median $(median "${rss[@]}") KiB"
