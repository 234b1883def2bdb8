/** Messages between a caller and its VM child process (over Node's IPC channel). */
import type { ExitOutcome, NativeVmConfig, VmStats } from './native.js';

export type ChildConfig = Omit<NativeVmConfig, 'onConsole' | 'onLog'>;

export type ParentMessage =
  | { type: 'start'; config: ChildConfig }
  | { type: 'input'; port: number; data: string /* base64 */ }
  | { type: 'stats' }
  | { type: 'stop' };

export type ChildMessage =
  /** `machineCreatedMs`: when the VMM began building the machine, in ms since the VM process started. */
  | { type: 'started'; pid: number; stats: VmStats | null; machineCreatedMs: number }
  | { type: 'console'; port: number; data: string /* base64 */ }
  | { type: 'log'; line: string }
  | { type: 'stats'; stats: VmStats | null }
  | { type: 'exit'; outcome: ExitOutcome; code: number; message: string; stats: VmStats | null }
  | { type: 'error'; code: string; message: string };
