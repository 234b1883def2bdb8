/**
 * Snapshots and copy-on-write restore, end to end on the default guest. The guest this file
 * snapshots is itself restored from the default guest's shared snapshot (ensureSnapshot():
 * one boot for every test file that uses it), so snapshots of restored guests are what is
 * tested here; every other guest here is restored from this file's own snapshots.
 */
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import {
  closeSync,
  copyFileSync,
  linkSync,
  mkdtempSync,
  openSync,
  readFileSync,
  readSync,
  rmSync,
  statSync,
  truncateSync,
  writeFileSync,
  writeSync,
} from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { bootGuest, ensureSnapshot, VmStartError, type Guest, type SnapshotInfo } from 'hyve';
import { runCommand } from './helpers/console.js';

const bootTimeout = 1_000_000; // a boot behind the shared snapshot on a loaded PVM host: minutes
const work = mkdtempSync(path.join(os.tmpdir(), 'hyve-snapshot-test-'));
const snapshotDir = path.join(work, 'marker');
let original: Guest;
let snapshot: SnapshotInfo;
let snapshotTakenAt: number;

beforeAll(async () => {
  original = await bootGuest({ snapshot: (await ensureSnapshot({ memory: '256M', timeoutMs: 900_000 })).dir });
  expect(await runCommand(original, 'echo hello > /tmp/marker && cat /tmp/marker')).toEqual({ output: 'hello\n', exitCode: 0 });
  // A boot on a PVM host leaves the guest clock seconds behind (lost ticks), and the shared
  // snapshot may be old; set it, so that the clock test below measures what the restore
  // does to it.
  await original.syncClock();
  snapshotTakenAt = Date.now() / 1000;
  snapshot = await original.snapshot(snapshotDir);
}, bootTimeout);

afterAll(async () => {
  await original?.[Symbol.asyncDispose]();
  rmSync(work, { recursive: true, force: true });
});

/** A copy of the snapshot whose memory file is a hard link (same inode and mtime: cheap). */
function cheapCopy(name: string): string {
  const target = mkdtempSync(path.join(work, `${name}-`));
  copyFileSync(path.join(snapshotDir, 'state.bin'), path.join(target, 'state.bin'));
  linkSync(path.join(snapshotDir, 'memory.bin'), path.join(target, 'memory.bin'));
  return target;
}

async function expectRefused(dir: string, pattern: RegExp): Promise<void> {
  const error = await bootGuest({ snapshot: dir }).then(
    (guest) => {
      void guest.kill();
      return undefined;
    },
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(VmStartError);
  expect((error as VmStartError).code).toBe('HYVE_BAD_SNAPSHOT');
  expect((error as VmStartError).message).toMatch(pattern);
}

describe('snapshot', () => {
  test('writes a state file and a sparse, page-aligned memory file', () => {
    expect(snapshot.memoryBytes).toBe(256 * 1024 * 1024);
    expect(statSync(path.join(snapshotDir, 'memory.bin')).size).toBe(snapshot.memoryBytes);
    expect(snapshot.memoryAllocatedBytes).toBeLessThan(snapshot.memoryBytes);
    expect(snapshot.stateBytes).toBe(statSync(path.join(snapshotDir, 'state.bin')).size);
    expect(readFileSync(path.join(snapshotDir, 'state.bin')).subarray(0, 8).toString()).toBe('HYVESNAP');
  });

  test('the snapshotted guest keeps running', async () => {
    expect((await runCommand(original, 'cat /tmp/marker')).output).toBe('hello\n');
  }, 120_000);
});

describe('restore', () => {
  test('two guests restored at once both see the marker, and neither sees the other’s files', async () => {
    const [a, b] = await Promise.all([bootGuest({ snapshot: snapshotDir }), bootGuest({ snapshot: snapshotDir })]);
    try {
      const [ra, rb] = await Promise.all([
        a.run('cat /tmp/marker; echo from-a > /tmp/a; ls -1 /tmp'),
        b.run('cat /tmp/marker; echo from-b > /tmp/b; ls -1 /tmp'),
      ]);
      // Not necessarily the first line: run() shares the console with the kernel, whose
      // messages (e.g. "hrtimer: interrupt took ...") can land in a command's output.
      expect(ra.output).toMatch(/^hello$/m);
      expect(rb.output).toMatch(/^hello$/m);
      expect(ra.output).toMatch(/^a$/m);
      expect(ra.output).not.toMatch(/^b$/m);
      expect(rb.output).toMatch(/^b$/m);
      expect(rb.output).not.toMatch(/^a$/m);
      // The original is untouched by both.
      expect((await original.run('ls -1 /tmp')).output).not.toMatch(/^[ab]$/m);
      expect(a.pid).not.toBe(b.pid);
    } finally {
      await Promise.all([a.kill(), b.kill()]);
    }
  }, 300_000);

  test('a restored guest answers run() at once and its clock is current', async () => {
    // Let the snapshot age, so a clock that resumed where it was paused would show.
    const age = Date.now() / 1000 - snapshotTakenAt;
    if (age < 12) await new Promise((resolve) => setTimeout(resolve, (12 - age) * 1000));
    const guest = await bootGuest({ snapshot: snapshotDir });
    try {
      expect(guest.serial.output).toBe(''); // the transcript of a restored guest starts empty
      // What the original guest did before the snapshot is there (bootGuest guarantees only 'ready').
      expect(await runCommand(guest, 'cat /tmp/marker')).toEqual({ output: 'hello\n', exitCode: 0 });
      const before = Date.now() / 1000;
      const { output, exitCode } = await guest.run('date +%s');
      const after = Date.now() / 1000;
      expect(exitCode).toBe(0);
      const guestSeconds = Number(output.trim());
      // The snapshot is at least 12 s older than this restore (see above);
      // the guest's clock must have moved on with the host's, not resumed where it was.
      expect(before - snapshotTakenAt).toBeGreaterThan(10);
      expect(guestSeconds).toBeGreaterThanOrEqual(Math.floor(before) - 3);
      expect(guestSeconds).toBeLessThanOrEqual(Math.ceil(after) + 3);
      const stats = await guest.stats();
      expect(stats?.bootPath).toBe('snapshot');
      expect(stats?.restoreMs).toBeGreaterThanOrEqual(0);
    } finally {
      await guest.kill();
    }
  }, 120_000);

  test('a copied snapshot (new mtime) is checked in full and restores if intact', async () => {
    const dir = mkdtempSync(path.join(work, 'copy-'));
    copyFileSync(path.join(snapshotDir, 'state.bin'), path.join(dir, 'state.bin'));
    copyFileSync(path.join(snapshotDir, 'memory.bin'), path.join(dir, 'memory.bin'));
    const guest = await bootGuest({ snapshot: dir });
    try {
      expect((await runCommand(guest, 'cat /tmp/marker')).output).toBe('hello\n');
    } finally {
      await guest.kill();
    }
  }, 120_000);

  test('refuses a snapshot with a flipped byte, a truncated file, or a different machine', async () => {
    // A byte in the middle of the state file: inside a section (the vCPU state is the bulk).
    const flipped = cheapCopy('flipped');
    const state = readFileSync(path.join(flipped, 'state.bin'));
    const at = Math.floor(state.length / 2);
    state[at] = state[at]! ^ 0x40;
    writeFileSync(path.join(flipped, 'state.bin'), state);
    await expectRefused(flipped, /corrupt|checksum/);

    const truncatedState = cheapCopy('truncated-state');
    truncateSync(path.join(truncatedState, 'state.bin'), Math.floor(state.length / 3));
    await expectRefused(truncatedState, /truncated|checksum|corrupt/);

    // The memory file one page short (a fresh sparse file: never truncate the hard link).
    const truncatedMemory = cheapCopy('truncated-memory');
    rmSync(path.join(truncatedMemory, 'memory.bin'));
    closeSync(openSync(path.join(truncatedMemory, 'memory.bin'), 'w'));
    truncateSync(path.join(truncatedMemory, 'memory.bin'), snapshot.memoryBytes - 4096);
    await expectRefused(truncatedMemory, /memory file .* bytes/);

    // A real copy of the memory file with one byte changed: its checksum no longer matches.
    const badMemory = mkdtempSync(path.join(work, 'bad-memory-'));
    copyFileSync(path.join(snapshotDir, 'state.bin'), path.join(badMemory, 'state.bin'));
    copyFileSync(path.join(snapshotDir, 'memory.bin'), path.join(badMemory, 'memory.bin'));
    const fd = openSync(path.join(badMemory, 'memory.bin'), 'r+');
    try {
      const page = Buffer.alloc(1);
      readSync(fd, page, 0, 1, 0x100000);
      page[0] = page[0]! ^ 0x01;
      writeSync(fd, page, 0, 1, 0x100000);
    } finally {
      closeSync(fd);
    }
    await expectRefused(badMemory, /memory file .* corrupt/);

    await expectRefused(path.join(work, 'does-not-exist'), /not a hyve snapshot/);
    await expectRefused(snapshotDir.replace(/marker$/, ''), /not a hyve snapshot/);

    // Options that contradict the snapshot's machine.
    const mismatch = await bootGuest({ snapshot: snapshotDir, memory: '512M' }).catch((e: unknown) => e);
    expect(mismatch).toBeInstanceOf(VmStartError);
    expect((mismatch as VmStartError).code).toBe('HYVE_BAD_SNAPSHOT');
    expect((mismatch as VmStartError).message).toMatch(/memoryMiB is 256, not 512/);

    // None of this disturbed anything: the original snapshot still restores.
    const guest = await bootGuest({ snapshot: snapshotDir });
    try {
      expect((await runCommand(guest, 'cat /tmp/marker')).output).toBe('hello\n');
    } finally {
      await guest.kill();
    }
  }, 300_000);

  test('a snapshot taken mid-output loses no console bytes', async () => {
    const count = 2000;
    const since = original.serial.output.length;
    original.serial.write(`for i in $(seq 1 ${count}); do echo line-$i; done\n`);
    await original.serial.waitFor(/line-20\r?\n/, { since, timeoutMs: 300_000 });
    const info = await original.snapshot(path.join(work, 'mid-output'));
    // Exactly what the original printed before the pause (it keeps printing afterwards).
    const before = original.serial.output.slice(since, info.transcriptOffset);
    expect(before).toMatch(/line-20\r?\n/);
    expect(before).not.toMatch(new RegExp(`line-${count}\\r?\\n`)); // really mid-output

    const restored = await bootGuest({ snapshot: info.dir });
    try {
      await restored.serial.waitFor(new RegExp(`line-${count}\\r?\\n`), { timeoutMs: 400_000 });
      // The byte streams join exactly at the pause, even inside a line ("line-4" + "2\r\n").
      const combined = before + restored.serial.output;
      const numbers = [...combined.matchAll(/line-(\d+)\r?\n/g)].map((m) => Number(m[1]));
      expect(numbers).toEqual(Array.from({ length: count }, (_, i) => i + 1));
    } finally {
      await restored.kill();
    }
  }, 800_000);
});
