/**
 * Progress of long work: the kbuild object counter and the renderer (pure, on synthetic
 * kbuild output and a fake clock), and a kernel build that fails (a fake source tarball
 * whose Makefile breaks after two objects, in a temporary cache): its error shows the
 * output's tail and names the build log, which holds every line.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { PassThrough } from 'node:stream';
import { afterAll, afterEach, describe, expect, test, vi } from 'vitest';
import { formatProgress, progressRenderer, type ProgressEvent } from 'hyve';
import { buildKernel } from '../src/fixtures/kernel.js';
import { KbuildCounter } from '../src/progress.js';

const work = mkdtempSync(path.join(os.tmpdir(), 'hyve-progress-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));

// What `make bzImage` prints in kbuild's quiet mode, objects and other steps mixed.
const kbuildLines = [
  '  SYNC    include/config/auto.conf',
  '  HOSTCC  scripts/basic/fixdep',
  '  CC      kernel/fork.o',
  '  AS      arch/x86/entry/entry_64.o',
  '  AR      kernel/built-in.a',
  '  CC [M]  drivers/virtio/virtio.o',
  '  CC      kernel/exit.o',
  '  LD      vmlinux.o',
  'kernel/exit.c:12: warning: unused variable', // a compiler message is no object
];

/** A stream that collects what is written, with the isTTY the renderer checks. */
function capture(isTTY: boolean) {
  const stream = Object.assign(new PassThrough(), { isTTY });
  let text = '';
  stream.on('data', (chunk: Buffer) => (text += chunk.toString()));
  return { stream, text: () => text };
}

describe('KbuildCounter', () => {
  test('counts the lines that make an object file, against the expected total', () => {
    const counter = new KbuildCounter(4);
    const events = kbuildLines.map((line) => counter.event(line));
    expect(events.map((e) => e.done)).toEqual([0, 0, 1, 2, 2, 3, 4, 4, 4]);
    expect(events.every((e) => e.phase === 'compile' && e.output && e.total === 4)).toBe(true);
    expect(events[2]!.message).toBe('  CC      kernel/fork.o');
  });

  test('a build larger than the estimate raises the total instead of passing 100%', () => {
    const counter = new KbuildCounter(1);
    counter.event('  CC      a.o');
    expect(counter.event('  CC      b.o')).toMatchObject({ done: 2, total: 2 });
  });
});

describe('formatProgress', () => {
  test.each<[ProgressEvent, number, string]>([
    [{ phase: 'compile', done: 600, total: 1200, message: '', output: true }, 133_000, 'hyve: compiling the kernel 600/1200 objects (50%), 2m13s'],
    [{ phase: 'extract', message: '', output: true }, 9_500, 'hyve: extracting the kernel source, 9s'],
  ])('%j after %i ms', (event, ms, line) => {
    expect(formatProgress(event, ms)).toBe(line);
  });
});

describe('progressRenderer', () => {
  const feed = (render: ReturnType<typeof progressRenderer>, clock: { t: number }, stepMs: number) => {
    render('hyve: building guest kernel', { phase: 'extract', message: 'hyve: building guest kernel', output: false });
    const counter = new KbuildCounter(1000);
    for (let i = 0; i < 1000; i++) {
      clock.t += stepMs;
      const line = `  CC      obj${i}.o`;
      render(line, counter.event(line));
    }
    render('hyve: guest kernel built', { phase: 'done', message: 'hyve: guest kernel built', output: false });
  };

  test('without a terminal: notices as lines, a status line every interval, no raw output', () => {
    const out = capture(false);
    const clock = { t: 0 };
    feed(progressRenderer({ stream: out.stream, now: () => clock.t, intervalMs: 5000 }), clock, 50); // 50 s of build
    const lines = out.text().split('\n').filter(Boolean);
    expect(lines[0]).toBe('hyve: building guest kernel');
    expect(lines.at(-1)).toBe('hyve: guest kernel built');
    const status = lines.slice(1, -1);
    // The first compile line (a change of phase), then one per 5 s of the 50 s.
    expect(status).toHaveLength(10);
    expect(status[0]).toBe('hyve: compiling the kernel 1/1000 objects (0%), 0s');
    expect(status[1]).toBe('hyve: compiling the kernel 101/1000 objects (10%), 5s');
    expect(out.text()).not.toMatch(/\r|obj\d+\.o/);
  });

  test('on a terminal: one line redrawn in place, cleared before the next notice', () => {
    const out = capture(true);
    const clock = { t: 0 };
    feed(progressRenderer({ stream: out.stream, now: () => clock.t }), clock, 50);
    const text = out.text();
    expect(text.split('\n')).toEqual(['hyve: building guest kernel', expect.any(String), '']);
    const redraws = text.split('\n')[1]!.split('\r\x1b[K').filter(Boolean);
    expect(redraws[0]).toBe('hyve: compiling the kernel 1/1000 objects (0%), 0s');
    expect(redraws.at(-2)).toBe('hyve: compiling the kernel 999/1000 objects (99%), 49s');
    expect(redraws.at(-1)).toBe('hyve: guest kernel built');
    expect(redraws.length).toBeGreaterThan(100); // a repaint every 100 ms of the 50 s
  });
});

describe('progressRenderer end()', () => {
  test('ends a status line left on a terminal (once), so an error prints below it', () => {
    const out = capture(true);
    const render = progressRenderer({ stream: out.stream, now: () => 0 });
    render('  CC      a.o', new KbuildCounter(10).event('  CC      a.o'));
    render.end();
    render.end();
    expect(out.text()).toBe('\r\x1b[Khyve: compiling the kernel 1/10 objects (10%), 0s\n');
  });

  test('writes nothing when no status line is open', () => {
    const out = capture(true);
    const render = progressRenderer({ stream: out.stream });
    render('hyve: a notice', { phase: 'wait', message: 'hyve: a notice', output: false });
    render.end();
    expect(out.text()).toBe('hyve: a notice\n');
  });
});

describe('progressRenderer during a step that prints nothing', () => {
  afterEach(() => vi.useRealTimers());

  test.each([
    [true, 3000, ['0s', '1s', '2s', '3s']],
    [false, 15_000, ['0s', '5s', '10s', '15s']],
  ])('terminal %s: the elapsed time still moves on (%i ms of silence)', (tty, silenceMs, shown) => {
    vi.useFakeTimers();
    const out = capture(tty);
    const render = progressRenderer({ stream: out.stream, tty });
    render('  LD      vmlinux', { phase: 'compile', done: 5, total: 10, message: '  LD      vmlinux', output: true });
    vi.advanceTimersByTime(silenceMs);
    const lines = out.text().split(tty ? '\r\x1b[K' : '\n').filter(Boolean);
    expect(lines).toEqual(shown.map((s) => `hyve: compiling the kernel 5/10 objects (50%), ${s}`));
    render.end();
    const ended = out.text();
    vi.advanceTimersByTime(silenceMs);
    expect(out.text()).toBe(ended); // end() stopped the clock
  });
});

/** A kernel "source tarball" whose configuration works and whose build fails after two objects. */
function fakeSourceTarball(): string {
  const top = path.join(work, 'src', 'linux-fake');
  mkdirSync(path.join(top, 'scripts', 'kconfig'), { recursive: true });
  writeFileSync(
    path.join(top, 'Makefile'),
    [
      'tinyconfig:',
      '\t@echo "  HOSTCC  scripts/basic/fixdep"',
      "\t@printf 'CONFIG_64BIT=y\\n' > $(O)/.config",
      'bzImage:',
      '\t@echo "  CC      kernel/fork.o"',
      '\t@echo "  CC      kernel/exit.o"',
      '\t@echo "kernel/panic.c:1:1: error: this build is meant to fail" >&2',
      '\t@exit 2',
      '',
    ].join('\n'),
  );
  const merge = path.join(top, 'scripts', 'kconfig', 'merge_config.sh');
  writeFileSync(merge, '#!/bin/sh\necho "merged $5"\n');
  chmodSync(merge, 0o755);
  const tarball = path.join(work, 'linux-fake.tar.xz');
  execFileSync('tar', ['-cJf', tarball, '-C', path.join(work, 'src'), 'linux-fake']);
  return tarball;
}

test('a failing kernel build: the error shows its last output lines and names the full log', async () => {
  const cacheDir = path.join(work, 'cache');
  const fragment = path.join(work, 'fragment.config');
  writeFileSync(fragment, 'CONFIG_64BIT=y\n');
  const events: ProgressEvent[] = [];
  const error = await buildKernel({
    cacheDir,
    fragment,
    sourceTarball: fakeSourceTarball(),
    jobs: 1,
    onProgress: (_message, event) => events.push(event),
  }).then(
    () => undefined,
    (e: Error) => e,
  );
  const log = path.join(cacheDir, 'kernel-build.log');
  expect(error?.message).toMatch(/`make -C .* bzImage` exited with status 2:\n/);
  expect(error?.message).toMatch(/ {2}CC {6}kernel\/exit\.o\nkernel\/panic\.c:1:1: error: this build is meant to fail\n/);
  expect(error?.message).toMatch(new RegExp(`full build log: ${log}$`));
  expect(existsSync(log)).toBe(true);
  const logged = readFileSync(log, 'utf8');
  for (const line of ['  HOSTCC  scripts/basic/fixdep', `merged ${fragment}`, '  CC      kernel/fork.o', 'kernel/panic.c:1:1: error: this build is meant to fail']) {
    expect(logged).toContain(`${line}\n`);
  }
  // Structured events: notices, then the configure output, then compile lines counted.
  expect(events[0]).toMatchObject({ phase: 'extract', output: false, message: expect.stringContaining(`log: ${log}`) });
  const output = (phase: string) => events.filter((e) => e.output && e.phase === phase);
  expect(output('configure').map((e) => e.message)).toEqual(expect.arrayContaining(['  HOSTCC  scripts/basic/fixdep', `merged ${fragment}`]));
  expect(output('compile').find((e) => e.message === '  CC      kernel/fork.o')).toMatchObject({ done: 1, total: 1200 });
  expect(output('compile').find((e) => e.message.endsWith('meant to fail'))).toMatchObject({ done: 2, total: 1200 });
});

test('hyve fixtures: a failure is one message on stderr and status 1, with no status line left open', () => {
  const notADirectory = path.join(work, 'not-a-directory');
  writeFileSync(notADirectory, '');
  const cli = path.join(import.meta.dirname, '..', 'dist', 'src', 'cli.js');
  const result = spawnSync(process.execPath, [cli, 'fixtures'], {
    encoding: 'utf8',
    env: { ...process.env, HYVE_CACHE_DIR: notADirectory },
    timeout: 60_000,
  });
  expect(result.status).toBe(1);
  expect(result.stdout).toBe('');
  expect(result.stderr).toBe(`hyve fixtures: EEXIST: file already exists, mkdir '${notADirectory}'\n`);
});
