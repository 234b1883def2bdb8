/**
 * A run() that times out must not leave its command holding the shell: the next run()
 * on the same (file-scoped) guest works. One default-guest boot for the file.
 */
import { afterAll, beforeAll, expect, test } from 'vitest';
import { bootGuest, GuestError, type Guest } from 'hyve';

const bootTimeout = 600_000;
let guest: Guest;

beforeAll(async () => {
  guest = await bootGuest();
}, bootTimeout);
afterAll(() => guest?.kill());

test(
  'a timed-out run() is interrupted, and the next run() works',
  async () => {
    const error = (await guest.run('sleep 1000', { timeoutMs: 3_000 }).catch((e: unknown) => e)) as GuestError;
    expect(error).toBeInstanceOf(GuestError);
    expect(error.reason).toBe('timeout');
    expect(error.message).toMatch(/run\("sleep 1000"\) timed out after 3000 ms; it was interrupted \(\^C\) and the shell answers again/);
    const { output, exitCode } = await guest.run('echo ok');
    expect({ output, exitCode }).toEqual({ output: 'ok\n', exitCode: 0 });
    // The interrupted sleep is gone, not running in the background.
    expect((await guest.run('pidof sleep || echo none')).output).toBe('none\n');
  },
  bootTimeout,
);

test(
  'a shell that does not come back makes later runs fail, saying why',
  async () => {
    // Ignore ^C in the shell and everything it starts: the interrupt cannot work.
    const error = (await guest.run("trap '' INT; sleep 1000", { timeoutMs: 3_000 }).catch((e: unknown) => e)) as GuestError;
    expect(error).toBeInstanceOf(GuestError);
    expect(error.reason).toBe('unusable');
    expect(error.message).toMatch(/the guest's shell is unusable: run\(.*sleep 1000.*\) timed out after 3000 ms, and after \^C the shell did not answer/);
    const next = (await guest.run('echo ok').catch((e: unknown) => e)) as GuestError;
    expect(next).toBe(error);
  },
  bootTimeout,
);
