/**
 * vitest integration: `guestTest(options)` is a `test` with a `guest` fixture.
 *
 * ```ts
 * const test = guestTest({ memory: '256M' });
 * test('kernel version', async ({ guest }) => {
 *   expect((await guest.run('uname -r')).output).toMatch(/^6\./);
 * });
 * ```
 * With `scope: 'file'` one guest serves every test in the file; with 'test' (the default)
 * each test gets its own. With `snapshot: 'auto'` the guest boots once (or not at all,
 * when the snapshot cache already holds it) and every test gets its own copy restored
 * from the snapshot in milliseconds. When a test fails, the guest's console transcript
 * is attached to the report.
 */
import { test as baseTest, type TestAPI } from 'vitest';
import { bootGuest, type BootGuestOptions, type Guest } from './guest.js';
import { saveTranscript } from './diagnostics.js';
import { tailLines } from './serial.js';
import { discardSnapshot, ensureSnapshot, type CachedSnapshot } from './snapshot-cache.js';
import { VmStartError } from './vm-process.js';
import { validateGuestTestOptions } from './validate.js';

export interface GuestTestOptions extends BootGuestOptions {
  /** 'test' (default): a fresh guest per test. 'file': one guest for the whole file. */
  scope?: 'test' | 'file';
  /**
   * 'auto': boot once, snapshot, and restore a private copy for each test (or for the
   * file, with scope 'file'). The snapshot is cached in `<cache>/snapshots/<key>/`, keyed
   * on the kernel, initrd, cmdline and machine options, and rebuilt when any changes.
   */
  snapshot?: 'auto' | string;
  /** Where snapshot: 'auto' keeps its cache. Default: defaultCacheDir(). */
  snapshotCacheDir?: string;
}

export interface GuestFixtures {
  guest: Guest;
}

/** Reports a failed test's guest console: its last lines in the log, the whole of it as a file. */
function reportTranscript(guest: Guest, taskName: string): string | undefined {
  const path = saveTranscript(taskName.replace(/[^\w.-]+/g, '_').slice(0, 60) || 'guest', guest.serial.output);
  process.stderr.write(
    `\nhyve: console of the guest in failed test "${taskName}"${path ? ` (full transcript: ${path})` : ''}:\n` +
      `${tailLines(guest.serial.output, 30)}\n`,
  );
  return path;
}

/** A vitest `test` whose context has a booted `guest`, disposed after use even on failure. */
export type GuestTestAPI = TestAPI<GuestFixtures> & {
  /**
   * With snapshot: 'auto', finds or makes the snapshot (a boot, the first time). Call it
   * in beforeAll with a boot-sized timeout, so that no single test pays for the boot.
   */
  prepareSnapshot(): Promise<CachedSnapshot | undefined>;
};

export function guestTest(options: GuestTestOptions = {}): GuestTestAPI {
  validateGuestTestOptions(options);
  const { scope = 'test', snapshot, snapshotCacheDir, ...rest } = options;
  const bootOptions: BootGuestOptions = snapshot === undefined || snapshot === 'auto' ? rest : { ...rest, snapshot };
  let boot = () => bootGuest(bootOptions);
  let prepared: Promise<CachedSnapshot> | undefined;
  const { verifySnapshot, ...bootRest } = rest;
  const prepare = () => (prepared ??= ensureSnapshot({ ...bootRest, cacheDir: snapshotCacheDir }));
  // What applies to a restore (docs/options.md): the boot-only options stay with the boot.
  const restoreOptions = { signal: rest.signal, onLog: rest.onLog, failOn: rest.failOn, verifySnapshot };
  if (snapshot === 'auto') {
    boot = async () => {
      const made = await prepare();
      try {
        return await bootGuest({ ...restoreOptions, snapshot: made.dir });
      } catch (error) {
        // A cached entry this hyve refuses (e.g. damaged on disk): rebuild it once.
        if (!(error instanceof VmStartError) || error.code !== 'HYVE_BAD_SNAPSHOT' || !made.cached) throw error;
        prepared = undefined;
        await discardSnapshot(made, snapshotCacheDir);
        return bootGuest({ ...restoreOptions, snapshot: (await prepare()).dir });
      }
    };
  }
  return Object.assign(extend(scope, boot), {
    prepareSnapshot: (): Promise<CachedSnapshot | undefined> => (snapshot === 'auto' ? prepare() : Promise.resolve(undefined)),
  });
}

function extend(scope: 'test' | 'file', boot: () => Promise<Guest>): TestAPI<GuestFixtures> {
  if (scope === 'file') {
    return baseTest.extend<{ $file: GuestFixtures }>({
      guest: [
        async ({}, use: (guest: Guest) => Promise<void>) => {
          const guest = await boot();
          try {
            await use(guest);
          } finally {
            await guest[Symbol.asyncDispose]();
          }
        },
        { scope: 'file' },
      ],
    });
  }
  return baseTest.extend<GuestFixtures>({
    guest: async ({ task, onTestFailed }, use) => {
      const guest = await boot();
      onTestFailed(() => {
        const path = reportTranscript(guest, task.name);
        if (path) (task.meta as Record<string, unknown>).hyveTranscript = path;
      });
      try {
        await use(guest);
      } finally {
        await guest[Symbol.asyncDispose]();
      }
    },
  });
}
