#!/usr/bin/env bash
# Builds each libFuzzer target in test/fuzz/ with clang (ASan + UBSan) into build-fuzz/
# and runs it for a bounded time (default 30 s each; FUZZ_SECONDS overrides) on a copy of
# its committed seed corpus, if it has one. A crash, leak or hang leaves its input in
# build-fuzz/ and fails the run: add it to the seed corpus once fixed, as a regression input.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds="${FUZZ_SECONDS:-30}"
out=build-fuzz
mkdir -p "$out"
cxx="${CXX_FUZZ:-$(command -v clang++ || command -v clang++-14 || true)}"
if [ -z "$cxx" ]; then
  echo "fuzz: clang++ is missing (scripts/setup-debian.sh installs clang and libclang-rt-14-dev)" >&2
  exit 1
fi
flags=(-std=c++20 -O1 -g -Inative -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined
       -Wall -Wextra -Werror)

# fuzz NAME MAX_LEN SOURCES... -- LIBS...
fuzz() {
  local name=$1 max_len=$2
  shift 2
  local sources=() libs=()
  while [ $# -gt 0 ] && [ "$1" != -- ]; do sources+=("$1"); shift; done
  [ $# -gt 0 ] && shift
  libs=("$@")
  "$cxx" "${flags[@]}" "${sources[@]}" "${libs[@]}" -o "$out/$name"
  rm -rf "$out/corpus-$name" && mkdir -p "$out/corpus-$name"
  if [ -d "test/fuzz/corpus/$name" ]; then cp -r "test/fuzz/corpus/$name/." "$out/corpus-$name/"; fi
  local log="$out/$name.log"
  # -timeout: one input taking a second means a loop.
  if (cd "$out" && "./$name" -max_total_time="$seconds" -max_len="$max_len" -timeout=1 -rss_limit_mb=2048 \
        -print_final_stats=1 "corpus-$name" >"$name.log" 2>&1); then
    echo "$name: $(grep -E '^#[0-9]+[[:space:]]+DONE' "$log" | tail -1)"
    grep -E '^stat::(number_of_executed_units|average_exec_per_sec|peak_rss_mb)' "$log"
  else
    tail -60 "$log"
    echo "$name found a problem; the input is in $out/ (crash-*, leak-*, oom-*, timeout-*)" >&2
    exit 1
  fi
}

# The initrd unpacker and everything it calls.
fuzz initrd 65536 test/fuzz/initrd_fuzzer.cc native/boot/initrd.cc native/boot/decompress.cc native/util/*.cc \
  -- -lz -llzma -lzstd -llz4 -lbz2
# The split-virtqueue walker on a fuzzed guest memory and ring.
fuzz virtqueue 65536 test/fuzz/virtqueue_fuzzer.cc native/virtio/virtqueue.cc native/core/guest_memory.cc native/util/*.cc
# virtio-vsock's handling of guest packets, against real host sockets.
fuzz vsock 65536 test/fuzz/vsock_fuzzer.cc native/virtio/vsock/virtio_vsock.cc native/virtio/virtqueue.cc native/core/guest_memory.cc native/util/*.cc
