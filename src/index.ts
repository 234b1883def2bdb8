/**
 * hyve: boot real virtual machines inside test suites.
 *
 * - `bootGuest()` boots a guest and hands back its console and a shell (`run()`).
 * - `startVm()` is the low-level entry: one VM in its own child process, its serial
 *   console as events, for bespoke guests that have no shell.
 */
import { VmProcess } from './vm-process.js';
import type { ChildConfig } from './protocol.js';

export { bootGuest, Guest, HYVE_KERNEL_ARGS } from './guest.js';
export type { BootGuestOptions, GuestExit, RunOptions, RunResult, SnapshotInfo } from './guest.js';
export { GuestError, type BootPhase } from './diagnostics.js';
export { SerialConsole, SerialTimeoutError, type WaitOptions } from './serial.js';
export { VmProcess, VmStartError, SnapshotError, type VmExit } from './vm-process.js';
export type { ExitOutcome, VmStats, KernelInfo, SnapshotReport, SnapshotHeader } from './native.js';
export {
  ensureDefaultGuest,
  defaultCacheDir,
  fetchDebianKernel,
  DEFAULT_READY_MARKER,
  type DefaultGuest,
  type DebianKernel,
} from './fixtures/index.js';
export { parseSize, parseMemoryMiB } from './size.js';
export {
  progressRenderer,
  formatProgress,
  type ProgressEvent,
  type ProgressListener,
  type ProgressPhase,
  type ProgressRenderer,
  type ProgressRendererOptions,
} from './progress.js';
export { ensureSnapshot, snapshotKey, type CachedSnapshot, type EnsureSnapshotOptions } from './snapshot-cache.js';
export { toCommandLine, fromCommandLine, shellQuote, type ToBootOptionsResult } from './cli/options.js';
export { UsageError, NotImplementedError } from './cli/args.js';
export { deriveMac } from './cli/mac.js';
export { uuidFromName } from './uuid.js';

/** Options of a raw VM: a kernel, its initrd and command line, and the machine's shape. */
export type VmOptions = ChildConfig;

/** Starts a VM in its own child process. Await `vm.started` to learn whether it booted. */
export function startVm(options: VmOptions): VmProcess {
  return new VmProcess(options);
}
