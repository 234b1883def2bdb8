/**
 * What the harness makes of console lines and readiness: the kernel's failure formats (not
 * any line containing "BUG: "), `failOn`, user-space crash warnings, and wait strategies.
 * The echo guest (test/guests/echo.c) prints back each line typed at it, so a test can
 * put any line on the console; it boots in milliseconds.
 */
import { execFileSync } from 'node:child_process';
import { describe, expect, test } from 'vitest';
import { bootGuest, GuestError, SerialConsole, Wait, WaitError, type Guest, type BootGuestOptions } from 'hyve';
import { buildGuest } from './helpers/guests.js';

const kernel = buildGuest('echo');
const ready = 'hyve-guest: echo ready';

/** This process's child processes (each VM is one). */
function children(): string[] {
  try {
    return execFileSync('pgrep', ['-P', String(process.pid)], { encoding: 'utf8' }).trim().split('\n').filter(Boolean);
  } catch {
    return [];
  }
}

async function withEchoGuest(options: BootGuestOptions, body: (guest: Guest) => Promise<void>): Promise<void> {
  const guest = await bootGuest({ kernel, ready, ...options });
  try {
    await body(guest);
  } finally {
    await guest.kill();
  }
}

/** Types `line`, then a marker line, and waits for the marker's echo: `line` has been seen by then. */
async function say(guest: Guest, line: string): Promise<void> {
  const marker = `marker-${Math.random().toString(36).slice(2)}`;
  const since = guest.serial.output.length;
  guest.serial.write(`${line}\n${marker}\n`);
  await guest.serial.waitFor(`${marker}\n`, { since, timeoutMs: 10_000 });
}

describe('kernel failure patterns', () => {
  test('a program printing "DEBUG: x" or "no BUG: here" does not end the guest', async () => {
    await withEchoGuest({}, async (guest) => {
      await say(guest, 'DEBUG: x');
      await say(guest, 'no BUG: here, and no Oops: either');
      await say(guest, 'echo Kernel panic - not syncing: (quoted by a program)');
      await say(guest, '[ 1.0 ] BUG: not a printk timestamp');
      await say(guest, 'still alive');
      expect(guest.error).toBeUndefined();
    });
  });

  test('the kernel\'s own format (start of line, optional printk timestamp) ends the guest', async () => {
    for (const line of [
      '[    1.234567] BUG: kernel NULL pointer dereference, address: 0000000000000000',
      'Kernel panic - not syncing: VFS: Unable to mount root fs',
      '[   12.000001][    T1] Oops: general protection fault, probably for non-canonical address',
      '# [   99.000001] Kernel panic - not syncing: after a prompt on the same line',
    ]) {
      const guest = await bootGuest({ kernel, ready });
      guest.serial.write(`${line}\n`);
      const exit = await guest.exited;
      expect(exit.outcome).toBe('error');
      expect(guest.error).toBeInstanceOf(GuestError);
      expect(guest.error!.reason).toBe('kernel panic');
      expect(guest.error!.message).toContain(line.replace(/^\[.*\] /, '').slice(0, 20));
    }
  });

  test('failOn: [] turns the check off; a list of RegExps replaces it', async () => {
    await withEchoGuest({ failOn: [] }, async (guest) => {
      await say(guest, '[    1.234567] BUG: kernel NULL pointer dereference');
      expect(guest.error).toBeUndefined();
    });
    const guest = await bootGuest({ kernel, ready, failOn: [/^MY-TEST-FAILED/g] });
    await say(guest, 'Kernel panic - not syncing: not in my list');
    expect(guest.error).toBeUndefined();
    await say(guest, 'not at the start: MY-TEST-FAILED');
    guest.serial.write('MY-TEST-FAILED: assertion\n');
    await guest.exited;
    expect(guest.error?.reason).toBe('kernel panic');
    expect(guest.error?.message).toMatch(/MY-TEST-FAILED: assertion.*failOn pattern \/\^MY-TEST-FAILED\//);
  });

  test('user-space crashes the kernel reports are warnings, and show in a later GuestError', async () => {
    const segfault = '[    3.141592] crashme[73]: segfault at 0 ip 0000000000401000 sp 00007ffd00000000 error 6 in crashme[401000+1000]';
    const gp = 'traps: gpme[74] general protection fault ip:401000 sp:7ffd00000000 error:0 in gpme[401000+1000]';
    const guest = await bootGuest({ kernel, ready });
    await say(guest, segfault);
    await say(guest, gp);
    await say(guest, 'an ordinary line');
    expect(guest.error).toBeUndefined();
    expect(guest.warnings).toEqual([segfault, gp]);
    guest.serial.write('Kernel panic - not syncing: end of test\n');
    await guest.exited;
    expect(guest.error?.warnings).toEqual([segfault, gp]);
    expect(guest.error?.message).toContain(`warnings (user-space crashes the kernel reported):\n${segfault}\n${gp}`);
  });
});

describe('wait strategies', () => {
  test('a wait reached after its boot deadline passed still looks once, then fails as a wait', async () => {
    // A slow host can spend the whole budget before the wait starts (seen under nested KVM).
    const serial = new SerialConsole(() => {});
    serial.push(Buffer.from('booted\n'));
    const past = { serial, since: 0, deadline: Date.now() - 5, deadlineSource: "the boot's timeoutMs", signal: new AbortController().signal };
    await expect(Wait.forSerial('booted').waitUntilReady(past)).resolves.toBeUndefined();
    const late = Wait.forSerial('never printed').waitUntilReady(past);
    await expect(late).rejects.toBeInstanceOf(WaitError);
    await expect(late).rejects.toThrow(/the console did not show never printed within the boot's timeoutMs \(0 ms left of it\)/);
  });

  test('ready takes Wait.forSerial and Wait.forAll', async () => {
    await withEchoGuest({ ready: Wait.forAll([Wait.forSerial(/echo ready/), Wait.forSerial('hyve-guest:', { timeoutMs: 5_000 })]) }, async (guest) => {
      expect(guest.phase).toBe('ready');
      await say(guest, 'hello');
    });
  });

  test('a failed wait names itself and how long it waited, carries the transcript, and tears the VM down', async () => {
    const before = children();
    const started = Date.now();
    const error = (await bootGuest({
      kernel,
      ready: Wait.forAll([Wait.forSerial(ready), Wait.forSerial(/login:/, { timeoutMs: 700 })]),
      timeoutMs: 30_000,
      onLog: () => {},
    })
      .catch((e: unknown) => e)) as GuestError;
    expect(Date.now() - started).toBeLessThan(20_000);
    expect(error).toBeInstanceOf(GuestError);
    expect(error.reason).toBe('timeout');
    expect(error.message).toMatch(/wait Wait\.forSerial\(\/login:\/, \{ timeoutMs: 700 \}\) failed after \d+ ms/);
    expect(error.message).toMatch(/its own timeout \(700 ms\)/);
    expect(error.message).toContain('in Wait.forAll([');
    expect(error.message).toContain(ready); // the transcript's last lines
    expect(error.transcriptPath).toBeTruthy();
    expect(children()).toEqual(before);
  });

  test("the boot's timeoutMs bounds a wait without its own timeout, and the VM is gone after", async () => {
    const before = children();
    const error = (await bootGuest({ kernel, ready: /never printed/, timeoutMs: 5000, onLog: () => {} }).catch((e: unknown) => e)) as GuestError;
    expect(error).toBeInstanceOf(GuestError);
    expect(error.message).toMatch(/Wait\.forSerial\(\/never printed\/\) failed after \d+ ms: .*the boot's timeoutMs/);
    expect(children()).toEqual(before);
  });
});
