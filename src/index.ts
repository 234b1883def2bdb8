/**
 * hyve: boot real virtual machines inside test suites.
 *
 * `startVm()` is the low-level entry: one VM in its own child process, its serial
 * console as events. `bootGuest()` (guest.ts) builds the test-facing API on top.
 */
import { VmProcess } from './vm-process.js';
import type { ChildConfig } from './protocol.js';

export { VmProcess, VmStartError, type VmExit } from './vm-process.js';
export type { ExitOutcome, VmStats, KernelInfo } from './native.js';

/** Options of a raw VM: a kernel, its initrd and command line, and the machine's shape. */
export type VmOptions = ChildConfig;

/** Starts a VM in its own child process. Await `vm.started` to learn whether it booted. */
export function startVm(options: VmOptions): VmProcess {
  return new VmProcess(options);
}
