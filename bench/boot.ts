/**
 * Boot benchmark: prints figures, asserts nothing.
 *
 * - process start → first guest instruction, → first serial byte (a bespoke guest and the
 *   default Linux guest), → the default guest's /init ready marker;
 * - VMM RSS, with and without the guest memory it has touched;
 * - VM exits by reason during the default guest's boot;
 * - host-side decompression of Debian's bzImage.
 */
import { readFileSync } from 'node:fs';
import { startVm, ensureDefaultGuest, fetchDebianKernel, defaultCacheDir, DEFAULT_READY_MARKER, type VmProcess } from '../src/index.js';
import { loadAddon } from '../src/native.js';
import { hostIsPvm } from '../src/host.js';
import { buildGuest } from '../test/helpers/guests.js';

const ms = (value: number | undefined) => (value === undefined || value < 0 ? 'n/a' : `${value.toFixed(1)} ms`);

/** RSS of a process, and the part of it that is the guest-RAM mapping of `guestBytes`. */
function rss(pid: number, guestBytes: number): { totalKiB: number; guestKiB: number } {
  const smaps = readFileSync(`/proc/${pid}/smaps`, 'utf8').split('\n');
  let totalKiB = 0;
  let guestKiB = 0;
  let inGuest = false;
  for (const line of smaps) {
    const range = /^([0-9a-f]+)-([0-9a-f]+) /.exec(line);
    if (range) {
      inGuest = Number(BigInt(`0x${range[2]}`) - BigInt(`0x${range[1]}`)) === guestBytes;
      continue;
    }
    const rssLine = /^Rss:\s+(\d+) kB/.exec(line);
    if (rssLine) {
      totalKiB += Number(rssLine[1]);
      if (inGuest) guestKiB += Number(rssLine[1]);
    }
  }
  return { totalKiB, guestKiB };
}

interface BootFigures {
  toFirstInstruction: number;
  toFirstByte: number;
  toMarker?: number;
  exits: Record<string, number>;
  rss?: { totalKiB: number; guestKiB: number };
}

async function measure(vm: VmProcess, marker: string | undefined, memoryMiB: number): Promise<BootFigures> {
  const spawned = performance.now();
  let firstByteAt: number | undefined;
  let markerAt: number | undefined;
  let text = '';
  const markerSeen = new Promise<void>((resolve) => {
    vm.on('console', (_port, data) => {
      firstByteAt ??= performance.now();
      text += data.toString('latin1');
      if (marker && markerAt === undefined && text.includes(marker)) {
        markerAt = performance.now();
        resolve();
      }
    });
  });
  const stats = await vm.started;
  if (marker) await Promise.race([markerSeen, vm.exited]);
  else await vm.exited;
  const atEnd = (await vm.stats()) ?? stats;
  const rssNow = vm.exit ? undefined : rss(vm.pid!, memoryMiB * 2 ** 20);
  // In-process times are relative to the VMM building the machine; add when that began.
  const base = vm.machineCreatedMs ?? 0;
  const figures: BootFigures = {
    toFirstInstruction: base + (stats?.firstRunMs ?? NaN),
    toFirstByte: atEnd?.firstConsoleByteMs !== undefined && atEnd.firstConsoleByteMs >= 0 ? base + atEnd.firstConsoleByteMs : (firstByteAt ?? NaN) - spawned,
    toMarker: markerAt === undefined ? undefined : markerAt - spawned,
    exits: atEnd?.exits ?? {},
    rss: rssNow,
  };
  if (!vm.exit) await vm.kill();
  return figures;
}

async function main(): Promise<void> {
  const addon = loadAddon();
  console.log(`hyve boot benchmark — host: ${hostIsPvm() ? 'PVM (guest kernel mode emulated)' : 'hardware KVM'}, node ${process.version}`);
  console.log('(times from the VM process starting; the node runtime itself takes part of that)\n');

  const bespoke = await measure(startVm({ kernel: buildGuest('pci'), memoryMiB: 64 }), undefined, 64);
  console.log('bespoke guest (test/guests/pci.c, 64 MiB):');
  console.log(`  process start → first guest instruction  ${ms(bespoke.toFirstInstruction)}`);
  console.log(`  process start → first serial byte        ${ms(bespoke.toFirstByte)}`);

  const defaults = await ensureDefaultGuest();
  const memoryMiB = 256;
  const linux = await measure(
    startVm({ kernel: defaults.kernel, initrd: defaults.initrd, cmdline: 'console=ttyS0 panic=-1', memoryMiB }),
    DEFAULT_READY_MARKER,
    memoryMiB,
  );
  console.log(`\ndefault guest (minimal 6.1 bzImage + busybox initramfs, ${memoryMiB} MiB, 1 vCPU):`);
  console.log(`  process start → first guest instruction  ${ms(linux.toFirstInstruction)}`);
  console.log(`  process start → first serial byte        ${ms(linux.toFirstByte)}`);
  console.log(`  process start → /init ready marker       ${ms(linux.toMarker)}`);
  if (linux.rss) {
    const vmm = linux.rss.totalKiB - linux.rss.guestKiB;
    console.log(`  VMM process RSS ${(linux.rss.totalKiB / 1024).toFixed(1)} MiB = guest memory touched ${(linux.rss.guestKiB / 1024).toFixed(1)} MiB + VMM ${(vmm / 1024).toFixed(1)} MiB (node runtime included)`);
  }
  console.log('  VM exits by reason during boot:');
  for (const [reason, count] of Object.entries(linux.exits).sort((a, b) => b[1] - a[1])) {
    console.log(`    ${reason.padEnd(28)} ${count}`);
  }

  try {
    const debian = await fetchDebianKernel({ cacheDir: defaultCacheDir() });
    const runs = Array.from({ length: 5 }, () => addon.inspectKernel(debian.vmlinuz));
    const times = runs.map((r) => r.decompressMs).sort((a, b) => a - b);
    const info = runs[0]!;
    console.log(`\nDebian ${debian.version} bzImage: ${info.compression} payload ${(info.payloadBytes / 2 ** 20).toFixed(1)} MiB → ${(info.decompressedBytes / 2 ** 20).toFixed(1)} MiB vmlinux`);
    console.log(`  host-side decompression: median ${ms(times[2])}, min ${ms(times[0])} (5 runs)`);
  } catch (error) {
    console.log(`\nDebian kernel decompression: skipped (${(error as Error).message})`);
  }
}

main().catch((error: Error) => {
  console.error(`benchmark failed: ${error.message}`);
  process.exit(1);
});
