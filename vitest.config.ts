import { defineConfig } from 'vitest/config';
import { SlowFirstSequencer } from './test/slow-first-sequencer.js';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    globalSetup: ['test/global-setup.ts'],
    // Tests import the compiled package ('hyve', 'hyve/vitest') exactly as users do;
    // `npm test` builds it first.
    testTimeout: 60_000,
    hookTimeout: 60_000,
    // Each VM is its own child process; keep a handful of test files in flight on 2 cores.
    pool: 'forks',
    maxWorkers: 2,
    reporters: ['default'],
    sequence: { sequencer: SlowFirstSequencer },
  },
});
