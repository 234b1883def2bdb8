#!/usr/bin/env bash
# Builds each libFuzzer target in test/fuzz/ with clang (ASan + UBSan) into build-fuzz/
# and runs it for a bounded time (default 30 s each; FUZZ_SECONDS overrides) on a copy of
# its committed seed corpus, if it has one. FUZZ_ONLY="name ..." runs only those targets;
# FUZZ_JOBS targets build and run at once (default: one per core). A crash, leak or hang
# leaves its input in build-fuzz/ and fails the run: add it to the seed corpus once fixed,
# as a regression input.
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
# The snapshot reader checks the version a snapshot was taken by, as in binding.gyp.
version="$(node -p "JSON.stringify(require('./package.json').version)")"
flags=(-std=c++20 -O1 -g -Inative "-DHYVE_VERSION=$version" -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined
       -Wall -Wextra -Werror)

# fuzz_one NAME MAX_LEN SOURCES... -- LIBS...: build one target, run its bounded campaign.
fuzz_one() {
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
    return 1
  fi
}

# Each target builds (one single-threaded compiler run) and fuzzes (one core) on its own:
# as many at once as there are cores, reports printed in order at the end.
parallel="${FUZZ_JOBS:-$(nproc)}"
names=()
fuzz() {
  local name=$1
  if [ -n "${FUZZ_ONLY:-}" ] && [[ " $FUZZ_ONLY " != *" $name "* ]]; then return 0; fi
  while [ "$(jobs -rp | wc -l)" -ge "$parallel" ]; do wait -n || true; done
  rm -f "$out/$name.status"
  # Under set -e a failed build or campaign ends the subshell before the status is written.
  ( fuzz_one "$@" >"$out/$name.report" 2>&1; echo 0 >"$out/$name.status" ) &
  names+=("$name")
}

# The initrd unpacker and everything it calls.
fuzz initrd 65536 test/fuzz/initrd_fuzzer.cc native/boot/initrd.cc native/boot/decompress.cc native/util/*.cc \
  -- -lz -llzma -lzstd -llz4 -lbz2 -lseccomp
# The split-virtqueue walker on a fuzzed guest memory and ring.
fuzz virtqueue 65536 test/fuzz/virtqueue_fuzzer.cc native/virtio/virtqueue.cc native/core/guest_memory.cc native/util/*.cc -- -lseccomp
# The kernel loader: bzImage header, every payload decompressor, the ELF parser, placement.
fuzz kernel 65536 test/fuzz/kernel_fuzzer.cc native/boot/*.cc native/core/guest_memory.cc native/util/*.cc \
  -- -lz -llzma -lzstd -llz4 -lbz2 -lseccomp
# The platform devices' registers (UART, RTC, PCI config, HPET) on a fake bus, then a
# snapshot round trip of each.
fuzz devices 4096 test/fuzz/devices_fuzzer.cc native/devices/*/*.cc native/core/*.cc native/snapshot/*.cc native/util/*.cc \
  -- -lz -lseccomp -lpthread
# The snapshot reader: state.bin's container, then each platform device's section restored
# field by field (checksums skipped in this build only, so mutations reach the fields).
fuzz snapshot 65536 -DFUZZING_BUILD_MODE_UNSAFE_FOR_PRODUCTION test/fuzz/snapshot_fuzzer.cc native/devices/*/*.cc \
  native/core/*.cc native/snapshot/*.cc native/util/*.cc -- -lz -lseccomp -lpthread
# The AHCI HBA's command list, FIS, PRDT and ATA/ATAPI command parsers on a fuzzed guest RAM.
fuzz ahci 4096 test/fuzz/ahci_fuzzer.cc native/ahci/*.cc native/block/*.cc native/devices/pci/pci_device.cc \
  native/devices/pci/pci_persist.cc native/core/guest_memory.cc native/util/*.cc -- -lseccomp
# virtio-net's frames and buffers (both queues, mergeable or not) on a fuzzed guest memory.
fuzz virtio_net 65536 test/fuzz/virtio_net_fuzzer.cc native/virtio/net/virtio_net.cc native/virtio/virtqueue.cc \
  native/core/guest_memory.cc native/util/*.cc -- -lseccomp
# virtio-vsock's handling of guest packets, against real host sockets.
fuzz vsock 65536 test/fuzz/vsock_fuzzer.cc native/virtio/vsock/virtio_vsock.cc native/virtio/virtqueue.cc native/core/guest_memory.cc \
  native/util/*.cc -- -lseccomp
# virtio-console's snapshot fields, restored into a device with a console and two ports.
fuzz console_state 4096 test/fuzz/console_state_fuzzer.cc native/virtio/console/virtio_console.cc native/virtio/virtqueue.cc \
  native/core/guest_memory.cc native/util/*.cc -- -lseccomp -lpthread
# The PVM instruction fixups (Zydis decode, each handler) on a fake vCPU and guest RAM.
fuzz pvm_fixup 1024 test/fuzz/pvm_fixup_fuzzer.cc native/pvm/instruction_fixup.cc native/pvm/fixup_context.cc \
  native/pvm/privilege_return.cc native/core/guest_memory.cc native/util/*.cc -- -lZydis -lseccomp

wait
failed=0
for name in "${names[@]}"; do
  cat "$out/$name.report"
  [ "$(cat "$out/$name.status" 2>/dev/null)" = 0 ] || { echo "fuzz: $name failed" >&2; failed=1; }
done
exit "$failed"
