/**
 * The VM child process: loads the addon, runs one machine, relays console bytes and
 * the outcome to the parent. It exits when the parent goes away, so no VM outlives
 * the test runner.
 */
import { loadAddon, type NativeVm } from './native.js';
import type { ChildMessage, ParentMessage } from './protocol.js';
import { finishProfile } from './profile/finish.js';
import { PhaseRecorder } from './profile/phases.js';

function send(message: ChildMessage, then?: () => void): void {
  if (message.type !== 'console') flushConsole();  // console bytes stay ahead of what follows them
  if (process.connected && process.send) process.send(message, undefined, {}, () => then?.());
  else then?.();
}

// A slow guest prints a byte at a time; one IPC message per byte would cost the parent
// far more than the bytes are worth. Console output is gathered for a couple of
// milliseconds (or up to 16 KiB) per message instead.
const consoleBatchMs = 2;
const consoleBatchBytes = 16 * 1024;
const pendingConsole: Buffer[][] = [[], []];
let pendingConsoleBytes = 0;
let consoleTimer: NodeJS.Timeout | undefined;

function queueConsole(port: number, data: Buffer): void {
  pendingConsole[port]?.push(data);
  pendingConsoleBytes += data.length;
  if (pendingConsoleBytes >= consoleBatchBytes) flushConsole();
  else consoleTimer ??= setTimeout(flushConsole, consoleBatchMs);
}

function flushConsole(): void {
  if (consoleTimer) clearTimeout(consoleTimer);
  consoleTimer = undefined;
  pendingConsoleBytes = 0;
  pendingConsole.forEach((chunks, port) => {
    if (chunks.length === 0) return;
    const data = Buffer.concat(chunks.splice(0));
    send({ type: 'console', port, data: data.toString('base64') });
  });
}

let vm: NativeVm | undefined;
// A profiled VM's boot phases, marked by the VM's clock and the profiler's sample count.
let phases: PhaseRecorder | undefined;

// Load the addon now: a process forked ahead of need (a spare for restores) is then
// ready the moment its 'start' arrives. A failure is reported when 'start' retries it.
// The kernel then kills this process when its parent dies, even while native code blocks
// (a 'disconnect' handler needs the event loop); the parent passes its pid as argv[2].
try {
  const parentPid = Number(process.argv[2]);
  if (Number.isInteger(parentPid) && parentPid > 0 && !loadAddon().dieWithParent(parentPid)) process.exit(1);
} catch {
  // reported by start()
}

function shutdown(exitCode: number): never {
  try {
    vm?.close();
  } finally {
    process.exit(exitCode);
  }
}

type StartConfig = Extract<ParentMessage, { type: 'start' }>['config'];

/** Refuses a snapshot whose machine differs from what the caller explicitly asked for. */
function checkSnapshot(config: StartConfig): void {
  if (!('snapshot' in config) || !config.expectSnapshot) return;
  const expect = config.expectSnapshot;
  const header = loadAddon().inspectSnapshot(config.snapshot);
  const differences = (
    [
      ['memoryMiB', expect.memoryMiB, header.memoryMiB],
      ['cpus', expect.cpus, header.cpus],
      ['kernel', expect.kernel, header.kernel],
      ['initrd', expect.initrd, header.initrd],
      ['cmdline', expect.cmdline, header.cmdline],
    ] as const
  ).filter(([, wanted, actual]) => wanted !== undefined && wanted !== actual);
  if (differences.length > 0) {
    const error = new Error(
      `snapshot ${config.snapshot} was taken of a different machine: ` +
        differences.map(([name, wanted, actual]) => `${name} is ${JSON.stringify(actual)}, not ${JSON.stringify(wanted)}`).join('; '),
    ) as Error & { code: string };
    error.code = 'HYVE_BAD_SNAPSHOT';
    throw error;
  }
}

function start(config: StartConfig): void {
  let machine: NativeVm;
  const machineCreatedMs = performance.now();
  try {
    const { Vm } = loadAddon();
    checkSnapshot(config);
    const vmConfig = { ...config };
    if ('expectSnapshot' in vmConfig) delete vmConfig.expectSnapshot;
    machine = new Vm({
      ...vmConfig,
      onConsole: (port, data) => {
        phases?.console(data);
        queueConsole(port, data);
      },
      onLog: (line) => send({ type: 'log', line }),
    });
    vm = machine;
  } catch (error) {
    const e = error as Error & { code?: string };
    send({ type: 'error', code: e.code ?? 'HYVE_INTERNAL', message: e.message }, () => shutdown(1));
    return;
  }
  const runStartMs = performance.now();
  if (config.profile) phases = new PhaseRecorder(() => ({ ms: performance.now() - runStartMs, samples: machine.stats()?.profileSamples ?? 0 }));
  const exited = machine.start();
  send({ type: 'started', pid: process.pid, stats: machine.stats(), machineCreatedMs });
  exited.then(
    (exit) => {
      process.exitCode = exit.code;
      const stats = machine.stats();
      phases?.mark('end');
      machine.close();  // joins the vCPU threads; the VMM writes the profile then
      if (config.profile) {
        const problem = finishProfile(config.profile, 'kernel' in config ? config.kernel : undefined);
        if (problem) send({ type: 'log', line: problem });
        else phases?.write(config.profile.file);
      }
      // Exit only once the outcome has reached the parent.
      send({ type: 'exit', ...exit, stats }, () => shutdown(exit.code));
    },
    (error: Error) => send({ type: 'error', code: 'HYVE_INTERNAL', message: error.message }, () => shutdown(1)),
  );
}

process.on('message', (message: ParentMessage) => {
  switch (message.type) {
    case 'start':
      start(message.config);
      break;
    case 'input':
      vm?.writeConsole(message.port, Buffer.from(message.data, 'base64'));
      break;
    case 'stats':
      send({ type: 'stats', stats: vm?.stats() ?? null });
      break;
    case 'snapshot':
      try {
        if (!vm) throw new Error('the VM is not running');
        // Synchronous: console bytes from before the pause are sent ahead of this reply.
        send({ type: 'snapshot', id: message.id, report: vm.snapshot(message.dir) });
      } catch (error) {
        const e = error as Error & { code?: string };
        send({ type: 'snapshot', id: message.id, error: { code: e.code ?? 'HYVE_INTERNAL', message: e.message } });
      }
      break;
    case 'ready':
      phases?.mark('ready');
      break;
    case 'stop':
      vm?.stop();
      break;
  }
});

// The parent died or closed the channel: take the VM down with us.
process.on('disconnect', () => {
  if (vm) vm.stop();
  shutdown(typeof process.exitCode === 'number' ? process.exitCode : 1);
});
for (const signal of ['SIGTERM', 'SIGINT', 'SIGHUP'] as const) process.on(signal, () => shutdown(1));
