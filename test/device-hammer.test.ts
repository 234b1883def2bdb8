/**
 * A hostile guest's resource use (issue 12): test/guests/hammer.c hammers every device at
 * random (UARTs, RTC, i8042, ACPI PM, PCI configuration, HPET, and every memory BAR:
 * virtio-rng, virtio-blk, virtio-net on libslirp, AHCI disk and CD) with random values and
 * random RAM behind the rings and command lists they point at, in rounds. The VMM must
 * stay up, the guest must finish every round and power off, and the VM process's memory
 * must stay flat from round to round: nothing a guest does may grow it without bound. The
 * sanitized suite runs this file against the ASan/UBSan build too.
 */
import { mkdtempSync, readFileSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, expect, test } from 'vitest';
import { startVm } from 'hyve';
import { buildGuest } from './helpers/guests.js';

const work = mkdtempSync(path.join(os.tmpdir(), 'hyve-hammer-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));

function image(name: string, bytes: number): string {
  const file = path.join(work, name);
  writeFileSync(file, '');
  truncateSync(file, bytes);
  return file;
}

/** Resident memory of a process in KiB (VmRSS). */
function residentKiB(pid: number): number {
  const match = /^VmRSS:\s+(\d+) kB$/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return Number(match?.[1] ?? Number.NaN);
}

test('every device hammered at random: the VMM stays up and its memory flat; the guest powers off', async () => {
  const vm = startVm({
    kernel: buildGuest('hammer'),
    memoryMiB: 64,
    pciDevices: [
      { slot: 0, emulation: 'hostbridge' },
      { slot: 2, emulation: 'virtio-net' },
      { slot: 3, emulation: 'virtio-rnd' },
      { slot: 4, emulation: 'virtio-blk', args: image('vd.img', 4 << 20) },
      { slot: 5, emulation: 'ahci-hd', args: image('hd.img', 4 << 20) },
      { slot: 6, emulation: 'ahci-cd', args: image('cd.iso', 1 << 20) },
      { slot: 31, emulation: 'lpc' },
    ],
  });
  let output = '';
  const resident: number[] = [];
  let linesSeen = 0;
  vm.on('console', (port, data) => {
    if (port !== 0) return;
    output += data.toString('latin1');
    // Complete lines only: a chunk can end inside "hyve-guest: round 3", before its newline.
    const complete = output.split('\n').slice(0, -1);
    for (const line of complete.slice(linesSeen)) if (/^hyve-guest: round \d+$/.test(line)) resident.push(residentKiB(vm.pid!));
    linesSeen = complete.length;
  });
  const exit = await vm.exited;
  const lines = output.split('\n').filter((line) => line.startsWith('hyve-guest: '));
  expect(exit.outcome, lines.join('\n') + (exit.message ?? '')).toBe('poweroff');
  expect(lines.filter((line) => line.startsWith('hyve-guest: round '))).toHaveLength(8);
  expect(lines.at(-1)).toBe('hyve-guest: hammer done');
  expect(Number(/hyve-guest: bars (\d+)/.exec(output)?.[1])).toBeGreaterThanOrEqual(5);
  // Flat from round 2 on (round 1 pays for first touches: rings mapped, buffers sized).
  expect(resident).toHaveLength(8);
  const growthKiB = Math.max(...resident.slice(1)) - resident[1]!;
  console.log(`hammer: ${/hyve-guest: bars (\d+)/.exec(output)?.[1]} BARs, VmRSS by round (KiB): ${resident.join(', ')}`);
  expect(growthKiB, `VmRSS by round (KiB): ${resident.join(', ')}`).toBeLessThan(8 * 1024);
}, 300_000);
