/**
 * Snapshot benchmark: prints figures, asserts nothing.
 *
 * - snapshot of the default guest, idle at its prompt: pause and save time, file sizes;
 * - restore latency over sequential restores: to a running VM (bootGuest({ snapshot })
 *   resolved), the VMM's own part of it, and to the answer of a first run();
 * - RSS of a restored VM's process right after the restore.
 *
 * Run with `node dist/bench/snapshot.js [restores]` (default 50). Bounded in time: the
 * run() round trips stop after a time budget, the restores after twice that.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { bootGuest, type Guest } from '../src/index.js';
import { hostIsPvm } from '../src/host.js';

const restores = Number(process.argv[2] ?? 50);
const runBudgetMs = 120_000;

const fmt = (value: number) => `${value.toFixed(1)} ms`;
const mib = (bytes: number) => `${(bytes / 1024 / 1024).toFixed(1)} MiB`;

function percentile(values: number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))] ?? NaN;
}

function summary(name: string, values: number[]): string {
  if (values.length === 0) return `${name}: no samples`;
  return `${name}: median ${fmt(percentile(values, 50))}, p95 ${fmt(percentile(values, 95))}, min ${fmt(Math.min(...values))}, max ${fmt(Math.max(...values))} (n=${values.length})`;
}

/** VmRSS of a process, and the part of it in the guest-RAM mapping (`guestBytes` long). */
function vmRss(pid: number | undefined, guestBytes: number): { totalKiB: number; guestKiB: number } {
  if (pid === undefined) return { totalKiB: NaN, guestKiB: NaN };
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const totalKiB = Number(/^VmRSS:\s+(\d+) kB/m.exec(status)?.[1] ?? NaN);
  let guestKiB = 0;
  let inGuest = false;
  for (const line of readFileSync(`/proc/${pid}/smaps`, 'utf8').split('\n')) {
    const range = /^([0-9a-f]+)-([0-9a-f]+) /.exec(line);
    if (range) inGuest = Number(BigInt(`0x${range[2]}`) - BigInt(`0x${range[1]}`)) === guestBytes;
    const rss = /^Rss:\s+(\d+) kB/.exec(line);
    if (rss && inGuest) guestKiB += Number(rss[1]);
  }
  return { totalKiB, guestKiB };
}

async function main(): Promise<void> {
  const work = mkdtempSync(path.join(os.tmpdir(), 'hyve-bench-snapshot-'));
  try {
    console.log(`hyve snapshot benchmark (${hostIsPvm() ? 'PVM host: guest kernel mode is emulated' : 'hardware KVM'})`);
    const bootStart = performance.now();
    const source = await bootGuest({ memory: '256M' });
    console.log(`boot of the default guest to ready: ${fmt(performance.now() - bootStart)}`);
    await source.run('true');
    const dir = path.join(work, 'snapshot');
    const snapshotStart = performance.now();
    const info = await source.snapshot(dir);
    const snapshotMs = performance.now() - snapshotStart;
    await source.kill();
    console.log(
      `snapshot: ${fmt(snapshotMs)} end to end (VM paused in ${fmt(info.pauseMs)}, state collected and written in ${fmt(info.saveMs)})`,
    );
    console.log(
      `  state.bin ${(info.stateBytes / 1024).toFixed(1)} KiB; memory.bin ${mib(info.memoryBytes)} (${mib(info.memoryAllocatedBytes)} on disk, the rest holes)`,
    );

    const toRunning: number[] = [];
    const vmmRestore: number[] = [];
    const toFirstRun: number[] = [];
    const rssKiB: number[] = [];
    const guestRssKiB: number[] = [];
    const started = performance.now();
    for (let i = 0; i < restores && performance.now() - started < 2 * runBudgetMs; i++) {
      const t0 = performance.now();
      const guest: Guest = await bootGuest({ snapshot: dir });
      const t1 = performance.now();
      toRunning.push(t1 - t0);
      const rss = vmRss(guest.pid, info.memoryBytes);
      rssKiB.push(rss.totalKiB);
      guestRssKiB.push(rss.guestKiB);
      const stats = await guest.stats();
      if (stats && stats.restoreMs >= 0) vmmRestore.push(stats.restoreMs);
      if (performance.now() - started < runBudgetMs) {
        await guest.run('true');
        toFirstRun.push(performance.now() - t0);
      }
      await guest.kill();
    }
    console.log(`sequential restores: ${toRunning.length}`);
    console.log(`  ${summary('restore to VM running (bootGuest resolved)', toRunning)}`);
    console.log(`  ${summary('  of which in the VMM (read, map, load state)', vmmRestore)}`);
    console.log(`  ${summary('restore to first run() answered', toFirstRun)}`);
    const rss = rssKiB.filter(Number.isFinite);
    const guestRss = guestRssKiB.filter(Number.isFinite);
    console.log(
      `  RSS of the VM process right after restore: median ${(percentile(rss, 50) / 1024).toFixed(1)} MiB, max ${(Math.max(...rss) / 1024).toFixed(1)} MiB; ` +
        `of it in guest RAM (${mib(info.memoryBytes)}, mapped copy-on-write): median ${(percentile(guestRss, 50) / 1024).toFixed(1)} MiB`,
    );
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

await main();
