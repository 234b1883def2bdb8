/**
 * Loading the native VMM addon (built by node-gyp from binding.gyp) and its types.
 * Only the child runner loads it: a VMM crash then never takes down the caller.
 */
import { createRequire } from 'node:module';
import { existsSync } from 'node:fs';
import { packageRoot } from './paths.js';
import path from 'node:path';

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
  onConsole?: (port: number, data: Buffer) => void;
  onLog?: (line: string) => void;
}

/** How a VM ended, with xhyve/hyperkit's exit codes. */
export type ExitOutcome = 'poweroff' | 'error' | 'reboot' | 'triple-fault';

export interface NativeExit {
  outcome: ExitOutcome;
  code: 0 | 1 | 2 | 3;
  message: string;
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
  addedKernelArguments: string[];
  exits: Record<string, number>;
}

export interface NativeVm {
  start(): Promise<NativeExit>;
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

export interface NativeAddon {
  Vm: new (config: NativeVmConfig) => NativeVm;
  inspectKernel(path: string): KernelInfo;
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
