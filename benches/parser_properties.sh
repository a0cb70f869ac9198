#!/usr/bin/env bash
# The long run of the webhook parser property tests: CASES generated deliveries (default
# 1,000,000) through parse_body and the event judge, in a release build. Every input must end
# accepted (its URLs passing the worker's re-check), quarantined with a bounded reason, or
# refused; a panic or a broken property fails the run with the shrunk input.
#   benches/parser_properties.sh [CASES]
set -euo pipefail
cd "$(dirname "$0")/.."
cases=${1:-1000000}
cargo test --release --quiet --lib --no-run
start=$(date +%s.%N)
PROPTEST_CASES=$cases cargo test --release --quiet --lib ingest::properties:: -- --test-threads 2
end=$(date +%s.%N)
awk -v c="$cases" -v s="$start" -v e="$end" \
  'BEGIN { printf "parser properties: %d deliveries and %d subjects in %.1f s (%.0f inputs/s)\n", c, c, e - s, 2 * c / (e - s) }'
