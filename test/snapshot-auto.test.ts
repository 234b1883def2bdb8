/**
 * guestTest({ snapshot: 'auto' }): one boot for the file (into a fresh snapshot cache), then
 * a private restored guest per test.
 */
import { afterAll, beforeAll, expect } from 'vitest';
import { mkdtempSync, rmSync, existsSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ensureSnapshot, snapshotKey } from 'hyve';
import { guestTest } from 'hyve/vitest';
import { runCommand } from './helpers/console.js';

const cacheDir = mkdtempSync(path.join(os.tmpdir(), 'hyve-snapshot-cache-'));
const test = guestTest({ snapshot: 'auto', snapshotCacheDir: cacheDir, memory: '256M' });

beforeAll(async () => {
  const made = await test.prepareSnapshot();
  expect(made?.cached).toBe(false); // a fresh cache: this booted the guest
  expect(made?.dir).toBe(path.join(cacheDir, 'snapshots', made!.key));
  expect(existsSync(path.join(made!.dir, 'state.bin'))).toBe(true);
}, 600_000);

afterAll(() => rmSync(cacheDir, { recursive: true, force: true }));

test('each test gets a restored guest that answers at once', async ({ guest }) => {
  expect((await guest.stats())?.bootPath).toBe('snapshot');
  const { output, exitCode } = await runCommand(guest, 'echo first > /tmp/left-behind; uname -s');
  expect(exitCode).toBe(0);
  expect(output).toBe('Linux\n');
}, 120_000);

test('and it is a fresh copy: nothing of the previous test is left', async ({ guest }) => {
  const { output } = await guest.run('ls /tmp/left-behind 2>&1; true');
  expect(output).toMatch(/No such file or directory/);
}, 120_000);

test('the cache is reused for the same configuration and keyed on it', async () => {
  const again = await ensureSnapshot({ cacheDir, memory: '256M' });
  expect(again.cached).toBe(true);
  const key = await snapshotKey({ memory: '256M' });
  expect(again.key).toBe(key);
  expect(await snapshotKey({ memory: '256M', cmdline: 'quiet' })).not.toBe(key);
  expect(await snapshotKey({ memory: '512M' })).not.toBe(key);
  expect(await snapshotKey({ memory: 256 })).toBe(key);
  // Nothing but the entry and its lock's leftovers-free directory.
  expect(existsSync(path.join(cacheDir, 'snapshots', `${key}.lock`))).toBe(false);
});
