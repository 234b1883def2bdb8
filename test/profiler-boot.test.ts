/**
 * A profile of one default-guest boot (kernel with frame pointers, symbols from its
 * vmlinux): the file parses as folded stacks, holds about rate x time samples, and its
 * kernel addresses have names; the boot's phases are recorded beside it, in order, and
 * `hyve profile-report` prints them. One boot: each costs 1-5 minutes on a PVM host.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, expect, test } from 'vitest';
import { execFileSync } from 'node:child_process';
import { bootGuest, parseFolded, readPhases, summarize } from 'hyve';
import { cliPath } from './helpers/cli.js';

const dir = mkdtempSync(path.join(os.tmpdir(), 'hyve-profile-boot-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

test('profile of a default-guest boot: parses, about rate x time samples, names resolve', async () => {
  const file = path.join(dir, 'boot.folded');
  const hz = 50;
  const started = performance.now();
  const guest = await bootGuest({ profile: { file, hz }, timeoutMs: 900_000 });
  const bootSeconds = (performance.now() - started) / 1000;
  await guest.shutdown();
  const seconds = (performance.now() - started) / 1000;

  const stacks = parseFolded(readFileSync(file, 'utf8'));
  const summary = summarize(stacks);
  // A sample needs the vCPU thread on a CPU; on a shared 2-core machine it gets a fraction
  // of the wall time, so only the order of magnitude is checked.
  expect(summary.samples).toBeGreaterThan(0.05 * hz * seconds);
  expect(summary.samples).toBeLessThan(1.2 * hz * seconds + 50);
  // Named from the default guest's vmlinux: nearly every kernel frame has a name.
  const frames = stacks.flatMap((s) => s.frames.map((f) => ({ f, count: s.count })));
  const hex = frames.filter(({ f }) => /^0x/.test(f)).reduce((n, { count }) => n + count, 0);
  const all = frames.reduce((n, { count }) => n + count, 0);
  expect(hex / all).toBeLessThan(0.05);
  // A boot runs its initcalls under do_one_initcall, reached from kernel_init by frame pointers.
  expect(summary.functions.find((f) => f.name === 'do_one_initcall')?.total ?? 0).toBeGreaterThan(0);
  expect(summary.functions.find((f) => f.name === 'kernel_init')?.total ?? 0).toBeGreaterThan(0);
  // Phases: first console output, /init, ready, end, in that order, by clock and by sample count.
  const phases = readPhases(file)!;
  expect(phases.map((p) => p.mark)).toEqual(['console', 'init', 'ready', 'end']);
  for (let i = 1; i < phases.length; i++) {
    expect(phases[i]!.ms).toBeGreaterThanOrEqual(phases[i - 1]!.ms);
    expect(phases[i]!.samples).toBeGreaterThanOrEqual(phases[i - 1]!.samples);
  }
  expect(phases[2]!.ms).toBeLessThan(bootSeconds * 1000);
  expect(phases[3]!.samples).toBeLessThanOrEqual(summary.samples);
  expect(phases[3]!.samples).toBeGreaterThan(0.9 * summary.samples);
  const report = execFileSync(process.execPath, [cliPath, 'profile-report', file], { encoding: 'utf8' });
  expect(report).toMatch(/^boot phases \(from .*boot\.folded\.phases\.json\):$/m);
  expect(report).toMatch(/^to \/init started +\d+\.\d\d s +\d+\.\d\d s +\d+ +\d+\.\d%$/m);
  console.log(
    `default guest profiled at ${hz} Hz: ready after ${bootSeconds.toFixed(1)} s, ${summary.samples} samples in ${seconds.toFixed(1)} s; ` +
      `top: ${summary.functions.slice(0, 5).map((f) => `${f.name} ${((100 * f.self) / summary.samples).toFixed(1)}%`).join(', ')}`,
  );
}, 1_200_000);
