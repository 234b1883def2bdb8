/** A VM never outlives the process that started it, even when that process is SIGKILLed. */
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import { expect, onTestFinished, test } from 'vitest';
import { buildGuest } from './helpers/guests.js';
import { alive } from './helpers/processes.js';

/** Starts a process that starts a VM; returns both pids once the guest runs. */
async function parentWithVm(): Promise<{ parent: ReturnType<typeof spawn>; vmPid: number }> {
  // The 'uart' guest waits for console input forever: only its parent's death ends it.
  const script = fileURLToPath(new URL('./helpers/vm-parent.mjs', import.meta.url));
  const parent = spawn(process.execPath, [script, buildGuest('uart')], { stdio: ['ignore', 'pipe', 'pipe'] });
  onTestFinished(() => {
    parent.kill('SIGKILL');
  });
  let out = '';
  parent.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  parent.stderr!.on('data', (d: Buffer) => (out += d.toString()));
  // Generous: a loaded emulated host took more than 30 s to start node, hyve and the guest.
  const deadline = Date.now() + 120_000;
  while (!/VM-PID (\d+)/.test(out) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
  const vmPid = Number(/VM-PID (\d+)/.exec(out)?.[1]);
  expect(vmPid, out).toBeGreaterThan(0);
  expect(alive(vmPid)).toBe(true);
  onTestFinished(() => {
    if (alive(vmPid)) process.kill(vmPid, 'SIGKILL');
  });
  return { parent, vmPid };
}

async function killAndExpectGone(parent: ReturnType<typeof spawn>, vmPid: number): Promise<void> {
  parent.kill('SIGKILL');
  await once(parent, 'exit');
  const gone = Date.now() + 30_000;
  while (alive(vmPid) && Date.now() < gone) await new Promise((r) => setTimeout(r, 50));
  expect(alive(vmPid)).toBe(false);
}

test('SIGKILL of the test runner takes its VM processes down with it', async () => {
  const { parent, vmPid } = await parentWithVm();
  await killAndExpectGone(parent, vmPid);
}, 180_000);

test('a VM process that cannot run any JavaScript still dies with its parent (PR_SET_PDEATHSIG)', async () => {
  // Stopped, the VM process runs nothing: no 'disconnect' or signal handler, as when
  // native code blocks. Only the kernel's parent-death signal can end it.
  const { parent, vmPid } = await parentWithVm();
  process.kill(vmPid, 'SIGSTOP');
  await killAndExpectGone(parent, vmPid);
}, 180_000);
