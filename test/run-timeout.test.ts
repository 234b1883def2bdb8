/**
 * A run() that times out must not leave its command holding the shell: the next run()
 * on the same guest works. Each test gets its own guest restored from the default
 * guest's shared snapshot (one boot for every file that uses it, or none when cached).
 */
import { beforeAll, expect } from 'vitest';
import { GuestError } from 'hyve';
import { guestTest } from 'hyve/vitest';
import { runCommand } from './helpers/console.js';

const bootTimeout = 1_000_000; // a boot behind the snapshot on a loaded PVM host: minutes
const test = guestTest({ snapshot: 'auto', timeoutMs: 900_000 });

beforeAll(() => test.prepareSnapshot(), bootTimeout);

test(
  'a timed-out run() is interrupted, and the next run() works',
  async ({ guest }) => {
    const error = (await guest.run('sleep 1000', { timeoutMs: 3_000 }).catch((e: unknown) => e)) as GuestError;
    expect(error).toBeInstanceOf(GuestError);
    expect(error.reason).toBe('timeout');
    expect(error.message).toMatch(/run\("sleep 1000"\) timed out after 3000 ms; it was interrupted \(\^C\) and the shell answers again/);
    const { output, exitCode } = await runCommand(guest, 'echo ok');
    expect({ output, exitCode }).toEqual({ output: 'ok\n', exitCode: 0 });
    // The interrupted sleep is gone, not running in the background.
    expect((await runCommand(guest, 'pidof sleep || echo none')).output).toBe('none\n');
  },
  bootTimeout,
);

test(
  'a shell that does not come back makes later runs fail, saying why',
  async ({ guest }) => {
    // Ignore ^C in the console shell itself (run() evaluates commands in it), and so in
    // everything it starts: the interrupt cannot work. Set first, in a run() of its own,
    // so that a ^C can never arrive before the trap is in place (on a loaded PVM host a
    // command can take longer than the 3 s timeout below just to start).
    expect((await guest.run("trap '' INT")).exitCode).toBe(0);
    const error = (await guest.run('sleep 1000', { timeoutMs: 3_000 }).catch((e: unknown) => e)) as GuestError;
    expect(error).toBeInstanceOf(GuestError);
    expect(error.reason).toBe('unusable');
    expect(error.message).toMatch(/the guest's shell is unusable: run\(.*sleep 1000.*\) timed out after 3000 ms, and after \^C the shell did not answer/);
    const next = (await guest.run('echo ok').catch((e: unknown) => e)) as GuestError;
    expect(next).toBe(error);
  },
  bootTimeout,
);
