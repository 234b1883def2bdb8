// An inner vitest project that test/vitest-integration.test.ts runs as a user would, to
// check what hyve/vitest reports. Its tests fail on purpose; the default config's
// include pattern (test/**/*.test.ts) never picks up these *.inner.ts files.
import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['*.inner.ts'],
    // vitest's defaults for testTimeout (5 s) and hookTimeout (10 s) stay as they are.
    pool: 'forks',
    maxWorkers: 1,
    // Where vitest copies attachments (the outer test passes a temporary directory).
    attachmentsDir: process.env.HYVE_INNER_ATTACHMENTS,
    reporters: ['./report-json.ts', 'default'],
  },
});
