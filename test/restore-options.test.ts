/**
 * bootGuest({ snapshot }) honours `ready`, `timeoutMs` and `failOn` as a boot does,
 * on the echo guest (test/guests/echo.c), whose snapshot takes milliseconds.
 */
import { execFileSync } from 'node:child_process';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { dir as tmpDir, type DirectoryResult } from 'tmp-promise';
import { bootGuest, GuestError, VmStartError, Wait } from 'hyve';
import { buildGuest } from './helpers/guests.js';

let snapshotDir: DirectoryResult;

/** This process's child processes: VMs, and the spare a restore prepares for the next one. */
function children(): string[] {
  try {
    return execFileSync('pgrep', ['-P', String(process.pid)], { encoding: 'utf8' }).trim().split('\n').filter(Boolean);
  } catch {
    return [];
  }
}

beforeAll(async () => {
  snapshotDir = await tmpDir({ unsafeCleanup: true, prefix: 'hyve-restore-options-' });
  const guest = await bootGuest({ kernel: buildGuest('echo'), ready: 'hyve-guest: echo ready' });
  try {
    await guest.snapshot(snapshotDir.path);
  } finally {
    await guest.kill();
  }
});
afterAll(() => snapshotDir?.cleanup());

describe('restoring a snapshot', () => {
  test('without ready, resolves once the VM runs, and the restored guest answers', async () => {
    const guest = await bootGuest({ snapshot: snapshotDir.path });
    try {
      guest.serial.write('after restore\n');
      await guest.serial.waitFor('after restore\n', { timeoutMs: 10_000 });
    } finally {
      await guest.kill();
    }
  });

  test('ready and timeoutMs apply: a wait that is never met fails within timeoutMs, naming the wait', async () => {
    const started = Date.now();
    // 15 s: a slow nested-KVM VM once took over 5 s to get the restored VM running at all.
    const error = (await bootGuest({ snapshot: snapshotDir.path, ready: /never printed/, timeoutMs: 15_000 }).catch((e: unknown) => e)) as GuestError;
    expect(error).toBeInstanceOf(GuestError);
    expect(error.reason).toBe('timeout');
    expect(error.message).toMatch(/wait Wait\.forSerial\(\/never printed\/\) failed after \d+ ms: .*the boot's timeoutMs/);
    expect(Date.now() - started).toBeLessThan(25_000);
  });

  test('a wait strategy with its own timeout', async () => {
    const error = (await bootGuest({ snapshot: snapshotDir.path, ready: Wait.forSerial('login:', { timeoutMs: 300 }) }).catch(
      (e: unknown) => e,
    )) as GuestError;
    expect(error).toBeInstanceOf(GuestError);
    expect(error.message).toMatch(/wait Wait\.forSerial\("login:", \{ timeoutMs: 300 \}\) failed after \d+ ms: .*its own timeout/);
  });

  test('failOn applies to the restored guest', async () => {
    const guest = await bootGuest({ snapshot: snapshotDir.path, failOn: [/^RESTORED-FAIL/] });
    guest.serial.write('RESTORED-FAIL now\n');
    await guest.exited;
    expect(guest.error?.reason).toBe('kernel panic');
    expect(guest.error?.message).toContain('RESTORED-FAIL now');
  });

  test('timeoutMs covers loading the snapshot: a state.bin that blocks (a FIFO) does not hang the restore', async () => {
    const fifoDir = await tmpDir({ unsafeCleanup: true, prefix: 'hyve-fifo-snapshot-' });
    try {
      execFileSync('mkfifo', [path.join(fifoDir.path, 'state.bin')]);
      const before = children();
      const started = Date.now();
      const error = await bootGuest({ snapshot: fifoDir.path, timeoutMs: 1_000 }).catch((e: unknown) => e);
      expect(Date.now() - started).toBeLessThan(15_000);
      // Refused outright once the VMM checks file types; until then, bounded by timeoutMs.
      if (error instanceof GuestError) {
        expect(error.reason).toBe('timeout');
        expect(error.message).toMatch(/not ready within timeoutMs \(1000 ms\) \(the VM did not start\)/);
      } else {
        expect(error).toBeInstanceOf(VmStartError);
        expect((error as VmStartError).code).toBe('HYVE_BAD_SNAPSHOT');
      }
      // Nothing left running: the VM process (the spare it took, or a new one) is gone.
      expect(children().filter((pid) => !before.includes(pid))).toEqual([]);
      expect(children().length).toBeLessThanOrEqual(before.length);
    } finally {
      await fifoDir.cleanup();
    }
  });

  test('option names and values are checked on restore too', async () => {
    await expect(bootGuest({ snapshot: snapshotDir.path, verfySnapshot: true } as never)).rejects.toThrow(
      /unknown option 'verfySnapshot'; did you mean 'verifySnapshot'\?/,
    );
  });
});
