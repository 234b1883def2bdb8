/** Messages between a caller and its VM child process (over Node's IPC channel). */
import type { ExitOutcome, NativeRestoreConfig, NativeVmConfig, SnapshotReport, VmStats } from './native.js';

export type ChildConfig = Omit<NativeVmConfig, 'onConsole' | 'onLog'>;

export type RestoreChildConfig = Omit<NativeRestoreConfig, 'onConsole' | 'onLog'> & {
  /** What the caller asked for; the child refuses a snapshot that differs (HYVE_BAD_SNAPSHOT). */
  expectSnapshot?: { memoryMiB?: number; cpus?: number; kernel?: string; initrd?: string; cmdline?: string };
};

export type ParentMessage =
  | { type: 'start'; config: ChildConfig | RestoreChildConfig }
  | { type: 'input'; port: number; data: string /* base64 */ }
  | { type: 'stats' }
  /** The caller saw the guest ready (a profiled VM marks that phase). */
  | { type: 'ready' }
  | { type: 'snapshot'; id: number; dir: string }
  | { type: 'stop' };

export type ChildMessage =
  /** `machineCreatedMs`: when the VMM began building the machine, in ms since the VM process started. */
  | { type: 'started'; pid: number; stats: VmStats | null; machineCreatedMs: number }
  | { type: 'console'; port: number; data: string /* base64 */ }
  | { type: 'log'; line: string }
  | { type: 'stats'; stats: VmStats | null }
  | { type: 'snapshot'; id: number; report?: SnapshotReport; error?: { code: string; message: string } }
  | { type: 'exit'; outcome: ExitOutcome; code: number; message: string; errorCode?: string; stats: VmStats | null }
  | { type: 'error'; code: string; message: string };
