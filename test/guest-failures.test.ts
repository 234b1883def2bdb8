/** What users see when a guest goes wrong: clear errors, a transcript, and nothing left running. */
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, test } from 'vitest';
import { bootGuest, GuestError, VmStartError, ensureDefaultGuest, ensureSnapshot } from 'hyve';
import { runCommand } from './helpers/console.js';

// A boot on a loaded 2-core PVM host has taken over 5 minutes (the default boot timeout
// there): the boots below get 15, and the tests a little more.
const bootMs = 900_000;
const bootTimeout = 1_000_000;

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

function childrenOf(pid: number): number[] {
  try {
    return execFileSync('pgrep', ['-P', String(pid)], { encoding: 'utf8' }).trim().split('\n').filter(Boolean).map(Number);
  } catch {
    return [];
  }
}

describe('bad input', () => {
  test('a nonexistent kernel is refused before any process starts', async () => {
    const before = childrenOf(process.pid).length;
    const error = await bootGuest({ kernel: '/nonexistent/bzImage' }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(VmStartError);
    expect((error as VmStartError).code).toBe('HYVE_BAD_KERNEL');
    expect((error as Error).message).toContain('/nonexistent/bzImage does not exist');
    expect(childrenOf(process.pid).length).toBe(before);
  });

  test('random bytes as a kernel give a clear error', async () => {
    const file = path.join(os.tmpdir(), `hyve-random-kernel-${process.pid}`);
    writeFileSync(file, Buffer.from(Array.from({ length: 1 << 16 }, (_, i) => (i * 2654435761) >>> 24)));
    const error = await bootGuest({ kernel: file, initrd: undefined }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(VmStartError);
    expect((error as VmStartError).code).toBe('HYVE_BAD_KERNEL');
    expect((error as Error).message).toMatch(/not a Linux kernel image/);
  });

  test('a bad memory size is refused with the reason', async () => {
    await expect(bootGuest({ memory: '12 parsecs' })).rejects.toThrow(/invalid size/);
    await expect(bootGuest({ memory: '3M' })).rejects.toThrow(/multiple of 2 MiB/);
  });
});

describe('guests that fail', () => {
  test(
    'a kernel panic (init=/nonexistent) is reported with its message and transcript',
    async () => {
      const error = (await bootGuest({ cmdline: 'init=/nonexistent rdinit=/nonexistent', timeoutMs: bootMs }).catch((e: unknown) => e)) as GuestError;
      expect(error).toBeInstanceOf(GuestError);
      expect(error.reason).toBe('kernel panic');
      expect(error.message).toMatch(/Kernel panic - not syncing/);
      expect(error.message).toMatch(/boot phase reached: (console up|\/init reached)/);
      expect(error.transcriptPath).toBeDefined();
      expect(readFileSync(error.transcriptPath!, 'utf8')).toMatch(/Kernel panic/);
    },
    bootTimeout,
  );

  test(
    'SIGKILL of the VM process rejects pending work with diagnostics and leaves no process',
    async () => {
      // A restored copy of the default guest's shared snapshot: the boot is not what this tests.
      const guest = await bootGuest({ snapshot: (await ensureSnapshot({ timeoutMs: bootMs })).dir });
      const pid = guest.pid!;
      expect(processAlive(pid)).toBe(true);
      expect((await guest.run('echo alive-before-the-kill')).exitCode).toBe(0);
      const pending = guest.run('sleep 1000', { timeoutMs: 600_000 });
      process.kill(pid, 'SIGKILL');
      const error = (await pending.catch((e: unknown) => e)) as GuestError;
      expect(error).toBeInstanceOf(GuestError);
      expect(error.reason).toBe('killed');
      expect(error.message).toMatch(/SIGKILL/);
      expect(error.message).toMatch(/alive-before-the-kill/); // the last console lines
      expect(existsSync(error.transcriptPath!)).toBe(true);
      const exit = await guest.exited;
      expect(exit.code).toBe(1);
      expect(processAlive(pid)).toBe(false);
    },
    bootTimeout,
  );
});

describe('several guests', () => {
  test(
    'two guests at once (the vmlinux of the default kernel booting, its bzImage guest restored) keep their consoles apart',
    async () => {
      const defaults = await ensureDefaultGuest();
      const { dir } = await ensureSnapshot({ timeoutMs: bootMs });
      const [a, b] = await Promise.all([
        bootGuest({ snapshot: dir }),
        bootGuest({ kernel: defaults.vmlinux, initrd: defaults.initrd, timeoutMs: bootMs }),
      ]);
      try {
        expect(a.pid).not.toBe(b.pid);
        const [ra, rb] = await Promise.all([runCommand(a, 'echo guest-a; echo a > /tmp/who'), runCommand(b, 'echo guest-b; cat /tmp/who')]);
        expect(ra.output).toBe('guest-a\n');
        expect(rb.output).toMatch(/^guest-b\ncat: can't open '\/tmp\/who'/);
        expect(a.serial.output).not.toContain('guest-b');
        expect(b.serial.output).not.toContain('guest-a');
      } finally {
        await Promise.all([a[Symbol.asyncDispose](), b[Symbol.asyncDispose]()]);
      }
      expect(processAlive(a.pid!)).toBe(false);
      expect(processAlive(b.pid!)).toBe(false);
    },
    bootTimeout,
  );
});
