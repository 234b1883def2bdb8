/**
 * The snapshot cache's temporary directory (a tmp-promise dir) goes away when the process
 * that made it exits in the middle of a boot, e.g. a vitest worker ending on a failure.
 */
import { spawn } from 'node:child_process';
import { readdirSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { expect, test } from 'vitest';
import { dir as tmpDir } from 'tmp-promise';
import { buildGuest } from './helpers/guests.js';

test('a process that exits mid-boot leaves no <key>.tmp-* directory in the cache', async () => {
  const cache = await tmpDir({ unsafeCleanup: true, prefix: 'hyve-cache-' });
  const file = path.join(import.meta.dirname, `.snapshot-cache-temp-${process.pid}.mjs`);
  try {
    // Boots the echo guest towards a ready marker it never prints, and exits on "exit".
    const script = `
      import { ensureSnapshot } from 'hyve';
      ensureSnapshot({ kernel: ${JSON.stringify(buildGuest('echo'))}, ready: 'never printed', timeoutMs: 60000,
        cacheDir: ${JSON.stringify(cache.path)}, onLog: () => {} }).catch(() => {});
      process.stdin.on('data', () => process.exit(0));
    `;
    // A file in the package (not -e: the VM process would inherit --input-type), so 'hyve' resolves.
    writeFileSync(file, script);
    const child = spawn(process.execPath, [file], { stdio: ['pipe', 'inherit', 'inherit'] });
    const snapshots = path.join(cache.path, 'snapshots');
    const temporaries = () => {
      try {
        return readdirSync(snapshots).filter((name) => name.includes('.tmp-'));
      } catch {
        return [];
      }
    };
    const deadline = Date.now() + 20_000;
    while (temporaries().length === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    expect(temporaries()).toHaveLength(1); // made while the guest boots
    child.stdin.write('exit\n');
    await new Promise((resolve) => child.once('exit', resolve));
    expect(temporaries()).toEqual([]);
  } finally {
    rmSync(file, { force: true });
    await cache.cleanup();
  }
});
