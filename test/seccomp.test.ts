/**
 * The per-thread seccomp filters (native/util/seccomp*.cc): every thread that serves the
 * guest runs confined, a forbidden call ends the VM with an error naming it, and
 * HYVE_SECCOMP=off turns the filters off. Bespoke guests only.
 */
import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, test } from 'vitest';
import { startVm, type VmOptions, type VmProcess } from 'hyve';
import { buildGuest } from './helpers/guests.js';

const dir = mkdtempSync(path.join(os.tmpdir(), 'hyve-seccomp-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** The VM process's threads: name (comm) and seccomp mode (0 none, 2 filter). */
function threadsOf(pid: number): { name: string; seccomp: number }[] {
  const tasks = `/proc/${pid}/task`;
  return readdirSync(tasks).map((tid) => {
    const status = readFileSync(path.join(tasks, tid, 'status'), 'utf8');
    return {
      name: readFileSync(path.join(tasks, tid, 'comm'), 'utf8').trim(),
      seccomp: Number(/^Seccomp:\s+(\d+)/m.exec(status)?.[1]),
    };
  });
}

/** Starts the UART guest (it waits for a line of input, so the VM stays up) and waits for its prompt. */
async function startWaitingGuest(options: Partial<VmOptions> = {}, env: Record<string, string> = {}): Promise<VmProcess> {
  const saved = Object.fromEntries(Object.keys(env).map((k) => [k, process.env[k]]));
  Object.assign(process.env, env);  // the VM process is forked with this environment
  let vm: VmProcess;
  try {
    vm = startVm({ kernel: buildGuest('uart'), memoryMiB: 64, ...options });
  } finally {
    for (const [k, v] of Object.entries(saved)) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
  }
  await new Promise<void>((resolve, reject) => {
    let text = '';
    vm.on('console', (_port, data) => {
      text += data.toString('latin1');
      if (text.includes('type a line')) resolve();
    });
    void vm.exited.then((exit) => reject(new Error(`the VM ended early: ${exit.message}`)));
  });
  return vm;
}

describe('seccomp filters', () => {
  test('every guest-facing thread is confined: vCPUs, timers, the halt watch, the profiler clock, virtio workers', async () => {
    const disk = path.join(dir, 'disk.img');
    writeFileSync(disk, Buffer.alloc(1 << 20));
    const vm = await startWaitingGuest({
      cpus: 2,
      pciDevices: [
        { slot: 0, emulation: 'hostbridge' },
        { slot: 31, emulation: 'lpc' },
        { slot: 3, emulation: 'virtio-rnd' },
        { slot: 4, emulation: 'virtio-blk', args: disk },
        { slot: 30, emulation: 'virtio-vsock', args: path.join(dir, 'vsock.sock') },
      ],
      profile: { file: path.join(dir, 'profile.folded') },
    });
    try {
      const expected = ['hyve-halt-watch', 'hyve-hpet', 'hyve-profiler', 'hyve-rtc', 'hyve-vcpu', 'hyve-vcpu', 'hyve-virtio-blk', 'hyve-virtio-rng', 'hyve-virtio-vso'];
      // Each thread names and confines itself when it first runs, which on a loaded host can
      // come after the guest's prompt: wait (bounded) until all of them have.
      let threads = threadsOf(vm.pid!);
      const settled = () => {
        const ours = threads.filter((t) => t.name.startsWith('hyve-'));
        return ours.length === expected.length && ours.every((t) => t.seccomp === 2);
      };
      for (const deadline = Date.now() + 20_000; !settled() && Date.now() < deadline; threads = threadsOf(vm.pid!)) {
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
      const ours = threads.filter((t) => t.name.startsWith('hyve-'));
      expect(ours.map((t) => t.name).sort()).toEqual(expected);
      for (const t of ours) expect(t, t.name).toMatchObject({ seccomp: 2 });
      // Node's own threads (the JS thread, libuv and V8 workers) are not the guest's to reach.
      expect(threads.find((t) => !t.name.startsWith('hyve-'))?.seccomp).toBe(0);
    } finally {
      await vm.kill();
    }
  });

  test('a forbidden call ends the VM with an error naming the thread and the call', async () => {
    // HYVE_SECCOMP_SELFTEST: vCPU 0 calls socket() right after loading its filter.
    // The UART guest would wait for input for ever: only the filter can end this VM.
    process.env.HYVE_SECCOMP_SELFTEST = 'forbidden-call';
    let vm: VmProcess;
    try {
      vm = startVm({ kernel: buildGuest('uart'), memoryMiB: 64 });
    } finally {
      delete process.env.HYVE_SECCOMP_SELFTEST;
    }
    const exit = await vm.exited;
    expect(exit.outcome).toBe('error');
    expect(exit.message).toMatch(/^thread hyve-vcpu made a system call its seccomp filter forbids: socket \(41\)/);
  });

  test('HYVE_SECCOMP=off runs the threads unconfined (for debugging)', async () => {
    const vm = await startWaitingGuest({}, { HYVE_SECCOMP: 'off' });
    try {
      const vcpu = threadsOf(vm.pid!).find((t) => t.name === 'hyve-vcpu');
      expect(vcpu).toEqual({ name: 'hyve-vcpu', seccomp: 0 });
    } finally {
      await vm.kill();
    }
  });
});
