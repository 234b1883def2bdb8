/**
 * Nothing hyve makes outlives it or piles up: autopty helpers and links after a SIGKILL,
 * temporaries of a failed snapshot, failure transcripts, snapshot-cache temporaries of a
 * killed worker.
 */
import { execFileSync, spawn } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, lstatSync, mkdirSync, mkdtempSync, readdirSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, onTestFinished, test } from 'vitest';
import { bootGuest, ensureSnapshot, GuestError, snapshotKey, startVm } from 'hyve';
import { buildGuest } from './helpers/guests.js';
import { alive } from './helpers/processes.js';
import { cliPath } from './helpers/cli.js';

const work = mkdtempSync(path.join(os.tmpdir(), 'hyve-leftovers-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));

/** Every process below `pid`. */
function descendants(pid: number): number[] {
  let children: number[] = [];
  try {
    children = execFileSync('pgrep', ['-P', String(pid)], { encoding: 'utf8' }).split('\n').filter(Boolean).map(Number);
  } catch {
    // none
  }
  return children.flatMap((child) => [child, ...descendants(child)]);
}

async function until(condition: () => boolean, ms: number): Promise<boolean> {
  const deadline = Date.now() + ms;
  while (!condition() && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
  return condition();
}

test('SIGKILL of `hyve -l com1,autopty=LINK` takes script(1), its sleep and the link with it', async () => {
  const link = path.join(work, 'vm.tty');
  const cli = spawn(process.execPath, [cliPath, '-m', '64M', '-l', `com1,autopty=${link}`, '-f', `kexec,${buildGuest('uart')},,`], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  cli.stdout.on('data', (d: Buffer) => (out += d.toString()));
  cli.stderr.on('data', (d: Buffer) => (out += d.toString()));
  const helpers: number[] = [];
  onTestFinished(() => {
    cli.kill('SIGKILL');
    for (const pid of helpers) if (alive(pid)) process.kill(pid, 'SIGKILL');
  });
  expect(await until(() => existsSync(link) && out.includes('is on /dev/'), 30_000), out).toBe(true);
  helpers.push(...descendants(cli.pid!));
  const names = helpers.map((pid) => execFileSync('ps', ['-o', 'comm=', '-p', String(pid)], { encoding: 'utf8' }).trim());
  expect(names).toEqual(expect.arrayContaining(['script', 'sleep']));

  cli.kill('SIGKILL');
  await once(cli, 'exit');
  // Before: script and sleep stayed forever, and the link pointed at a pty nobody held.
  expect(await until(() => helpers.every((pid) => !alive(pid)), 10_000), JSON.stringify(names)).toBe(true);
  expect(await until(() => !lstatExists(link), 10_000)).toBe(true);
}, 60_000);

function lstatExists(file: string): boolean {
  try {
    lstatSync(file);
    return true;
  } catch {
    return false;
  }
}

describe('a snapshot that fails part-way leaves no temporary files', () => {
  test.each(['memory.bin', 'state.bin'])('when %s cannot be put in place', async (name) => {
    const vm = startVm({ kernel: buildGuest('uart'), memoryMiB: 64 });
    onTestFinished(async () => { await vm.kill(); });
    let text = '';
    await new Promise<void>((resolve) => {
      vm.on('console', (_port, data) => {
        text += data.toString('latin1');
        if (text.includes('type a line')) resolve();
      });
    });
    // A non-empty directory where the file goes: rename() onto it fails after the write,
    // as a full disk fails a write (ENOSPC) after the temporary file exists.
    const dir = path.join(work, `snapshot-${name}`);
    mkdirSync(path.join(dir, name, 'occupied'), { recursive: true });
    await expect(vm.snapshot(dir)).rejects.toMatchObject({ code: 'HYVE_INTERNAL' });
    expect(readdirSync(dir).filter((f) => f.includes('.tmp-'))).toEqual([]);
  });
});

test('failure transcripts are bounded: the newest 100 are kept', async () => {
  const dir = path.join(work, 'transcripts');
  mkdirSync(dir);
  const old = Date.now() / 1000 - 3600;
  for (let i = 0; i < 120; i++) {
    const file = path.join(dir, `old-${i}.log`);
    writeFileSync(file, 'old');
    utimesSync(file, old + i, old + i);
  }
  writeFileSync(path.join(dir, 'notes.txt'), 'not a transcript');
  const saved = process.env.HYVE_TRANSCRIPT_DIR;
  process.env.HYVE_TRANSCRIPT_DIR = dir;
  try {
    // The power guest powers off at once: a GuestError 'exited' with a transcript.
    const error = await bootGuest({ kernel: buildGuest('power'), memory: 64, ready: 'never printed', onLog: () => {} }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(GuestError);
    const transcript = (error as GuestError).transcriptPath!;
    const logs = readdirSync(dir).filter((f) => f.endsWith('.log'));
    expect(logs).toHaveLength(100);
    expect(logs).toContain(path.basename(transcript));
    expect(logs).not.toContain('old-0.log'); // the oldest went first
    expect(logs).toContain('old-119.log');
    expect(existsSync(path.join(dir, 'notes.txt'))).toBe(true);
  } finally {
    if (saved === undefined) delete process.env.HYVE_TRANSCRIPT_DIR;
    else process.env.HYVE_TRANSCRIPT_DIR = saved;
  }
}, 30_000);

test("a killed worker's <key>.tmp-* snapshot-cache directory is removed by the next build of that key", async () => {
  const cacheDir = path.join(work, 'cache');
  const options = { kernel: buildGuest('power'), memory: 64, ready: 'never printed' } as const;
  const key = await snapshotKey(options);
  const stale = path.join(cacheDir, 'snapshots', `${key}.tmp-killed`);
  mkdirSync(path.join(stale, 'partial'), { recursive: true });
  // tmp-promise removes its directory on exit, but a SIGKILL skips that; here the next
  // build (which fails too: the marker never appears) finds and removes the leftover.
  await expect(ensureSnapshot({ ...options, cacheDir, onLog: () => {} })).rejects.toBeInstanceOf(GuestError);
  expect(readdirSync(path.join(cacheDir, 'snapshots')).filter((f) => f.includes('.tmp-'))).toEqual([]);
}, 30_000);
