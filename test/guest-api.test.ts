/**
 * The harness API end to end on the default guest (minimal kernel + busybox initramfs):
 * one guest per file, shared by the tests below, then shut down. The guest is a restored
 * copy of the default guest's shared snapshot (ensureSnapshot(): one boot for every test
 * file that uses it); the files with devices of their own show cold boots.
 */
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { bootGuest, ensureSnapshot, type Guest } from 'hyve';
import { runCommand } from './helpers/console.js';

const bootTimeout = 1_000_000; // a boot behind the snapshot on a loaded PVM host: minutes
let guest: Guest;

beforeAll(async () => {
  guest = await bootGuest({ snapshot: (await ensureSnapshot({ memory: '256M', timeoutMs: 900_000 })).dir });
}, bootTimeout);

afterAll(async () => {
  await guest?.[Symbol.asyncDispose]();
});

describe('default guest', () => {
  test("the guest kernel booted with hyve's command line, and its shell answers", async () => {
    // bootGuest() already guarantees the ready marker; this is the guest's own view.
    const cmdline = await runCommand(guest, 'cat /proc/cmdline');
    expect(cmdline.exitCode).toBe(0);
    expect(cmdline.output).toMatch(/(^| )console=ttyS0 panic=-1( |\n)/);
  });

  test('run() returns output and exit status', async () => {
    const uname = await runCommand(guest, 'uname -s -r -m');
    expect(uname.exitCode).toBe(0);
    expect(uname.output).toMatch(/^Linux 6\.1\.\d+ x86_64\n$/);

    const failing = await guest.run('ls /nonexistent');
    expect(failing.exitCode).not.toBe(0);
    expect(failing.output).toMatch(/No such file or directory/);

    const status = await guest.run('exit_with() { return $1; }; exit_with 42');
    expect(status.exitCode).toBe(42);
  }, 120_000);

  test('run() passes quotes, variables and several lines through unchanged', async () => {
    const script = `x="it's \\"quoted\\""\necho "$x"\nprintf '%s|%s\\n' a b`;
    const { output, exitCode } = await runCommand(guest, script);
    expect(exitCode).toBe(0);
    expect(output).toBe(`it's "quoted"\na|b\n`);
  }, 120_000);

  test('run() passes control characters (here a tab) through unchanged', async () => {
    const { output, exitCode } = await runCommand(guest, "echo 'a\tb'");
    expect({ output, exitCode }).toEqual({ output: 'a\tb\n', exitCode: 0 });
  }, 120_000);

  test('run() of a command that exits the shell returns its status; the next run() gets a new shell', async () => {
    await guest.run('cd /tmp');
    const exited = await runCommand(guest, 'echo bye; exit 3');
    expect(exited).toEqual({ output: 'bye\n', exitCode: 3 });
    // A new shell started in /init's directory: the old shell's cd is gone.
    expect((await runCommand(guest, 'pwd')).output).toBe('/root\n');
  }, 120_000);

  test('the guest has the memory it was given, a tmpfs /tmp and devtmpfs /dev', async () => {
    const { output } = await guest.run("grep MemTotal /proc/meminfo; grep -E ' /tmp | /dev ' /proc/mounts");
    const kib = Number(/MemTotal:\s+(\d+) kB/.exec(output)?.[1]);
    expect(kib).toBeGreaterThan(200 * 1024);
    expect(kib).toBeLessThanOrEqual(256 * 1024);
    expect(output).toMatch(/tmpfs \/tmp tmpfs/);
    expect(output).toMatch(/devtmpfs \/dev devtmpfs/);
  }, 120_000);

  test('serial.write and serial.waitFor talk to the console directly', async () => {
    const since = guest.serial.output.length;
    guest.serial.write('echo $((6 * 7))-direct\n');
    const match = await guest.serial.waitFor(/(\d+)-direct\r?\n/, { since, timeoutMs: 120_000 });
    expect(match[1]).toBe('42');
  }, 120_000);

  test('the console stream carries the raw bytes', async () => {
    const chunks: Buffer[] = [];
    const onData = (chunk: Buffer) => chunks.push(chunk);
    guest.serial.stream.on('data', onData);
    await guest.run('echo stream-check');
    guest.serial.stream.off('data', onData);
    expect(Buffer.concat(chunks).toString()).toContain('stream-check');
  }, 120_000);

  test('commands run one at a time, in call order', async () => {
    const results = await Promise.all([guest.run('echo one'), guest.run('echo two'), guest.run('echo three')]);
    expect(results.map((r) => r.output.trim())).toEqual(['one', 'two', 'three']);
  }, 120_000);

  test('shutdown() powers the guest off with outcome 0', async () => {
    const exit = await guest.shutdown();
    expect(exit).toMatchObject({ outcome: 'poweroff', code: 0 });
    await expect(guest.run('true')).rejects.toThrow(/ended/);
  }, 120_000);
});
