/**
 * hyve/vitest as vitest reports it: runs the inner project in test/vitest-project (whose
 * tests fail on purpose, on the millisecond-booting 'uart' guest) in a vitest of its own
 * and checks the states, errors, annotations and artifacts its reporter received.
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { guestTest } from 'hyve/vitest';
import { buildGuest } from './helpers/guests.js';

const project = path.join(import.meta.dirname, 'vitest-project');
const vitestBin = path.join(import.meta.dirname, '..', 'node_modules', 'vitest', 'vitest.mjs');
const work = mkdtempSync(path.join(os.tmpdir(), 'hyve-vitest-integration-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));

interface InnerTest {
  name: string;
  state: string;
  errors: string[];
  duration?: number;
  annotations: { type: string; message: string; attachment?: { path?: string; contentType?: string } }[];
  artifacts: { type: string; message?: string; attachments?: { path?: string; contentType?: string }[] }[];
}

/** Runs one inner file; resolves to its tests by name (the inner run itself fails on purpose). */
async function runInner(file: string): Promise<Map<string, InnerTest>> {
  const report = path.join(work, `${file}.json`);
  await promisify(execFile)(process.execPath, [vitestBin, 'run', file], {
    cwd: project,
    env: {
      ...process.env,
      HYVE_INNER_KERNEL: buildGuest('uart'),
      HYVE_INNER_SLEEP_KERNEL: buildGuest('power'),
      HYVE_INNER_REPORT: report,
      HYVE_TRANSCRIPT_DIR: path.join(work, 'transcripts'),
      HYVE_INNER_ATTACHMENTS: path.join(work, 'attachments'),
    },
  }).catch((error: { code?: number }) => {
    if (error.code !== 1) throw error; // 1: tests failed, as they should
  });
  const tests = JSON.parse(readFileSync(report, 'utf8')) as InnerTest[];
  return new Map(tests.map((t) => [t.name, t]));
}

describe('failure reports', () => {
  let tests: Map<string, InnerTest>;
  beforeAll(async () => {
    tests = await runInner('reporting.inner.ts');
  }, 120_000);

  test.each(['test scope: an assertion fails after the boot', 'file scope: an assertion fails after the boot'])(
    '%s: the transcript is recorded as a hyve:transcript artifact',
    (name) => {
      const t = tests.get(name)!;
      expect(t.state).toBe('failed');
      const artifact = t.artifacts.find((a) => a.type === 'hyve:transcript');
      expect(artifact?.message).toMatch(/guest console transcript: /);
      const file = artifact!.attachments![0]!;
      expect(file.contentType).toBe('text/plain');
      expect(file.path!.startsWith(path.join(work, 'attachments'))).toBe(true);
      expect(readFileSync(file.path!, 'utf8')).toContain('hyve-guest: uart ok');
    },
  );

  test('a passing test on the file-scoped guest records nothing', () => {
    const t = tests.get('file scope: a passing test')!;
    expect(t.state).toBe('passed');
    expect(t.artifacts).toEqual([]);
    expect(t.annotations).toEqual([]);
  });

  test.each([
    'test scope: the boot times out',
    'file scope: the boot times out (first test)',
    'file scope: the boot times out (second test)',
  ])('%s: the failed boot is annotated with its transcript attached', (name) => {
    const t = tests.get(name)!;
    expect(t.state).toBe('failed');
    expect(t.errors[0]).toMatch(/^the guest was not ready/);
    expect(t.errors[0]).toMatch(/Wait\.forSerial\("never printed"\)/);
    expect(t.errors[0]).toMatch(/timeoutMs/);
    const annotation = t.annotations.find((a) => a.type === 'hyve');
    expect(annotation?.message).toMatch(/^guest console \(timeout, boot phase: console up\)/);
    expect(annotation?.attachment?.contentType).toBe('text/plain');
    expect(readFileSync(annotation!.attachment!.path!, 'utf8')).toContain('hyve-guest: sleeping');
  });
});

describe('vitest timeouts', () => {
  let tests: Map<string, InnerTest>;
  beforeAll(async () => {
    tests = await runInner('timeout.inner.ts');
  }, 120_000);

  test.each([
    ["test scope, the config's testTimeout", 20_000],
    ['file scope, an 8 s test timeout', 8000],
  ])('%s: the boot is given up with HYVE_TEST_TIMEOUT, not a bare vitest timeout', (name, budget) => {
    const t = tests.get(name)!;
    expect(t.state).toBe('failed');
    expect(t.errors).toHaveLength(1);
    expect(t.errors[0]).toMatch(new RegExp(`not ready within this test's vitest timeout \\(${budget} ms\\)`));
    expect(t.errors[0]).toMatch(/Raise vitest's `testTimeout`/);
    expect(t.errors[0]).toMatch(/prepareSnapshot\(\)` in beforeAll/);
    expect(t.errors[0]).toMatch(/The abandoned boot had reached: console up/);
    expect(t.errors[0]).not.toMatch(/Test timed out/);
    expect(t.duration).toBeLessThan(budget);
    const annotation = t.annotations.find((a) => a.type === 'hyve');
    expect(annotation?.message).toBe('guest console (aborted, boot phase: console up)');
    expect(readFileSync(annotation!.attachment!.path!, 'utf8')).toContain('hyve-guest: sleeping');
  });
});

describe('guestTest options', () => {
  test.each(['worker', 'suite', ''])('scope %j is refused with HYVE_BAD_CONFIG', (scope) => {
    expect(() => guestTest({ scope: scope as 'test' })).toThrow(
      expect.objectContaining({ name: 'VmStartError', code: 'HYVE_BAD_CONFIG', message: expect.stringMatching(/option 'scope' must be 'test' or 'file'/) }),
    );
  });
});
