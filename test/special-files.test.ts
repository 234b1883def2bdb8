/**
 * Special files as input: a FIFO (or directory, or device) given as kernel, initrd,
 * state.bin or memory.bin is refused at once with the file's code and path. Before,
 * open() of a FIFO blocked forever inside native code, where no signal handler runs.
 * Checked twice: by the TypeScript layer (bootGuest, the CLI) and by the VMM itself,
 * reached through the unchecked VmProcess. No guest boots except one bespoke guest
 * that makes the snapshot.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, linkSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { bootGuest, inspectSnapshot, VmProcess, VmStartError } from 'hyve';
import { buildGuest, snapshotUartGuest } from './helpers/guests.js';
import { runCli } from './helpers/cli.js';

const work = mkdtempSync(path.join(os.tmpdir(), 'hyve-special-files-'));
const fifo = path.join(work, 'fifo');
const snapshotDir = path.join(work, 'snapshot');
afterAll(() => rmSync(work, { recursive: true, force: true }));

beforeAll(async () => {
  execFileSync('mkfifo', [fifo]);
  await snapshotUartGuest(snapshotDir);
}, 60_000);

/** A copy of the snapshot (hard links) with `name` replaced by a FIFO. */
function snapshotWithFifo(name: 'state.bin' | 'memory.bin'): string {
  const dir = path.join(work, `fifo-${name}`);
  if (existsSync(dir)) return dir;
  mkdirSync(dir);
  for (const file of ['state.bin', 'memory.bin']) {
    if (file === name) execFileSync('mkfifo', [path.join(dir, file)]);
    else linkSync(path.join(snapshotDir, file), path.join(dir, file));
  }
  return dir;
}

/** The VMM's own refusal: the child process reports it and exits by itself. */
async function vmmError(config: ConstructorParameters<typeof VmProcess>[0]): Promise<VmStartError> {
  const vm = new VmProcess(config);
  const error = await vm.started.then(() => undefined, (e: unknown) => e);
  const exit = await vm.exited;
  expect(exit.signal ?? null).toBeNull();
  expect(error).toBeInstanceOf(VmStartError);
  return error as VmStartError;
}

// Each of these hung forever before the fix; a 60 s test timeout catches a regression
// (two VM starts under ASan on a nested, emulated host took over 15 s).
describe('the VMM refuses special files without blocking', () => {
  test('a FIFO as kernel', async () => {
    const error = await vmmError({ kernel: fifo, memoryMiB: 64 });
    expect(error.code).toBe('HYVE_BAD_KERNEL');
    expect(error.message).toBe(`kernel ${fifo} is a FIFO, not a regular file`);
  }, 60_000);

  test('a FIFO as initrd', async () => {
    const error = await vmmError({ kernel: buildGuest('uart'), initrd: fifo, memoryMiB: 64 });
    expect(error.code).toBe('HYVE_BAD_INITRD');
    expect(error.message).toBe(`initrd ${fifo} is a FIFO, not a regular file`);
  }, 60_000);

  test('a directory and a character device as kernel', async () => {
    expect((await vmmError({ kernel: work, memoryMiB: 64 })).message).toBe(`kernel ${work} is a directory, not a regular file`);
    expect((await vmmError({ kernel: '/dev/zero', memoryMiB: 64 })).message).toBe('kernel /dev/zero is a character device, not a regular file');
  }, 60_000);

  test('a FIFO as state.bin', async () => {
    const dir = snapshotWithFifo('state.bin');
    const error = await vmmError({ snapshot: dir });
    expect(error.code).toBe('HYVE_BAD_SNAPSHOT');
    expect(error.message).toContain(`${path.join(dir, 'state.bin')} is a FIFO, not a regular file`);
    expect(() => inspectSnapshot(dir)).toThrow(expect.objectContaining({ code: 'HYVE_BAD_SNAPSHOT', message: expect.stringContaining('is a FIFO') }));
  }, 60_000);

  test('a FIFO as memory.bin', async () => {
    const dir = snapshotWithFifo('memory.bin');
    const error = await vmmError({ snapshot: dir });
    expect(error.code).toBe('HYVE_BAD_SNAPSHOT');
    expect(error.message).toContain(`${path.join(dir, 'memory.bin')} is a FIFO, not a regular file`);
  }, 60_000);
});

describe('bootGuest and the CLI refuse special files before starting a VM', () => {
  test('kernel and initrd', async () => {
    await expect(bootGuest({ kernel: fifo })).rejects.toMatchObject({ code: 'HYVE_BAD_KERNEL', message: `kernel ${fifo} is a FIFO, not a regular file` });
    await expect(bootGuest({ kernel: buildGuest('uart'), initrd: fifo })).rejects.toMatchObject({
      code: 'HYVE_BAD_INITRD',
      message: `initrd ${fifo} is a FIFO, not a regular file`,
    });
  }, 60_000);

  test('state.bin and memory.bin', async () => {
    for (const name of ['state.bin', 'memory.bin'] as const) {
      const dir = snapshotWithFifo(name);
      await expect(bootGuest({ snapshot: dir })).rejects.toMatchObject({
        code: 'HYVE_BAD_SNAPSHOT',
        message: `snapshot file ${path.join(dir, name)} is a FIFO, not a regular file`,
      });
    }
  }, 60_000);

  test('the CLI names the FIFO', () => {
    const result = runCli(['-m', '64M', '-f', `kexec,${fifo},,`], { timeoutMs: 15_000 });
    expect(result.status).not.toBe(0);
    expect(result.stderr).toContain(`kernel ${fifo} is a FIFO, not a regular file`);
  }, 20_000);
});
