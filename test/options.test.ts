/**
 * Options checked at run time, as plain-JavaScript callers (no type checker) meet them:
 * wrong types, values and names are VmStartError HYVE_BAD_CONFIG before any process
 * starts, the defaults agree between entry points, and docs/options.md names every option.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, test } from 'vitest';
import * as hyve from 'hyve';
import {
  bootGuest,
  fromCommandLine,
  inspectSnapshot,
  parseMemoryMiB,
  startVm,
  HyveError,
  SnapshotError,
  VmStartError,
  Wait,
  BOOT_GUEST_OPTION_NAMES,
  ENSURE_SNAPSHOT_OPTION_NAMES,
  GUEST_TEST_OPTION_NAMES,
  MACHINE_OPTION_NAMES,
  DISK_OPTION_NAMES,
  RESTORE_OPTION_NAMES,
  RUN_OPTION_NAMES,
  SHUTDOWN_OPTION_NAMES,
  START_VM_OPTION_NAMES,
  WAIT_OPTION_NAMES,
} from 'hyve';
import { guestTest } from 'hyve/vitest';
import { parseMemoryArg } from '../dist/src/cli/args.js';
import { FLAGS } from '../dist/src/cli/flags.js';

function children(): string[] {
  try {
    return execFileSync('pgrep', ['-P', String(process.pid)], { encoding: 'utf8' }).trim().split('\n').filter(Boolean);
  } catch {
    return [];
  }
}

/** The error `fn` throws or rejects with; it must be HYVE_BAD_CONFIG and match `message`. */
async function badConfig(fn: () => unknown, message: RegExp): Promise<void> {
  let error: unknown;
  try {
    await fn();
  } catch (e) {
    error = e;
  }
  expect(error, `expected ${message} to be thrown`).toBeInstanceOf(VmStartError);
  expect(error).toBeInstanceOf(HyveError);
  expect((error as VmStartError).name).toBe('VmStartError');
  expect((error as VmStartError).code).toBe('HYVE_BAD_CONFIG');
  expect((error as Error).message).toMatch(message);
}

describe('bootGuest() refuses bad options before any process starts', () => {
  test.each<[string, Record<string, unknown>, RegExp]>([
    ['an unknown option, listing the valid ones', { floppy: '/tmp/disk.img' }, /unknown option 'floppy'; no option has a similar name\. \(valid options: kernel, initrd, cmdline/],
    ['disk for disks', { disk: '/tmp/disk.img' }, /unknown option 'disk'; did you mean 'disks'\?/],
    ['a disk without a path', { disks: [{ readOnly: true }] }, /option 'disks' must be an array of \{ path, readOnly, ephemeral, serial, interface \}/],
    ['a disk with an unknown interface', { disks: [{ path: '/tmp/x', interface: 'scsi' }] }, /option 'disks' must be .* and interface 'virtio', 'ahci' or 'ahci-cd'/],
    ['a disk with an unknown field', { disks: [{ path: '/tmp/x', ro: true }] }, /option 'disks' must be/],
    ['a misspelled option in another case', { Kernel: '/boot/vmlinuz' }, /unknown option 'Kernel'; did you mean 'kernel'\?/],
    ['a shortened option', { verify: true }, /unknown option 'verify'; did you mean 'verifySnapshot'\?/],
    ['a misspelled option', { memroy: '512M' }, /unknown option 'memroy'; did you mean 'memory'\?/],
    ['a misspelled timeout', { timeout: 5000 }, /unknown option 'timeout'; did you mean 'timeoutMs'\?/],
    ['ready: 5', { ready: 5 }, /option 'ready' must be a string, a RegExp or a wait strategy .*got 5 \(number\)/],
    ['cpus: 0', { cpus: 0 }, /option 'cpus' must be a whole number from 1 to 64, got 0/],
    ['cpus: 65', { cpus: 65 }, /option 'cpus' must be a whole number from 1 to 64, got 65/],
    ['cpus: "2"', { cpus: '2' }, /option 'cpus' .*got "2" \(string\)/],
    ['cpus: {}', { cpus: {} }, /option 'cpus' .*got an object$/],
    ['kernel: a Buffer', { kernel: Buffer.from('/boot/vmlinuz') }, /option 'kernel' must be a file path \(a non-empty string\), got a Buffer$/],
    ['an odd memory size', { memory: '3M' }, /option 'memory': guest memory must be a multiple of 2 MiB/],
    ['a memory size that is no size', { memory: '12 parsecs' }, /option 'memory': invalid size '12 parsecs'/],
    ['timeoutMs: -1', { timeoutMs: -1 }, /option 'timeoutMs' must be a positive number of milliseconds/],
    ['failOn: a string', { failOn: 'panic' }, /option 'failOn' must be an array of RegExps/],
    ['machine: an unknown field', { machine: { apic: true } }, /machine: unknown option 'apic'; did you mean 'acpi'\?/],
    ['machine: a non-boolean', { machine: { acpi: 'yes' } }, /machine: option 'acpi' must be true or false/],
    ['onLog: not a function', { onLog: 'stderr' }, /option 'onLog' must be a function/],
    ['signal: not a signal', { signal: { aborted: 'no' } }, /option 'signal' must be an AbortSignal, got an object$/],
    ['ssh: an unknown transport', { ssh: 'tcp' }, /option 'ssh' must be 'vsock' or 'network', got "tcp" \(string\)/],
    ["ssh: 'network' without the user network", { ssh: 'network', network: { tap: 'tap0' } }, /option 'ssh': 'network' needs network: 'user' .*got network an object$/],
  ])('%s', async (_, options, message) => {
    const before = children();
    await badConfig(() => bootGuest(options as never), new RegExp(`^bootGuest: ${message.source}`));
    expect(children()).toEqual(before);
  });

  test('bootGuest(fromCommandLine(argv)) does not silently boot the default guest', async () => {
    const converted = fromCommandLine(['-m', '512M', '-f', 'kexec,/boot/vmlinuz,,quiet']);
    await badConfig(() => bootGuest(converted as never), /unknown option 'options'; this looks like fromCommandLine\(\)'s result: pass its `\.options`/);
    // The `.options` it contains are what bootGuest takes.
    expect(Object.keys(converted.options).every((key) => (BOOT_GUEST_OPTION_NAMES as readonly string[]).includes(key))).toBe(true);
  });

  test('a disk that is a FIFO or missing is HYVE_BAD_DISK naming the path, without opening it', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'hyve-disk-'));
    const fifo = path.join(dir, 'fifo');
    execFileSync('mkfifo', [fifo]);
    const kernel = path.resolve('package.json'); // any regular file: the disks are checked first
    for (const disk of [fifo, path.join(dir, 'missing.img')]) {
      const error = await bootGuest({ kernel, disks: [{ path: disk }] }).then(() => undefined, (e: unknown) => e as VmStartError);
      expect(error?.code).toBe('HYVE_BAD_DISK');
      expect(error?.message).toContain(disk);
    }
    rmSync(dir, { recursive: true });
  });

  test('options that are not an object', async () => {
    await badConfig(() => bootGuest('/boot/vmlinuz' as never), /^bootGuest: options must be an object, got "\/boot\/vmlinuz" \(string\)/);
  });
});

describe('the other entry points', () => {
  test('startVm() refuses bad options at once, with the option named', async () => {
    const before = children();
    await badConfig(() => startVm({ kernal: '/boot/vmlinuz' } as never), /^startVm: unknown option 'kernal'; did you mean 'kernel'\?/);
    await badConfig(() => startVm({ kernel: '/boot/vmlinuz', memoryMiB: 3 }), /option 'memoryMiB' must be a positive even whole number of MiB/);
    await badConfig(() => startVm({ kernel: '/boot/vmlinuz', cpus: 0 }), /option 'cpus' must be a whole number from 1 to 64/);
    await badConfig(() => startVm({} as never), /option 'kernel' is required/);
    expect(children()).toEqual(before);
  });

  test("guestTest() refuses scope: 'worker' and unknown options", async () => {
    await badConfig(() => guestTest({ scope: 'worker' } as never), /^guestTest: option 'scope' must be 'test' or 'file', got "worker"/);
    await badConfig(() => guestTest({ snapshotDir: '/tmp/x' } as never), /unknown option 'snapshotDir'; did you mean 'snapshot'\?/);
  });

  test('ensureSnapshot() and toCommandLine() check theirs', async () => {
    await badConfig(() => hyve.ensureSnapshot({ cachedir: '/tmp/x' } as never), /^ensureSnapshot: unknown option 'cachedir'; did you mean 'cacheDir'\?/);
    await badConfig(() => hyve.ensureSnapshot({ snapshot: '/tmp/x' } as never), /^ensureSnapshot: unknown option 'snapshot'/);
    await badConfig(() => hyve.toCommandLine({ kernel: '/k', cpus: 0 }), /^toCommandLine: option 'cpus' must be a whole number from 1 to 64/);
    await badConfig(() => hyve.toCommandLine({}), /^toCommandLine: options\.kernel is required/);
  });

  test('run() refuses a command that is not a string, before typing anything', async () => {
    // No guest is needed to reach the check: it runs before the guest is touched.
    const run = hyve.Guest.prototype.run;
    await badConfig(() => run.call({} as never, ['ls'] as never), /^run: the command must be a string \(one shell command line\), got an array \(1 items\)/);
    await badConfig(() => run.call({} as never, 'ls', { timeout: 5 } as never), /^run: unknown option 'timeout'; did you mean 'timeoutMs'\?/);
  });

  test('wait strategies check their arguments', async () => {
    await badConfig(() => Wait.forSerial(5 as never), /^Wait\.forSerial: the pattern must be a string or a RegExp/);
    await badConfig(() => Wait.forSerial(/x/, { timeout: 5 } as never), /unknown option 'timeout'; did you mean 'timeoutMs'\?/);
    await badConfig(() => Wait.forAll([]), /^Wait\.forAll: takes a non-empty array of wait strategies/);
    await badConfig(() => Wait.forAll([/x/ as never]), /non-empty array of wait strategies/);
  });

  test('inspectSnapshot() is exported and refuses a directory that is no snapshot', () => {
    const dir = os.tmpdir();
    expect(() => inspectSnapshot(dir)).toThrow(SnapshotError);
    try {
      inspectSnapshot(dir);
    } catch (error) {
      expect((error as SnapshotError).code).toBe('HYVE_BAD_SNAPSHOT');
    }
  });
});

describe('sizes mean the same everywhere', () => {
  test('a unitless memory string follows xhyve\'s -m rule in the API as on the command line', () => {
    for (const text of ['512', '2147483648', '1048576K', '1G']) {
      expect(parseMemoryMiB(text), text).toBe(parseMemoryArg(text));
    }
    expect(() => parseMemoryMiB('1048576')).toThrow(/multiple of 2 MiB/); // 1 MiB in bytes, as -m reads it
    expect(() => parseMemoryArg('1048576')).toThrow(/multiple of 2 MiB/);
    expect(parseMemoryMiB(512)).toBe(512); // a number is MiB
  });

  test('a bad size is a VmStartError with a code, not a RangeError', () => {
    for (const bad of ['3M', '12 parsecs', -4, Number.NaN]) {
      let error: unknown;
      try {
        parseMemoryMiB(bad);
      } catch (e) {
        error = e;
      }
      expect(error, String(bad)).toBeInstanceOf(VmStartError);
      expect((error as VmStartError).code).toBe('HYVE_BAD_CONFIG');
    }
  });

  test('the memory default is 256 MiB in bootGuest, startVm and the CLI', () => {
    expect(hyve.DEFAULT_MEMORY_MIB).toBe(256);
    expect(fromCommandLine(['-f', 'kexec,/boot/vmlinuz,,']).options.memory).toBe('256M');
  });
});

describe('building the default guest', () => {
  test('a failure is a VmStartError HYVE_FIXTURE_BUILD', async () => {
    const file = path.join(os.tmpdir(), `hyve-not-a-cache-dir-${process.pid}`);
    writeFileSync(file, 'a file where the cache directory should be\n');
    const saved = process.env.HYVE_CACHE_DIR;
    process.env.HYVE_CACHE_DIR = file;
    try {
      const error = (await bootGuest({ onProgress: () => {} }).catch((e: unknown) => e)) as VmStartError;
      expect(error).toBeInstanceOf(VmStartError);
      expect(error.code).toBe('HYVE_FIXTURE_BUILD');
      expect(error.message).toMatch(/^building the default guest failed: /);
      // The same through the snapshot cache (guestTest({ snapshot: 'auto' })).
      const viaCache = (await hyve.ensureSnapshot({ onProgress: () => {} }).catch((e: unknown) => e)) as VmStartError;
      expect(viaCache).toBeInstanceOf(VmStartError);
      expect(viaCache.code).toBe('HYVE_FIXTURE_BUILD');
    } finally {
      if (saved === undefined) delete process.env.HYVE_CACHE_DIR;
      else process.env.HYVE_CACHE_DIR = saved;
    }
  });
});

describe('docs/options.md', () => {
  const doc = readFileSync(path.join(import.meta.dirname, '..', 'docs', 'options.md'), 'utf8');
  /** The text under the heading that starts with `title`, up to the next heading. */
  function section(title: string): string {
    const start = doc.split('\n').findIndex((line) => /^#+ /.test(line) && line.replace(/^#+ /, '').startsWith(title));
    expect(start, `a heading "${title}"`).toBeGreaterThanOrEqual(0);
    const lines = doc.split('\n').slice(start + 1);
    const end = lines.findIndex((line) => /^#+ /.test(line));
    return lines.slice(0, end < 0 ? undefined : end).join('\n');
  }
  const rowsNaming = (text: string, name: string) => text.split('\n').some((line) => line.startsWith('|') && line.includes(`\`${name}\``));

  test.each<[string, readonly string[], string]>([
    ['BOOT_GUEST_OPTION_NAMES', BOOT_GUEST_OPTION_NAMES, 'bootGuest(options)'],
    ['RESTORE_OPTION_NAMES', RESTORE_OPTION_NAMES, 'bootGuest(options)'],
    ['MACHINE_OPTION_NAMES', MACHINE_OPTION_NAMES, 'machine'],
    ['DISK_OPTION_NAMES', DISK_OPTION_NAMES, 'disks'],
    ['GUEST_TEST_OPTION_NAMES', GUEST_TEST_OPTION_NAMES.filter((n) => !(BOOT_GUEST_OPTION_NAMES as readonly string[]).includes(n)), 'guestTest(options)'],
    ['START_VM_OPTION_NAMES', START_VM_OPTION_NAMES, 'startVm(options)'],
    ['ENSURE_SNAPSHOT_OPTION_NAMES', ENSURE_SNAPSHOT_OPTION_NAMES.filter((n) => !(BOOT_GUEST_OPTION_NAMES as readonly string[]).includes(n)), 'ensureSnapshot(options)'],
    ['RUN_OPTION_NAMES', RUN_OPTION_NAMES, 'guest.run('],
    ['SHUTDOWN_OPTION_NAMES', SHUTDOWN_OPTION_NAMES, 'guest.run('],
    ['WAIT_OPTION_NAMES', WAIT_OPTION_NAMES, 'guest.run('],
  ])('has a table row for every name in %s', (_, names, title) => {
    const text = section(title);
    expect(names.filter((name) => !rowsNaming(text, name))).toEqual([]);
  });

  test('has a row for every CLI flag', () => {
    const text = section('The `hyve` command line');
    const missing = FLAGS.map((f) => (f.name.length > 1 ? `--${f.name}` : `-${f.name}`)).filter(
      (flag) => !text.split('\n').some((line) => line.startsWith('|') && line.includes(`\`${flag}\``)),
    );
    expect(missing).toEqual([]);
  });
});
