/**
 * A profile of one default-guest boot (kernel with frame pointers, symbols from its
 * vmlinux): the file parses as folded stacks, holds about rate x time samples, and its
 * kernel addresses have names. One boot: each costs 1-5 minutes on a PVM host.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, expect, test } from 'vitest';
import { bootGuest, parseFolded, summarize } from 'hyve';

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
  console.log(
    `default guest profiled at ${hz} Hz: ready after ${bootSeconds.toFixed(1)} s, ${summary.samples} samples in ${seconds.toFixed(1)} s; ` +
      `top: ${summary.functions.slice(0, 5).map((f) => `${f.name} ${((100 * f.self) / summary.samples).toFixed(1)}%`).join(', ')}`,
  );
}, 1_200_000);
