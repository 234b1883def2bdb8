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
 * each test gets its own. When a test fails, the guest's console transcript is attached
 * to the report.
 */
import { test as baseTest } from 'vitest';
import { bootGuest, type BootGuestOptions, type Guest } from './guest.js';
import { saveTranscript } from './diagnostics.js';
import { tailLines } from './serial.js';

export interface GuestTestOptions extends BootGuestOptions {
  /** 'test' (default): a fresh guest per test. 'file': one guest for the whole file. */
  scope?: 'test' | 'file';
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
export function guestTest(options: GuestTestOptions = {}) {
  const { scope = 'test', ...bootOptions } = options;
  if (scope === 'file') {
    return baseTest.extend<{ $file: GuestFixtures }>({
      guest: [
        async ({}, use: (guest: Guest) => Promise<void>) => {
          const guest = await bootGuest(bootOptions);
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
      const guest = await bootGuest(bootOptions);
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
