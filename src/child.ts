/**
 * The VM child process: loads the addon, runs one machine, relays console bytes and
 * the outcome to the parent. It exits when the parent goes away, so no VM outlives
 * the test runner.
 */
import { loadAddon, type NativeVm } from './native.js';
import type { ChildMessage, ParentMessage } from './protocol.js';

function send(message: ChildMessage, then?: () => void): void {
  if (process.connected && process.send) process.send(message, undefined, {}, () => then?.());
  else then?.();
}

let vm: NativeVm | undefined;

function shutdown(exitCode: number): never {
  try {
    vm?.close();
  } finally {
    process.exit(exitCode);
  }
}

function start(config: Extract<ParentMessage, { type: 'start' }>['config']): void {
  let machine: NativeVm;
  const machineCreatedMs = performance.now();
  try {
    const { Vm } = loadAddon();
    machine = new Vm({
      ...config,
      onConsole: (port, data) => send({ type: 'console', port, data: data.toString('base64') }),
      onLog: (line) => send({ type: 'log', line }),
    });
    vm = machine;
  } catch (error) {
    const e = error as Error & { code?: string };
    send({ type: 'error', code: e.code ?? 'HYVE_INTERNAL', message: e.message }, () => shutdown(1));
    return;
  }
  const exited = machine.start();
  send({ type: 'started', pid: process.pid, stats: machine.stats(), machineCreatedMs });
  exited.then(
    (exit) => {
      process.exitCode = exit.code;
      const stats = machine.stats();
      machine.close();
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
