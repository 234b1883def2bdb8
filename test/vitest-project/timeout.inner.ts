// Boots that outlast vitest's test timeout, for test/vitest-integration.test.ts.
import { expect } from 'vitest';
import { guestTest } from 'hyve/vitest';

// The 'power' guest asleep (sti; hlt) never gets ready; see reporting.inner.ts.
const kernel = process.env.HYVE_INNER_SLEEP_KERNEL!;
// A boot timeout far beyond the test's: vitest's timeout is the one that matters.
const slow = guestTest({ kernel, cmdline: 'sleep', ready: 'never printed', timeoutMs: 600_000, memory: '64M' });
const slowFile = guestTest({ kernel, cmdline: 'sleep', ready: 'never printed', timeoutMs: 600_000, memory: '64M', scope: 'file' });

slow("test scope, the config's testTimeout", async ({ guest }) => {
  expect(guest).toBeUndefined(); // never reached: the boot fails first
});

slowFile('file scope, an 8 s test timeout', { timeout: 8000 }, async ({ guest }) => {
  expect(guest).toBeUndefined(); // never reached: the boot fails first
});
