/**
 * hyve: boot real virtual machines inside test suites.
 *
 * - `bootGuest()` boots a guest and hands back its console and a shell (`run()`).
 * - `startVm()` is the low-level entry: one VM in its own child process, its serial
 *   console as events, for bespoke guests that have no shell.
 */
import path from 'node:path';
import { VmProcess, SnapshotError } from './vm-process.js';
import type { ChildConfig } from './protocol.js';
import { loadAddon, type SnapshotHeader } from './native.js';
import { DEFAULT_MEMORY_MIB } from './size.js';
import { validateDirectory, validateStartVmOptions } from './validate.js';

export { bootGuest, Guest, HYVE_KERNEL_ARGS, requireHypervisor } from './guest.js';
export type { BootGuestOptions, GuestExit, RunOptions, RunResult, SnapshotInfo } from './guest.js';
export { GuestError, KERNEL_FAILURE_PATTERNS, USER_CRASH_PATTERNS, type BootPhase } from './diagnostics.js';
export { Wait, WaitError, type WaitStrategy, type WaitContext, type ForSerialOptions } from './wait.js';
export {
  BOOT_GUEST_OPTION_NAMES,
  ENSURE_SNAPSHOT_OPTION_NAMES,
  GUEST_TEST_OPTION_NAMES,
  MACHINE_OPTION_NAMES,
  DISK_OPTION_NAMES,
  RESTORE_OPTION_NAMES,
  RUN_OPTION_NAMES,
  SHUTDOWN_OPTION_NAMES,
  START_VM_OPTION_NAMES,
  WAIT_OPTION_NAMES,
  MAX_CPUS,
} from './validate.js';
export { SerialConsole, SerialTimeoutError, type SerialConsoleOptions, type WaitOptions } from './serial.js';
export { VmProcess, VmStartError, SnapshotError, type VmExit } from './vm-process.js';
export { HyveError } from './errors.js';
export type { ExitOutcome, VmStats, KernelInfo, SnapshotReport, SnapshotHeader, HypervisorInfo } from './native.js';
export {
  ensureDefaultGuest,
  defaultCacheDir,
  fetchDebianKernel,
  DEFAULT_READY_MARKER,
  type DefaultGuest,
  type DebianKernel,
} from './fixtures/index.js';
export { parseSize, parseMemoryMiB, DEFAULT_MEMORY_MIB } from './size.js';
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
export type { DiskInterface, DiskOptions } from './disks.js';
export { USER_NET, type NetworkOption, type PortForward } from './network.js';
export { VsockError, type VsockErrorCode, type ConnectOptions } from './vsock.js';
export { SshError, type SshErrorCode, type SshOptions, type ExecOptions, type ExecResult, type SpawnedCommand, type CommandExit } from './ssh.js';
export { appendSshOverlay, ensureSshOverlay, sshFingerprint, SSH_KERNEL_ARGS, SSH_NETWORK_KERNEL_ARG, SSH_TCP_PORT, SSH_VSOCK_PORT, type SshIdentity, type SshOverlay } from './fixtures/ssh-overlay.js';
export {
  loadSymbols,
  parseFolded,
  formatFolded,
  symbolize,
  summarize,
  formatReport,
  readPhases,
  formatPhases,
  type PhaseRecord,
  type ProfileOptions,
  type SymbolTable,
  type FoldedStack,
  type FunctionCost,
  type ProfileSummary,
} from './profile/index.js';

/** Options of a raw VM: a kernel, its initrd and command line, and the machine's shape. */
export type VmOptions = ChildConfig;

/**
 * Starts a VM in its own child process. Await `vm.started` to learn whether it booted.
 * Options of the wrong type or name throw a VmStartError (HYVE_BAD_CONFIG) at once, before
 * any process starts. Defaults: 256 MiB, 1 vCPU, ACPI, MP table, x2APIC, RTC in UTC
 * (as bootGuest; the CLI follows xhyve instead, see docs/options.md).
 */
export function startVm(options: VmOptions): VmProcess {
  validateStartVmOptions(options);
  const profile = options.profile && {
    ...options.profile,
    file: path.resolve(options.profile.file),
    ...(options.profile.symbols ? { symbols: path.resolve(options.profile.symbols) } : {}),
  };
  return new VmProcess({ ...options, memoryMiB: options.memoryMiB ?? DEFAULT_MEMORY_MIB, ...(profile ? { profile } : {}) });
}

/**
 * Reads a snapshot directory's header (hyve version, machine, kernel, cmdline, sections)
 * without restoring it. A damaged or foreign snapshot throws SnapshotError HYVE_BAD_SNAPSHOT.
 */
export function inspectSnapshot(dir: string): SnapshotHeader {
  validateDirectory(dir, 'inspectSnapshot');
  try {
    return loadAddon().inspectSnapshot(path.resolve(dir));
  } catch (error) {
    const e = error as Error & { code?: string };
    throw new SnapshotError(e.message, e.code ?? 'HYVE_BAD_SNAPSHOT');
  }
}
