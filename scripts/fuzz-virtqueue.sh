#!/usr/bin/env bash
# Builds the libFuzzer target of the virtqueue walker (test/fuzz/virtqueue_fuzz.cc) with
# clang, ASan and UBSan, and runs it for a bounded time: FUZZ_SECONDS (default 30).
# Crashes and hangs fail the script; their inputs are left in build-fuzz/.
set -euo pipefail
cd "$(dirname "$0")/.."
out=build-fuzz
seconds="${FUZZ_SECONDS:-30}"
clang="$(command -v clang++ || command -v clang++-14 || true)"
if [ -z "$clang" ]; then
  echo "fuzz-virtqueue: clang++ is missing (apt-get install clang libclang-rt-14-dev)" >&2
  exit 1
fi
mkdir -p "$out/corpus"
sources=(test/fuzz/virtqueue_fuzz.cc native/virtio/virtqueue.cc native/core/guest_memory.cc native/util/mapping.cc native/util/error.cc)
binary="$out/virtqueue_fuzz"
if [ ! -x "$binary" ] || [ -n "$(find "${sources[@]}" native/virtio/virtqueue.h -newer "$binary" -print -quit)" ]; then
  "$clang" -std=c++20 -O1 -g -Inative -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined \
    -Wall -Wextra -Werror "${sources[@]}" -o "$binary"
fi
# -timeout: one input taking a second means the walker loops.
status=0
"$binary" -max_total_time="$seconds" -timeout=1 -rss_limit_mb=1024 -artifact_prefix="$out/" -print_final_stats=1 \
  "$out/corpus" >"$out/last-run.log" 2>&1 || status=$?
grep -E '^(stat::number_of_executed_units|stat::peak_rss|==[0-9]+==|SUMMARY|Test unit written)' "$out/last-run.log" || true
if [ "$status" -ne 0 ]; then
  echo "fuzz-virtqueue: the fuzzer failed (status $status); see $out/last-run.log" >&2
  tail -40 "$out/last-run.log" >&2
fi
exit "$status"
