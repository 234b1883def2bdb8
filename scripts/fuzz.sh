#!/usr/bin/env bash
# Builds the libFuzzer targets in test/fuzz/ with clang (ASan + UBSan) into build-fuzz/
# and runs each for a bounded time (default 30 s; FUZZ_SECONDS overrides) on a copy of
# its committed seed corpus. A crash leaves its input in build-fuzz/ and fails the run:
# add it to the seed corpus once fixed, as a regression input.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds="${FUZZ_SECONDS:-30}"
out=build-fuzz
mkdir -p "$out"
cxx="${CXX_FUZZ:-clang++}"
flags=(-std=c++20 -O1 -g -Inative -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined
       -Wall -Wextra -Werror)
libs=(-lz -llzma -lzstd -llz4 -lbz2)

# initrd: the unpacker and everything it calls.
sources=(test/fuzz/initrd_fuzzer.cc native/boot/initrd.cc native/boot/decompress.cc native/util/*.cc)
"$cxx" "${flags[@]}" "${sources[@]}" "${libs[@]}" -o "$out/initrd_fuzzer"

rm -rf "$out/corpus-initrd" && cp -r test/fuzz/corpus/initrd "$out/corpus-initrd"
log="$out/initrd_fuzzer.log"
if (cd "$out" && ./initrd_fuzzer -max_total_time="$seconds" -max_len=65536 -rss_limit_mb=2048 -print_final_stats=1 \
      corpus-initrd >"${log#"$out/"}" 2>&1); then
  echo "initrd_fuzzer: $(grep -E '^#[0-9]+[[:space:]]+DONE' "$log" | tail -1)"
  grep -E '^stat::(number_of_executed_units|average_exec_per_sec|peak_rss_mb)' "$log"
else
  tail -60 "$log"
  echo "initrd_fuzzer found a problem; the input is in $out/ (crash-*, oom-*, timeout-*)" >&2
  exit 1
fi
