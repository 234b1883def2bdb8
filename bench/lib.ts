/**
 * What the side-by-side benchmarks share: hyve and QEMU TCG as two "sides" that boot the
 * same guest, the benchio helper program, medians and the table every figure is printed in.
 */
import { execFile, execFileSync } from 'node:child_process';
import { promisify } from 'node:util';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { bootGuest, DEFAULT_READY_MARKER, type BootGuestOptions, type Guest } from '../src/index.js';
import { bootFiles } from '../src/guest.js';
import { parseMemoryMiB } from '../src/size.js';
import { hostIsPvm } from '../src/host.js';
import { CpioWriter } from '../src/fixtures/index.js';
import { buildGuestProgram } from '../test/helpers/guests.js';
import { QEMU, startQemu } from './qemu.js';

/** Boots on a loaded PVM host take minutes: limits here are generous, they time nothing. */
export const LONG_MS = 1_800_000;

/** The options both sides take (a subset of bootGuest's). */
export type SideOptions = Pick<BootGuestOptions, 'kernel' | 'initrd' | 'cmdline' | 'memory' | 'disks' | 'network' | 'forwardPorts' | 'ports'>;

export interface Side {
  name: string;
  /** Boots and resolves once the guest is ready, with the time from the call to the ready marker. */
  boot(options: SideOptions): Promise<{ guest: Guest; readyMs: number }>;
}

export const hyve: Side = {
  name: 'hyve',
  async boot(options) {
    const started = performance.now();
    note('booting hyve');
    const guest = await bootGuest({ ...options, timeoutMs: LONG_MS });
    note(`hyve ready after ${((performance.now() - started) / 1000).toFixed(1)} s`);
    return { guest, readyMs: performance.now() - started };
  },
};

/** QEMU TCG with `userStack` behind its user networking. */
function qemuSide(name: string, userStack: 'slirp' | 'passt'): Side {
  return {
    name,
    async boot(options) {
      const started = performance.now();
      note(`booting ${name}`);
      // The kernel command line bootGuest() would use (hyve's PVM additions are the VMM's own).
      const files = await bootFiles(options);
      if (options.network !== undefined && options.network !== 'user') throw new Error('the QEMU side has user networking only');
      const guest = await startQemu({
        ...options,
        network: options.network,
        userStack,
        kernel: files.kernel,
        initrd: files.initrd!,
        cmdline: files.cmdline,
        memoryMiB: parseMemoryMiB(options.memory ?? 256),
      });
      try {
        await guest.serial.waitFor(DEFAULT_READY_MARKER, { timeoutMs: LONG_MS });
      } catch (error) {
        await guest.kill();
        throw error;
      }
      guest.markReady();
      return { guest, readyMs: performance.now() - started };
    },
  };
}

export const qemuTcg = qemuSide('QEMU TCG', 'slirp');
/** The same QEMU with passt as its user-mode stack: weighs passt against libslirp (issue 10). */
export const qemuPasst = qemuSide('QEMU TCG + passt', 'passt');

/** The QEMU binary's version line; throws naming the package when it is missing. */
export function qemuVersion(): string {
  try {
    return execFileSync(QEMU, ['--version'], { encoding: 'utf8' }).split('\n')[0]!;
  } catch {
    throw new Error(`${QEMU} not found: the benchmarks compare with QEMU TCG; install Debian's qemu-system-x86 (scripts/setup-debian.sh)`);
  }
}

/** benchio (test/guest-programs/benchio.c) built for the host, which also runs it in the guest. */
export function benchio(): string {
  return buildGuestProgram('benchio');
}

/** The default guest's initramfs with /opt/benchio added (the kernel unpacks concatenated archives). */
export function initrdWithBenchio(defaultInitrd: string, dir: string): string {
  const overlay = new CpioWriter().dir('opt').fileFromHost('opt/benchio', benchio(), 0o755);
  const file = path.join(dir, 'initrd-benchio.cpio');
  writeFileSync(file, Buffer.concat([readFileSync(defaultInitrd), overlay.toBuffer()]));
  return file;
}

/** Parses benchio's "benchio OP bytes=N ns=T" line. */
export function parseBenchio(output: string): { bytes: number; seconds: number } {
  const match = /benchio \S+ bytes=(\d+) ns=(\d+)/.exec(output);
  if (!match) throw new Error(`benchio printed no result: ${output.trim().slice(-500)}`);
  return { bytes: Number(match[1]), seconds: Number(match[2]) / 1e9 };
}

/** Runs benchio on the host (optionally through a prefix such as `ip netns exec NS`). */
export async function benchioOnHost(args: string[], prefix: string[] = []): Promise<{ bytes: number; seconds: number }> {
  const [command, ...rest] = [...prefix, benchio(), ...args];
  const { stdout } = await promisify(execFile)(command!, rest, { encoding: 'utf8', timeout: LONG_MS });
  return parseBenchio(stdout);
}

/** Runs a command on the guest; a non-zero exit is an error with its output. */
export async function sh(guest: Guest, command: string): Promise<string> {
  const { output, exitCode } = await guest.run(command, { timeoutMs: LONG_MS });
  if (exitCode !== 0) throw new Error(`guest command failed (${exitCode}): ${command}\n${output.trim().slice(-1000)}`);
  return output;
}

export function median(values: readonly number[]): number {
  if (values.length === 0) return NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

/** `count` results of `measure`, one after the other. */
export async function repeat(count: number, measure: (run: number) => Promise<number>): Promise<number[]> {
  const values: number[] = [];
  for (let i = 0; i < count; i++) values.push(await measure(i));
  return values;
}

/** One row: a figure measured on both sides, and the host's limit where there is one. */
export interface Row {
  figure: string;
  unit: string;
  /** Samples; the table shows their median. */
  hyve: number[];
  qemu: number[];
  limit: number[];
  /** Whether more is better (throughput) or less (time): decides the ratio's direction. */
  higherIsBetter: boolean;
}

const benchStart = performance.now();

/** Progress on stderr (a full run takes many minutes on a PVM host); the tables go to stdout. */
export function note(line: string): void {
  process.stderr.write(`[${((performance.now() - benchStart) / 1000).toFixed(0).padStart(5)} s] ${line}\n`);
}

/** Which column a sample belongs to. */
export type Column = 'hyve' | 'qemu' | 'limit';

/** Samples collected by figure, in the order figures first appear. */
export class Results {
  readonly rows: Row[] = [];

  add(column: Column, figure: string, unit: string, higherIsBetter: boolean, values: readonly number[]): void {
    let row = this.rows.find((r) => r.figure === figure);
    if (!row) this.rows.push((row = { figure, unit, hyve: [], qemu: [], limit: [], higherIsBetter }));
    row[column].push(...values);
    note(`${figure}, ${column}: ${values.map((v) => v.toPrecision(3)).join(', ')} ${unit}`);
  }
}

/** The column of a side. */
export const columnOf = (side: Side): Column => (side === hyve ? 'hyve' : 'qemu');

const fmt = (values: readonly number[] | undefined): string => {
  if (!values || values.length === 0) return '—';
  const m = median(values);
  return m >= 100 ? m.toFixed(0) : m >= 10 ? m.toFixed(1) : m.toPrecision(3);
};

/** hyve's speed relative to QEMU's: `2.5x`, or `1/53` for a fiftieth (easier read than 0.0189x). */
const formatRatio = (ratio: number): string =>
  !Number.isFinite(ratio) || ratio <= 0 ? '—' : ratio >= 1 ? `${ratio.toPrecision(3)}x` : `1/${(1 / ratio).toPrecision(3)}`;

/**
 * Prints rows as a table: medians of hyve, QEMU TCG, hyve's speed relative to QEMU's
 * (>1: hyve faster) and the limit.
 */
export function printTable(title: string, rows: readonly Row[]): void {
  const header = ['figure', 'unit', 'hyve', 'QEMU TCG', 'hyve speed ÷ QEMU', 'host limit', 'n'];
  const lines = rows.map((row) => {
    const h = median(row.hyve);
    const q = row.qemu?.length ? median(row.qemu) : NaN;
    const ratio = row.higherIsBetter ? h / q : q / h;
    return [row.figure, row.unit, fmt(row.hyve), fmt(row.qemu), formatRatio(ratio), fmt(row.limit), String(Math.max(row.hyve.length, row.qemu.length))];
  });
  if (lines.length === 0) return;
  const widths = header.map((_, i) => Math.max(header[i]!.length, ...lines.map((l) => l[i]!.length)));
  const line = (cells: string[]) => `| ${cells.map((c, i) => (i < 2 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join(' | ')} |`;
  console.log(`\n${title} (medians)`);
  console.log(line(header));
  console.log(`|${widths.map((w, i) => (i < 2 ? `:${'-'.repeat(w + 1)}` : `${'-'.repeat(w + 1)}:`)).join('|')}|`);
  for (const l of lines) console.log(line(l));
}

/** Processes on the host that look like VMs (hyve's VM child processes, QEMU), this one's included. */
export function vmProcessesRunning(): number {
  let count = 0;
  for (const pid of readdirSync('/proc').filter((name) => /^\d+$/.test(name))) {
    try {
      const args = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
      if (args.some((arg) => arg.endsWith('/dist/src/child.js') || arg.endsWith(QEMU))) count++;
    } catch {
      // gone meanwhile
    }
  }
  return count;
}

/** The header every run prints: host kind, QEMU, and the load the figures were taken under. */
export function printHeader(what: string, runs: number): void {
  const load = os.loadavg().map((l) => l.toFixed(2)).join(' ');
  console.log(`hyve ${what} — ${hostIsPvm() ? 'PVM host (guest kernel mode emulated by KVM)' : 'hardware KVM host'}, ${os.cpus().length} CPUs, node ${process.version}`);
  console.log(`peer: ${qemuVersion()} with -accel tcg; ${runs} runs per figure, one VM at a time`);
  console.log(`load average at start: ${load}; VM processes already running (other users'): ${vmProcessesRunning()} — anything else running on the host makes these figures noisy`);
}
