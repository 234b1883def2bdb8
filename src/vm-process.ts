/**
 * The parent's handle on one VM child process: starts it, streams console bytes,
 * forwards input, and reports how it ended. A crash or SIGKILL of the child becomes
 * an outcome here, never an exception in the caller's process.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { EventEmitter } from 'node:events';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { HyveError } from './errors.js';
import type { ExitOutcome, SnapshotReport, VmStats } from './native.js';
import type { ChildConfig, ChildMessage, ParentMessage, RestoreChildConfig } from './protocol.js';

/** How the VM ended. `code` follows xhyve: 0 poweroff/halt, 1 error, 2 reboot, 3 triple fault. */
export interface VmExit {
  outcome: ExitOutcome;
  code: number;
  /** Why it ended, for errors (empty for a clean poweroff; `halted: ...` for a halt, every vCPU in `cli; hlt`). */
  message: string;
  /**
   * A stable code when the VMM knows the cause of an error: `HYVE_BAD_SNAPSHOT` when the
   * snapshot's memory.bin shrank (was truncated or rewritten) under a restored VM.
   */
  errorCode?: string;
  /** Set when the child process itself died (crash, SIGKILL) rather than the guest ending. */
  signal?: NodeJS.Signals | null;
  stats: VmStats | null;
}

/** An error the VMM reported before the guest could run (bad kernel, no /dev/kvm, ...). */
export class VmStartError extends HyveError {
  /** `code` is a stable code such as HYVE_BAD_KERNEL, HYVE_NO_KVM, HYVE_MEMORY. */
  override readonly name = 'VmStartError';
}

/** A snapshot could not be taken or restored. `code` is e.g. HYVE_BAD_SNAPSHOT, HYVE_INTERNAL. */
export class SnapshotError extends HyveError {
  override readonly name = 'SnapshotError';
}

interface VmProcessEvents {
  console: [port: number, data: Buffer];
  log: [line: string];
}

const childScript = path.join(path.dirname(fileURLToPath(import.meta.url)), 'child.js');

function forkChild(): ChildProcess {
  // Our pid: the child checks that it still has this parent once it has asked the kernel
  // to kill it when the parent dies (PR_SET_PDEATHSIG, src/child.ts).
  return fork(childScript, [String(process.pid)], {
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    serialization: 'json',
  });
}

// A VM process forked ahead of need, with the addon already loaded. Starting Node in a
// new process is most of what a restore costs (tens of ms against ~2 ms in the VMM), so
// after a restore the next one is prepared in the background. It holds no VM, does not
// keep this process alive, and exits with it (the child ends when its channel closes).
let spare: ChildProcess | undefined;

function prepareSpare(): void {
  if (spare) return;
  const child = forkChild();
  child.on('error', () => {});
  child.once('exit', () => {
    if (spare === child) spare = undefined;
  });
  child.unref();
  child.channel?.unref();
  spare = child;
}

function takeSpare(): ChildProcess | undefined {
  const child = spare;
  spare = undefined;
  if (!child || child.exitCode !== null || child.signalCode !== null || !child.connected) return undefined;
  child.ref();
  child.channel?.ref();
  return child;
}

export class VmProcess extends EventEmitter<VmProcessEvents> {
  /** Resolves once the VM has ended, however it ended. Never rejects. */
  readonly exited: Promise<VmExit>;
  /** Resolves when the guest starts running; rejects with VmStartError if it never does. */
  readonly started: Promise<VmStats | null>;
  readonly pid: number | undefined;
  /** When the VMM began building the machine, in ms after the VM process started. */
  machineCreatedMs: number | undefined;
  private readonly child: ChildProcess;
  private exitInfo: VmExit | undefined;

  /** Boots `config`, or restores a snapshot (RestoreChildConfig). */
  constructor(config: ChildConfig | RestoreChildConfig) {
    super();
    const restoring = 'snapshot' in config;
    this.child = (restoring ? takeSpare() : undefined) ?? forkChild();
    this.pid = this.child.pid;
    let resolveStarted!: (stats: VmStats | null) => void;
    let rejectStarted!: (error: Error) => void;
    this.started = new Promise((resolve, reject) => {
      resolveStarted = resolve;
      rejectStarted = reject;
    });
    this.started.catch(() => {}); // observed through exited as well
    let startError: VmStartError | undefined;
    let reported: VmExit | undefined;
    this.child.on('message', (message: ChildMessage) => {
      switch (message.type) {
        case 'console':
          this.emit('console', message.port, Buffer.from(message.data, 'base64'));
          break;
        case 'log':
          this.emit('log', message.line);
          break;
        case 'started':
          this.machineCreatedMs = message.machineCreatedMs;
          resolveStarted(message.stats);
          break;
        case 'exit':
          reported = {
            outcome: message.outcome,
            code: message.code,
            message: message.message,
            ...(message.errorCode ? { errorCode: message.errorCode } : {}),
            stats: message.stats,
          };
          break;
        case 'error':
          startError = new VmStartError(message.message, message.code);
          rejectStarted(startError);
          break;
        case 'stats':
          this.statsWaiters.shift()?.(message.stats);
          break;
        case 'snapshot': {
          const waiter = this.snapshotWaiters.get(message.id);
          this.snapshotWaiters.delete(message.id);
          if (message.report) {
            // Synchronously, before any later console message is emitted: what the caller
            // has received by now is exactly the output from before the pause.
            waiter?.onPaused?.();
            waiter?.resolve(message.report);
          }
          else waiter?.reject(new SnapshotError(message.error?.message ?? 'snapshot failed', message.error?.code ?? 'HYVE_INTERNAL'));
          break;
        }
      }
    });
    this.exited = new Promise((resolve) => {
      this.child.on('exit', (code, signal) => {
        const exit: VmExit = reported ?? {
          outcome: 'error',
          code: 1,
          message: startError
            ? startError.message
            : signal
              ? `the VM process was killed by ${signal}`
              : `the VM process exited with status ${code} before the guest ended`,
          signal,
          stats: null,
        };
        this.exitInfo = exit;
        rejectStarted(startError ?? new VmStartError(exit.message, 'HYVE_VM_DIED'));
        for (const waiter of this.statsWaiters.splice(0)) waiter(null);
        for (const waiter of this.snapshotWaiters.values()) {
          waiter.reject(new SnapshotError(`the VM ended before the snapshot was taken: ${exit.message}`, 'HYVE_VM_DIED'));
        }
        this.snapshotWaiters.clear();
        resolve(exit);
      });
    });
    this.post({ type: 'start', config });
    // Restores come in series (a guest per test): have the next VM process ready.
    if (restoring) this.started.then(prepareSpare, () => {});
  }

  private readonly statsWaiters: ((stats: VmStats | null) => void)[] = [];
  private readonly snapshotWaiters = new Map<
    number,
    { resolve: (r: SnapshotReport) => void; reject: (e: Error) => void; onPaused?: () => void }
  >();
  private nextSnapshotId = 1;

  /**
   * Pauses the VM, writes its complete state to `dir` (state.bin and memory.bin), and lets
   * it continue. Console bytes the guest wrote before the pause have all been emitted when
   * this resolves; `onPaused` runs when the last of them has been emitted and before any
   * later one is.
   */
  snapshot(dir: string, onPaused?: () => void): Promise<SnapshotReport> {
    if (this.exitInfo) return Promise.reject(new SnapshotError('the VM has ended', 'HYVE_VM_DIED'));
    const id = this.nextSnapshotId++;
    return new Promise((resolve, reject) => {
      this.snapshotWaiters.set(id, { resolve, reject, onPaused });
      this.post({ type: 'snapshot', id, dir: path.resolve(dir) });
    });
  }

  /** How the VM ended, once it has. */
  get exit(): VmExit | undefined {
    return this.exitInfo;
  }

  /** Sends bytes to a guest serial port (0 = COM1, 1 = COM2). */
  write(data: string | Uint8Array, port = 0): void {
    const bytes = typeof data === 'string' ? Buffer.from(data, 'utf8') : Buffer.from(data);
    this.post({ type: 'input', port, data: bytes.toString('base64') });
  }

  /** Current VMM counters (exits by reason, timings). Null once the VM is gone. */
  stats(): Promise<VmStats | null> {
    if (this.exitInfo) return Promise.resolve(this.exitInfo.stats);
    return new Promise((resolve) => {
      this.statsWaiters.push(resolve);
      this.post({ type: 'stats' });
    });
  }

  /** Tells the VM the caller saw the guest ready (a profiled VM marks that phase). */
  markReady(): void {
    this.post({ type: 'ready' });
  }

  /** Ends the VM from the host side (outcome 'error'), then waits for the process. */
  async stop(): Promise<VmExit> {
    this.post({ type: 'stop' });
    return this.exited;
  }

  /** SIGKILLs the VM process. */
  kill(): Promise<VmExit> {
    if (!this.exitInfo) this.child.kill('SIGKILL');
    return this.exited;
  }

  private post(message: ParentMessage): void {
    // A VM process that has just exited may still look connected: the write then fails
    // with EPIPE, which without a callback is an uncaught 'error'. Its exit reports why.
    if (this.child.connected) this.child.send(message, () => {});
  }
}
