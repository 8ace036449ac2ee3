#!/usr/bin/env bash
# Runs both libFuzzer harnesses for SECONDS each from their seed corpora; crashers land in
# rtstruct/fuzz/regressions/ (replayed by the test suite: RtStructFuzz.*).
set -euo pipefail
BUILD=${1:-build-fuzz}
SECONDS_EACH=${2:-60}
HERE=$(cd "$(dirname "$0")" && pwd)
mkdir -p "$HERE/regressions"
for h in ct_reader rtstruct_reader; do
  seeds="$HERE/corpus_${h%%_reader}"
  work="$BUILD/fuzz_corpus_$h"
  mkdir -p "$work"
  echo "== fuzz_$h for ${SECONDS_EACH}s (seeds: $seeds)"
  "$BUILD/bin/fuzz_$h" "$work" "$seeds" -max_total_time="$SECONDS_EACH" -rss_limit_mb=4096 -timeout=20 \
    -max_len=200000 -artifact_prefix="$HERE/regressions/${h}-" -print_final_stats=1 2>&1 | tail -20
done
