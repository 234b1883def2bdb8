/**
 * Guest user space under the load a real test suite makes: test/guest-programs/torture.c
 * (pipelines of megabytes, fork/exec, threads with TLS, signals during blocking syscalls,
 * arch_prctl, sched_yield ping-pong, every preserved register and xmm register checked
 * around syscalls, and the ymm/zmm registers the CPU says are usable checked across task
 * switches) in the default guest, cold-booted and restored. (A 2-vCPU default
 * guest stalled in PID 1's ChaCha20 entropy loop on this PVM host, RCU stall warnings
 * and no progress for 20 minutes, in two CI runs: that boot is an open problem, so the
 * 2-vCPU run is not here yet.)
 * On PVM hosts every user-mode syscall goes through hyve's syscall bridge
 * (native/pvm/syscall_bridge.h), which is what this guards.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { bootGuest, ensureDefaultGuest, type Guest } from 'hyve';
import { concatInitrds, CpioWriter } from '../src/fixtures/index.js';
import { buildGuestProgram } from './helpers/guests.js';

const work = mkdtempSync(path.join(os.tmpdir(), 'hyve-userspace-'));
let kernel = '';
let initrd = '';

beforeAll(async () => {
  const defaults = await ensureDefaultGuest();
  kernel = defaults.kernel;
  // The kernel unpacks concatenated archives: the default initramfs plus /opt/torture.
  const overlay = new CpioWriter().dir('opt').fileFromHost('opt/torture', buildGuestProgram('torture'), 0o755);
  initrd = path.join(work, 'initrd.cpio');
  writeFileSync(initrd, concatInitrds([readFileSync(defaults.initrd), overlay.toBuffer()]));
}, 900_000);

afterAll(() => rmSync(work, { recursive: true, force: true }));

// Boots here share 2 cores with the rest of the suite (on PVM a 2-vCPU boot beside
// Debian's stock kernel took over 300 s): the boot is not what these tests time.
const bootTimeoutMs = 1_200_000;

/** Runs the torture program and checks its summary and the console for user-space crashes. */
async function torture(guest: Guest): Promise<void> {
  const since = guest.serial.output.length;
  const { output, exitCode } = await guest.run('/opt/torture 1', { timeoutMs: 900_000 });
  const stats = await guest.stats();
  const pins = Object.entries(stats?.exits ?? {}).filter(([key]) => key.startsWith('pvm:xstate'));
  console.log(`torture: ${output.split('\n').find((line) => line.startsWith('torture: vector')) ?? 'no vector line'}; pins ${JSON.stringify(pins)}`);
  const failed = output.split('\n').filter((line) => line.includes(' FAIL '));
  expect(failed).toEqual([]);
  expect(output).toMatch(/^torture: summary 10 passed, 0 failed$/m);
  expect(exitCode).toBe(0);
  // The kernel reports a crashed user process on the console (segfault, general protection).
  expect(guest.serial.output.slice(since)).not.toMatch(/segfault at|general protection|traps:|invalid opcode/);
  if (stats?.pvm) {
    // The torture's vector part passing depends on user mode running with XCR0 = x87|SSE
    // (native/pvm/user_xstate.h): KVM took the pin, in this boot or the snapshot's.
    expect(stats.exits['pvm:xstate-pin-refused'] ?? 0).toBe(0);
    expect(output).toMatch(/^torture: vector ok AVX state not enabled \(xcr0 0x3\)/m);
  }
}

describe('user space under load', () => {
  test('1 vCPU: cold-booted, then restored from a snapshot', async () => {
    const guest = await bootGuest({ kernel, initrd, cpus: 1, timeoutMs: bootTimeoutMs });
    try {
      await torture(guest);
      await guest.snapshot(path.join(work, 'snapshot'));
    } finally {
      await guest.kill();
    }
    const restored = await bootGuest({ snapshot: path.join(work, 'snapshot'), timeoutMs: bootTimeoutMs });
    try {
      await torture(restored);
    } finally {
      await restored.kill();
    }
  }, 3_600_000);
});
