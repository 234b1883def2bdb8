/**
 * `hyve` driven only through its command line, in a real pseudo-terminal (tmux): the
 * console in raw mode, the ~. escape, signals, exit statuses, and the terminal's mode
 * restored afterwards. Then without a terminal (CI), on an autopty, and the default Linux
 * guest end to end.
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, openSync, readFileSync, closeSync, writeSync, createReadStream, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { ensureDefaultGuest } from 'hyve';
import { buildGuest } from './helpers/guests.js';
import { Tmux, cliPath, runCli, sh, waitForFile } from './helpers/cli.js';

let tmux: Tmux;
let dir: string;
let uart: string;

beforeAll(() => {
  dir = mkdtempSync(path.join(os.tmpdir(), 'hyve-cli-'));
  tmux = new Tmux(dir);
  uart = buildGuest('uart');
});

afterAll(() => {
  tmux?.kill();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

/**
 * Runs `hyve ARGS` in a new tmux session, recording `stty -a` before and after and the
 * exit status in files.
 */
function startInTerminal(name: string, args: string[]) {
  const files = {
    before: path.join(dir, `${name}.stty-before`),
    after: path.join(dir, `${name}.stty-after`),
    exit: path.join(dir, `${name}.exit`),
  };
  const hyve = [process.execPath, cliPath, ...args].map(sh).join(' ');
  tmux.start(
    name,
    `stty -a > ${sh(files.before)}; ${hyve}; echo $? > ${sh(files.exit)}; stty -a > ${sh(files.after)}; sleep 120`,
  );
  return {
    files,
    exitStatus: async (timeoutMs = 30_000) => Number((await waitForFile(files.exit, timeoutMs)).trim()),
    sttyBefore: () => readFileSync(files.before, 'utf8'),
    sttyAfter: () => waitForFile(files.after, 5_000),
  };
}

describe('the console on a terminal', () => {
  test('boots the uart guest with COM1 on stdio, echoes a typed line, powers off with status 0', async () => {
    const log = path.join(dir, 'uart.log');
    const run = startInTerminal('uart', ['-l', `com1,stdio,log=${log}`, '-f', `kexec,${uart},,`]);
    await tmux.waitFor('uart', /hyve-guest: type a line/, 30_000);
    // In raw mode while the VM runs: no echo, no canonical line editing.
    tmux.type('uart', 'hello from tmux');
    tmux.send('uart', 'Enter');
    const screen = await tmux.waitFor('uart', /hyve-guest: echo \[hello from tmux\]/, 30_000);
    expect(screen).not.toMatch(/^hello from tmux$/m); // the host tty did not echo it
    expect(await run.exitStatus()).toBe(0);
    expect(await run.sttyAfter()).toBe(run.sttyBefore());
    expect(run.sttyBefore()).toMatch(/ icanon /);
    expect(readFileSync(log, 'utf8')).toContain('hyve-guest: echo [hello from tmux]');
  }, 90_000);

  test('~. at the start of a line stops the VM: status 1, terminal restored', async () => {
    const pidfile = path.join(dir, 'escape.pid');
    const run = startInTerminal('escape', ['-F', pidfile, '-l', 'com1,stdio', '-f', `kexec,${uart},,`]);
    await tmux.waitFor('escape', /hyve-guest: type a line/, 30_000);
    expect(existsSync(pidfile)).toBe(true);
    tmux.type('escape', '~.');
    await tmux.waitFor('escape', /hyve: ~\. typed: stopping the VM/, 10_000);
    expect(await run.exitStatus()).toBe(1);
    expect(await run.sttyAfter()).toBe(run.sttyBefore());
    expect(existsSync(pidfile)).toBe(false); // -F's file is removed on exit
  }, 90_000);

  test('SIGTERM stops the VM: status 1, terminal restored, pid file removed', async () => {
    const pidfile = path.join(dir, 'term.pid');
    const run = startInTerminal('term', ['-F', pidfile, '-l', 'com1,stdio', '-f', `kexec,${uart},,`]);
    await tmux.waitFor('term', /hyve-guest: type a line/, 30_000);
    const pid = Number(readFileSync(pidfile, 'utf8'));
    process.kill(pid, 'SIGTERM');
    expect(await run.exitStatus()).toBe(1);
    expect(tmux.capture('term')).toMatch(/hyve: SIGTERM: stopping the VM/);
    expect(await run.sttyAfter()).toBe(run.sttyBefore());
    expect(existsSync(pidfile)).toBe(false);
  }, 90_000);

  test('a boot error is reported and the terminal restored', async () => {
    const bogus = path.join(dir, 'not-a-kernel');
    closeSync(openSync(bogus, 'w'));
    const run = startInTerminal('bogus', ['-l', 'com1,stdio', '-f', `kexec,${bogus},,`]);
    expect(await run.exitStatus()).toBe(1);
    expect(tmux.capture('bogus')).toMatch(/hyve: .*not-a-kernel/);
    expect(await run.sttyAfter()).toBe(run.sttyBefore());
  }, 60_000);
});

describe('without a terminal', () => {
  test('stdin and stdout are plain pipes (CI): no raw mode, bytes pass through', () => {
    const result = runCli(['-l', 'com1,stdio', '-f', `kexec,${uart},,`], { input: 'piped line\n' });
    expect(result.stdout).toContain('hyve-guest: echo [piped line]');
    expect(result.status).toBe(0);
  }, 60_000);

  test('-l com1,autopty=LINK puts COM1 on a new pseudo-terminal', async () => {
    const link = path.join(dir, 'com1.tty');
    const child = spawn(process.execPath, [cliPath, '-l', `com1,autopty=${link}`, '-f', `kexec,${uart},,`], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stderr = '';
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
    // (never read the link to wait for it: a read on a tty blocks until input arrives)
    // The message reaches our pipe some time after the link appears: wait for both.
    const announced = /hyve: COM1 is on \/dev\/pts\/\d+/;
    for (let i = 0; i < 200 && !(existsSync(link) && announced.test(stderr)); i++) {
      await new Promise((r) => setTimeout(r, 100));
    }
    expect(existsSync(link), `no pty link; stderr: ${stderr}`).toBe(true);
    expect(stderr).toMatch(announced);
    let seen = '';
    const reader = createReadStream(link);
    reader.on('data', (chunk) => (seen += chunk.toString()));
    reader.on('error', () => {});
    const fd = openSync(link, 'w');
    for (let i = 0; i < 100 && !seen.includes('type a line'); i++) await new Promise((r) => setTimeout(r, 100));
    writeSync(fd, 'over the pty\r');
    closeSync(fd);
    expect(await exited).toBe(0);
    reader.destroy();
    expect(seen).toContain('hyve-guest: echo [over the pty]');
    expect(existsSync(link)).toBe(false);
  }, 60_000);
});

describe('the default Linux guest through the CLI', () => {
  test('boots, runs uname -r typed at its shell, and powers off with status 0', async () => {
    const guest = await ensureDefaultGuest();
    const run = startInTerminal('linux', [
      '-A',
      '-m',
      '256M',
      '-s',
      '0:0,hostbridge',
      '-s',
      '31,lpc',
      '-l',
      'com1,stdio',
      '-f',
      `kexec,${guest.kernel},${guest.initrd},console=ttyS0 panic=-1`,
    ]);
    await tmux.waitFor('linux', new RegExp(guest.readyMarker), 480_000);
    await tmux.waitFor('linux', /# $/m, 60_000);
    tmux.type('linux', 'uname -r');
    tmux.send('linux', 'Enter');
    await tmux.waitFor('linux', /^6\.1\.\d+/m, 120_000);
    tmux.type('linux', 'poweroff -f');
    tmux.send('linux', 'Enter');
    expect(await run.exitStatus(180_000)).toBe(0);
    expect(await run.sttyAfter()).toBe(run.sttyBefore());
  }, 900_000);
});
