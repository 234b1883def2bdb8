/**
 * Loading the native VMM addon (built by node-gyp from binding.gyp) and its types.
 * Only the child runner loads it: a VMM crash then never takes down the caller.
 */
import { createRequire } from 'node:module';
import { existsSync } from 'node:fs';
import { packageRoot } from './paths.js';
import path from 'node:path';
import type { ProfileOptions } from './profile/index.js';

/** Machine configuration as the addon takes it. */
export interface NativeVmConfig {
  kernel: string;
  initrd?: string;
  cmdline?: string;
  memoryMiB?: number;
  cpus?: number;
  acpi?: boolean;
  mpTable?: boolean;
  rtcUtc?: boolean;
  x2apic?: boolean;
  exitOnUnhandledIo?: boolean;
  pvhEntry?: boolean;
  /** SMBIOS system UUID (xhyve -U). Omitted: a random one per boot. */
  uuid?: string;
  /**
   * PCI functions on bus 0, as xhyve's `-s slot[:function],emulation[,args]` (emulations:
   * `hostbridge`, `lpc`). Omitted: the host bridge at 00:00.0 and the LPC bridge at 00:1f.0.
   * An unknown emulation or a taken slot is HYVE_BAD_CONFIG.
   */
  pciDevices?: { slot: number; function?: number; emulation: string; args?: string }[];
  /** The guest profiler: folded stacks written to `file` when the VM ends (src/profile/). */
  profile?: ProfileOptions;
  onConsole?: (port: number, data: Buffer) => void;
  onLog?: (line: string) => void;
}

/** A VM restored from a snapshot: its machine (memory, cpus, ...) comes from the snapshot. */
export interface NativeRestoreConfig {
  snapshot: string;
  /** Checksum the whole memory file even when its size and mtime match. */
  verifySnapshotMemory?: boolean;
  profile?: ProfileOptions;
  /** Arguments for the snapshot's PCI functions (a snapshot holds only their emulations), e.g. a NIC's port forwards, a vsock socket path. */
  pciDevices?: { slot: number; function?: number; emulation: string; args?: string }[];
  onConsole?: (port: number, data: Buffer) => void;
  onLog?: (line: string) => void;
}

/** How a VM ended, with xhyve/hyperkit's exit codes. */
export type ExitOutcome = 'poweroff' | 'error' | 'reboot' | 'triple-fault';

export interface NativeExit {
  outcome: ExitOutcome;
  code: 0 | 1 | 2 | 3;
  message: string;
  /** A stable code when the VMM knows the cause: HYVE_BAD_SNAPSHOT when a restored VM's memory.bin shrank under it. */
  errorCode?: string;
}

export interface VmStats {
  hypervisor: string;
  pvm: boolean;
  setupMs: number;
  firstRunMs: number;
  firstConsoleByteMs: number;
  kernelFormat: string;
  kernelCompression: string;
  bootPath: string;
  decompressMs: number;
  /** Restored VMs: milliseconds to read the snapshot and load its state (-1 otherwise). */
  restoreMs: number;
  /** Samples the guest profiler has taken so far, all vCPUs together (0 unprofiled). */
  profileSamples: number;
  addedKernelArguments: string[];
  exits: Record<string, number>;
}

/** What VM.snapshot() did. */
export interface SnapshotReport {
  /** Until every vCPU was parked. */
  pauseMs: number;
  /** Collecting the state and writing both files. */
  saveMs: number;
  /** Size of state.bin. */
  stateBytes: number;
  /** Guest RAM: the size of memory.bin. */
  memoryBytes: number;
  /** What memory.bin occupies on disk (untouched pages are holes). */
  memoryAllocatedBytes: number;
  configDigest: string;
}

/** A snapshot's header, as inspectSnapshot() reads it. */
export interface SnapshotHeader {
  hyveVersion: string;
  formatVersion: number;
  backend: string;
  memoryMiB: number;
  cpus: number;
  kernel: string;
  initrd: string;
  cmdline: string;
  /** Host wall-clock time of the snapshot (ms since the epoch). */
  savedAtMs: number;
  configDigest: string;
  sections: string[];
}

export interface NativeVm {
  start(): Promise<NativeExit>;
  snapshot(dir: string): SnapshotReport;
  writeConsole(port: number, data: Buffer): void;
  stop(): void;
  stats(): VmStats | null;
  close(): void;
}

export interface KernelInfo {
  format: string;
  compression: string;
  payloadBytes: number;
  decompressedBytes: number;
  decompressMs: number;
}

/** What smbiosTables() returns: a VM's SMBIOS bytes and where they sit in guest memory. */
export interface SmbiosTables {
  entryPoint64: Buffer;
  entryPoint64Address: number;
  entryPoint32: Buffer;
  entryPoint32Address: number;
  table: Buffer;
  tableAddress: number;
  structureCount: number;
}

/** Which hypervisor VMs on this machine run on. */
export interface HypervisorInfo {
  /** `kvm`, or `kvm-pvm` for KVM without hardware virtualization. */
  name: string;
  /** True on PVM: guest kernel mode runs under an instruction emulator (boots take about a minute). */
  emulatesGuestKernel: boolean;
}

export interface NativeAddon {
  Vm: new (config: NativeVmConfig | NativeRestoreConfig) => NativeVm;
  inspectKernel(path: string): KernelInfo;
  inspectSnapshot(dir: string): SnapshotHeader;
  /** Opens the hypervisor as a VM would; throws with the VM's code when it cannot. */
  checkHypervisor(): HypervisorInfo;
  /**
   * @internal From one read of a snapshot's state file: its section names, and its
   * virtio-console functions with port 0's role and the port names each was saved with
   * (a restore gives each copy sockets of its own for them).
   */
  snapshotDevices(dir: string): { sections: string[]; consoles: { slot: number; function: number; console: boolean; ports: string[] }[] };
  /** @internal The SMBIOS tables a VM of this configuration gets (for tests). */
  smbiosTables(config: { memoryMiB: number; cpus: number; uuid: string }): SmbiosTables;
  /**
   * @internal In a VM process: have the kernel SIGKILL it when its parent goes (even
   * while native code blocks). False if the parent `parentPid` is already gone.
   */
  dieWithParent(parentPid: number): boolean;
  /** The hyve version the addon was built from. */
  version: string;
}

/** Path of the compiled addon; HYVE_ADDON overrides it (e.g. a sanitizer build). */
export function addonPath(): string {
  return process.env.HYVE_ADDON ?? path.join(packageRoot, 'build', 'Release', 'hyve.node');
}

let cached: NativeAddon | undefined;

export function loadAddon(): NativeAddon {
  if (cached) return cached;
  const file = addonPath();
  if (!existsSync(file)) {
    throw new Error(`hyve's native addon is not built (${file} is missing): run \`npm run build\` in ${packageRoot}`);
  }
  cached = createRequire(import.meta.url)(file) as NativeAddon;
  return cached;
}
