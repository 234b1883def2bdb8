/**
 * Disk benchmark: prints figures, asserts nothing. Sequential read MiB/s of the same image
 * attached twice, read-only, to one default guest: as an AHCI SATA disk (/dev/sda) and as
 * a virtio-blk disk (/dev/vda), in alternating rounds with the guest's page cache dropped
 * before each (O_DIRECT where the guest supports it), timed on the host less a run()
 * round trip. The host file is read once first so both devices read from its page cache.
 *
 * Run with `node dist/bench/disks.js [MiB] [rounds]` (default 64 MiB, 3 rounds).
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { bootGuest } from '../src/index.js';
import { hostIsPvm } from '../src/host.js';

const mib = Number(process.argv[2] ?? 64);
const rounds = Number(process.argv[3] ?? 3);

async function main(): Promise<void> {
  const work = mkdtempSync(path.join(os.tmpdir(), 'hyve-bench-disks-'));
  try {
    const image = path.join(work, 'disk.img');
    execFileSync('dd', ['if=/dev/urandom', `of=${image}`, 'bs=1M', `count=${mib}`], { stdio: 'ignore' });
    readFileSync(image); // into the host's page cache
    console.log(`hyve disk benchmark (${hostIsPvm() ? 'PVM host: guest kernel mode is emulated' : 'hardware KVM'}): ${mib} MiB sequential reads, ${rounds} rounds`);
    const guest = await bootGuest({
      memory: '256M',
      timeoutMs: 1_100_000,
      disks: [
        { path: image, interface: 'ahci', readOnly: true },
        { path: image, readOnly: true },
      ],
    });
    try {
      const results: Record<string, number[]> = { 'ahci-hd (/dev/sda)': [], 'virtio-blk (/dev/vda)': [] };
      for (let round = 0; round < rounds; round++) {
        for (const [name, device] of [['ahci-hd (/dev/sda)', 'sda'], ['virtio-blk (/dev/vda)', 'vda']] as const) {
          // Timed on the host (busybox date has no %N), less the round trip of the run() before it.
          const idleStart = performance.now();
          await guest.run('echo 3 > /proc/sys/vm/drop_caches', { timeoutMs: 600_000 });
          const idleMs = performance.now() - idleStart;
          const readStart = performance.now();
          const { output, exitCode } = await guest.run(
            `dd if=/dev/${device} of=/dev/null bs=1M count=${mib} iflag=direct 2>/dev/null || dd if=/dev/${device} of=/dev/null bs=1M count=${mib} 2>/dev/null`,
            { timeoutMs: 600_000 },
          );
          const readMs = Math.max(1, performance.now() - readStart - idleMs);
          if (exitCode !== 0) throw new Error(`dd on /dev/${device} failed: ${output}`);
          results[name]!.push(mib / (readMs / 1000));
        }
      }
      for (const [name, values] of Object.entries(results)) {
        const sorted = [...values].sort((a, b) => a - b);
        console.log(`${name}: median ${sorted[Math.floor(sorted.length / 2)]!.toFixed(1)} MiB/s (${values.map((v) => v.toFixed(1)).join(', ')})`);
      }
    } finally {
      await guest.kill();
    }
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
