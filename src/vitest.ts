/**
 * vitest integration: `guestTest(options)` is a `test` with a `guest` fixture.
 *
 * ```ts
 * const test = guestTest({ memory: '256M' });
 * test('kernel version', async ({ guest }) => {
 *   expect((await guest.run('uname -r')).output).toMatch(/^6\./);
 * }, 120_000);
 * ```
 * With `scope: 'file'` one guest serves every test in the file; with 'test' (the default)
 * each test gets its own. With `snapshot: 'auto'` the guest boots once (or not at all,
 * when the snapshot cache already holds it) and every test gets its own copy restored
 * from the snapshot in milliseconds. With `uuid: 'from-test-name'` each guest's SMBIOS UUID
 * is derived from the test's full name (file scope: the test file's path), so a test's
 * guest has the same identity on every run.
 *
 * Timeouts: the boot runs inside the test that first uses `guest`, so it counts against
 * that test's vitest timeout (vitest's default is 5 s; a boot takes up to a minute on
 * hardware KVM, several on hosts without hardware virtualization, and the first use
 * also builds the default guest for minutes). Raise `testTimeout` in vitest.config (or
 * pass a timeout to the test), or use `snapshot: 'auto'` and call `test.prepareSnapshot()`
 * in `beforeAll` with a boot-sized timeout so the tests themselves only restore. A boot
 * that would outlast the test's timeout is abandoned just before it, with a
 * `VmStartError` (code HYVE_TEST_TIMEOUT) that says so, instead of vitest's bare
 * "Test timed out".
 *
 * Failures: when the boot fails, the test gets a vitest annotation (type 'hyve') with the
 * console transcript attached, which every reporter shows. When a test fails after the
 * boot, vitest no longer accepts annotations, so the transcript is recorded as a test
 * artifact (type 'hyve:transcript', with the file attached) and its last lines are
 * printed to stderr.
 */
import path from 'node:path';
import { expect, recordArtifact, test as baseTest, type TestAPI, type TestArtifactBase, type TestContext } from 'vitest';
import { bootGuest, type BootGuestOptions, type Guest } from './guest.js';
import { GuestError, saveTranscript } from './diagnostics.js';
import { tailLines } from './serial.js';
import { discardSnapshot, ensureSnapshot, type CachedSnapshot } from './snapshot-cache.js';
import { VmStartError } from './vm-process.js';
import { uuidFromName } from './uuid.js';
import { validateGuestTestOptions } from './validate.js';

export interface GuestTestOptions extends Omit<BootGuestOptions, 'uuid'> {
  /**
   * The guests' SMBIOS UUID: a UUID, or 'from-test-name' for one derived (name-based,
   * RFC 4122 version 5) from the test's full name ('file > suite > test'; with scope
   * 'file', the test file's path relative to the working directory). Not combinable with
   * `snapshot` (restored copies keep the snapshot's UUID).
   */
  uuid?: string | 'from-test-name';
  /**
   * 'test' (default): a fresh guest per test. 'file': one guest for the whole file, booted
   * by the first test that uses it. Anything else is refused with HYVE_BAD_CONFIG.
   */
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

/** The artifact a failed test's guest transcript is recorded as (see the module comment). */
export interface GuestTranscriptArtifact extends TestArtifactBase {
  type: 'hyve:transcript';
  message: string;
}

declare module 'vitest' {
  interface TestArtifactRegistry {
    'hyve:transcript': GuestTranscriptArtifact;
  }
}

/** A vitest `test` whose context has a booted `guest`, disposed after use even on failure. */
export type GuestTestAPI = TestAPI<GuestFixtures> & {
  /**
   * With snapshot: 'auto', finds or makes the snapshot (a boot, the first time). Call it
   * in beforeAll with a boot-sized timeout, so that no single test pays for the boot.
   * Without snapshot: 'auto' it does nothing and resolves to undefined.
   */
  prepareSnapshot(): Promise<CachedSnapshot | undefined>;
};


/** What the fixtures use of vitest's test context. */
type TestReporting = Pick<TestContext, 'task' | 'annotate'>;

/** Boots (or restores) a guest; `signal` abandons it. */
type Boot = (signal: AbortSignal | undefined, name: () => string) => Promise<Guest>;

export function guestTest(options: GuestTestOptions = {}): GuestTestAPI {
  validateGuestTestOptions(options);
  const { scope = 'test', snapshot, snapshotCacheDir, uuid, ...others } = options;
  const fromTestName = uuid === 'from-test-name';
  if (fromTestName && snapshot !== undefined) {
    throw new VmStartError(
      "uuid: 'from-test-name' cannot be combined with snapshot: every guest restored from a snapshot has the snapshot's UUID",
      'HYVE_BAD_CONFIG',
    );
  }
  const rest: BootGuestOptions = fromTestName || uuid === undefined ? others : { ...others, uuid };
  const both = (signal: AbortSignal | undefined) =>
    signal && rest.signal ? AbortSignal.any([signal, rest.signal]) : (signal ?? rest.signal);
  const bootOptions: BootGuestOptions = snapshot === undefined || snapshot === 'auto' ? rest : { ...rest, snapshot };
  // `name` is asked for only when the UUID comes from it.
  let boot: Boot = (signal, name) =>
    bootGuest({ ...bootOptions, signal: both(signal), ...(fromTestName ? { uuid: uuidFromName(name()) } : {}) });
  let prepared: Promise<CachedSnapshot> | undefined;
  const { verifySnapshot, forwardPorts, ...bootRest } = rest;
  const prepare = () => (prepared ??= ensureSnapshot({ ...bootRest, cacheDir: snapshotCacheDir }));
  // What applies to a restore (docs/options.md): the boot-only options stay with the boot;
  // each restored copy gets forwards of its own.
  const restoreOptions = { signal: rest.signal, onLog: rest.onLog, failOn: rest.failOn, verifySnapshot, network: rest.network, forwardPorts };
  if (snapshot === 'auto') {
    boot = async (signal) => {
      // The snapshot is shared by every test: a test that gives up waiting for it must
      // not cancel it for the others.
      const made = await untilAborted(prepare(), signal);
      try {
        return await bootGuest({ ...restoreOptions, snapshot: made.dir, signal: both(signal) });
      } catch (error) {
        // A cached entry this hyve refuses (e.g. damaged on disk): rebuild it once.
        if (!(error instanceof VmStartError) || error.code !== 'HYVE_BAD_SNAPSHOT' || !made.cached) throw error;
        prepared = undefined;
        await discardSnapshot(made, snapshotCacheDir);
        return bootGuest({ ...restoreOptions, snapshot: (await untilAborted(prepare(), signal)).dir, signal: both(signal) });
      }
    };
  }
  return Object.assign(scope === 'file' ? fileScoped(boot) : testScoped(boot), {
    prepareSnapshot: (): Promise<CachedSnapshot | undefined> => (snapshot === 'auto' ? prepare() : Promise.resolve(undefined)),
  });
}

/** The file-scoped guest's name: the test file's path, relative so that it is the same in every checkout. */
function testFileName(): string {
  const file = expect.getState().testPath;
  if (!file) throw new Error("hyve: uuid 'from-test-name' with scope 'file': vitest did not say which file is running");
  return path.relative(process.cwd(), file).split(path.sep).join('/');
}

function testScoped(boot: Boot): TestAPI<GuestFixtures> {
  return baseTest.extend<GuestFixtures>({
    // vitest reads the fixture's parameter list: it must destructure what it uses.
    guest: async ({ task, annotate, onTestFailed }, use) => {
      const context = { task, annotate };
      const guest = await reportBootFailure(context, bootForTest(context, boot, () => task.fullName));
      onTestFailed(() => reportFailure(context, guest));
      try {
        await use(guest);
      } finally {
        await guest[Symbol.asyncDispose]();
      }
    },
  });
}

/** One boot per file, started by the first test that uses `guest`, within that test's timeout. */
interface FileGuest {
  boot(context: TestReporting): Promise<Guest>;
}

function fileScoped(boot: Boot): TestAPI<GuestFixtures> {
  // The file-scoped part only holds the boot; the test-scoped `guest` runs it inside a
  // test, where vitest's timeout and annotations are at hand.
  const extended = baseTest.extend<{ $file: { hyveFileGuest: FileGuest }; $test: GuestFixtures }>({
    hyveFileGuest: [
      async ({}, use: (value: FileGuest) => Promise<void>) => {
        let booting: Promise<Guest> | undefined;
        try {
          await use({ boot: (context) => (booting ??= bootForTest(context, boot, testFileName)) });
        } finally {
          const guest = await booting?.catch(() => undefined);
          await guest?.[Symbol.asyncDispose]();
        }
      },
      { scope: 'file' },
    ],
    guest: async ({ hyveFileGuest, task, annotate, onTestFailed }, use) => {
      const context = { task, annotate };
      // Every test that needed the failed boot gets the report, not only the first.
      const guest = await reportBootFailure(context, hyveFileGuest.boot(context));
      onTestFailed(() => reportFailure(context, guest));
      await use(guest);
    },
  });
  return extended as unknown as TestAPI<GuestFixtures>;
}

/**
 * Runs a boot inside a test: gives it up just before the test's vitest timeout would
 * fire, with an error that says which timeout to raise.
 */
async function bootForTest(context: Pick<TestContext, 'task'>, boot: Boot, name: () => string): Promise<Guest> {
  const budget = context.task.timeout;
  const bounded = budget > 0 && Number.isFinite(budget);
  const controller = new AbortController();
  const started = Date.now();
  // Leave vitest's own timer room: aborting kills the VM (or a kernel build) first, and
  // reaping a VM process took over a second on a slow host (QEMU TCG, nested KVM).
  const timer = bounded ? setTimeout(() => controller.abort(), budget - Math.min(2000, budget / 4)) : undefined;
  try {
    return await boot(controller.signal, name);
  } catch (error) {
    throw controller.signal.aborted ? testTimeoutError(budget, Date.now() - started, error) : error;
  } finally {
    clearTimeout(timer);
  }
}

function testTimeoutError(budget: number, elapsed: number, cause: unknown): VmStartError {
  const error = new VmStartError(
    `guestTest: the guest was not ready within this test's vitest timeout (${budget} ms), so hyve gave up ` +
      `the boot after ${elapsed} ms. Booting takes up to a minute on hardware KVM and several minutes on ` +
      'hosts without hardware virtualization, and the first use also builds the default guest ' +
      '(`npx hyve fixtures` does that once, up front). Raise vitest\'s `testTimeout` (and `hookTimeout`, ' +
      'if the guest is used from beforeEach) in vitest.config, or pass a timeout to the test; or use ' +
      "guestTest({ snapshot: 'auto' }) and call `await test.prepareSnapshot()` in beforeAll with a " +
      'boot-sized timeout, so that each test only restores the snapshot (milliseconds).' +
      (cause instanceof GuestError
        ? `\nThe abandoned boot had reached: ${cause.phase}${cause.transcriptPath ? ` (console transcript: ${cause.transcriptPath})` : ''}`
        : ''),
    'HYVE_TEST_TIMEOUT',
  );
  error.cause = cause;
  return error;
}

/** Resolves or rejects with `promise`, or rejects when `signal` aborts (leaving `promise` running). */
function untilAborted<T>(promise: Promise<T>, signal: AbortSignal | undefined): Promise<T> {
  if (!signal) return promise;
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(signal.reason);
    if (signal.aborted) onAbort();
    signal.addEventListener('abort', onAbort, { once: true });
    promise.then(resolve, reject).finally(() => signal.removeEventListener('abort', onAbort));
  });
}

/**
 * A failed boot fails the test while it runs, when vitest still takes annotations:
 * attach the console transcript as one (of the abandoned boot, for HYVE_TEST_TIMEOUT).
 */
async function reportBootFailure(context: TestReporting, booting: Promise<Guest>): Promise<Guest> {
  try {
    return await booting;
  } catch (error) {
    const failure = error instanceof GuestError ? error : (error as Error | undefined)?.cause;
    if (failure instanceof GuestError) {
      const attachment = failure.transcriptPath ? { path: failure.transcriptPath, contentType: 'text/plain' } : undefined;
      await context.annotate(`guest console (${failure.reason}, boot phase: ${failure.phase})`, 'hyve', attachment).catch(() => {});
    }
    throw error;
  }
}

/**
 * After a failed test vitest refuses annotations, so the transcript becomes a test
 * artifact (reporters receive it through onTestCaseArtifactRecord) and its tail goes to
 * stderr for whoever reads the terminal.
 */
async function reportFailure(context: TestReporting, guest: Guest): Promise<void> {
  const { task } = context;
  const path = guest.saveTranscript(task.name.replace(/[^\w.-]+/g, '_').slice(0, 60) || 'guest');
  process.stderr.write(
    `\nhyve: console of the guest in failed test "${task.name}"${path ? ` (full transcript: ${path})` : ''}:\n` +
      `${tailLines(guest.serial.output, 30)}\n`,
  );
  if (!path) return;
  const artifact: GuestTranscriptArtifact = {
    type: 'hyve:transcript',
    message: `guest console transcript: ${path}`,
    attachments: [{ path, contentType: 'text/plain' }],
  };
  await recordArtifact(task, artifact).catch(() => {});
}
