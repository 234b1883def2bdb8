#!/usr/bin/env bash
# Builds the native addon with AddressSanitizer and UndefinedBehaviorSanitizer into
# build-sanitize/, then runs the tests that drive the native code hardest on bad input
# and on many short-lived VMs (bespoke guests, loader errors, damaged snapshot fields,
# the profiler walking hostile frame pointers)
# against it.
set -euo pipefail
cd "$(dirname "$0")/.."
out=build-sanitize
addon="$out/tree/build/Release/hyve.node"
if [ ! -f "$addon" ] || [ -n "$(find native test/native binding.gyp -newer "$addon" -print -quit)" ]; then
  echo "building the sanitizer addon in $out/ ..."
  # A private copy of the sources, so this never disturbs the normal build in build/.
  rm -rf "$out/tree" && mkdir -p "$out/tree"
  cp -r binding.gyp package.json native "$out/tree/"
  mkdir -p "$out/tree/test" && cp -r test/native "$out/tree/test/"
  HYVE_SANITIZE=1 npx node-gyp rebuild -j 2 --directory "$out/tree" >"$out/build.log" 2>&1 ||
    { tail -30 "$out/build.log"; exit 1; }
fi
runtime="$(gcc -print-file-name=libasan.so):$(gcc -print-file-name=libubsan.so)"
# Node's own allocations are not ours to judge: leak checking stays off; any ASan or
# UBSan report aborts the VM process, which the tests see as a failure.
export HYVE_ADDON="$PWD/$addon"
export ASAN_OPTIONS="detect_leaks=0:abort_on_error=1:halt_on_error=1"
export UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1"
LD_PRELOAD="$runtime" "$out/tree/build/Release/native_tests"  # the device unit tests, sanitized too
FUZZ_SECONDS=20 bash scripts/fuzz.sh  # every libFuzzer target in test/fuzz/, 20 s each, one per core at once
# The runtime is preloaded into the test processes only, not into with-kvm.sh's QEMU.
exec bash scripts/with-kvm.sh env LD_PRELOAD="$runtime" npx vitest run test/platform.test.ts test/boot-errors.test.ts test/snapshot-fields.test.ts test/special-files.test.ts test/profiler.test.ts test/seccomp.test.ts test/virtio-hostile.test.ts test/device-hammer.test.ts
