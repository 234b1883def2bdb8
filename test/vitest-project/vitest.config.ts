// An inner vitest project that test/vitest-integration.test.ts runs as a user would, to
// check what hyve/vitest reports. Its tests fail on purpose; the default config's
// include pattern (test/**/*.test.ts) never picks up these *.inner.ts files.
import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['*.inner.ts'],
    // A configured testTimeout rather than vitest's 5 s default: on a slow host (QEMU TCG)
    // a VM process takes longer than 5 s to show its console. hookTimeout stays 10 s.
    testTimeout: 20_000,
    pool: 'forks',
    maxWorkers: 1,
    // Where vitest copies attachments (the outer test passes a temporary directory).
    attachmentsDir: process.env.HYVE_INNER_ATTACHMENTS,
    reporters: ['./report-json.ts', 'default'],
  },
});
