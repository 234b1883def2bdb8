/**
 * Parsing an xhyve command line (getopt rules: clustered flags, attached arguments, `--`)
 * into a typed description of the VM. Pure: no file system access, no process state.
 * Flags and emulations hyve knows but cannot do yet parse fine and are refused later, when
 * the description is turned into a VM (see options.ts), so `-M` and the error messages can
 * name them.
 */
import { flag } from './flags.js';
import { UUID_RE } from '../uuid.js';
import { DEFAULT_MEMORY_MIB } from '../size.js';
import { MAX_CPUS } from '../validate.js';

/** Bad command line: message on stderr, exit status 1. */
export class UsageError extends Error {
  override name = 'UsageError';
}

/** Something xhyve does that hyve does not do yet: message on stderr, exit status 1. */
export class NotImplementedError extends Error {
  override name = 'NotImplementedError';
}

/** Where a COM port's bytes go. */
export interface SerialBackend {
  /** stdio: the terminal; autopty: a new pseudo-terminal; device: an existing tty. */
  kind?: 'stdio' | 'autopty' | 'device';
  /** The tty for 'device'; for 'autopty', an optional symlink to create to the new pty. */
  path?: string;
  /** Append everything the guest prints on this port to this file. */
  log?: string;
}

export interface PciSlot {
  bus: number;
  slot: number;
  func: number;
  emulation: string;
  /** Everything after the emulation name, unparsed (e.g. a tap device or disk image). */
  conf?: string;
  /** The text as given, for error messages. */
  text: string;
}

export interface Kexec {
  kernel: string;
  /** Absent when the field is empty. */
  initrd?: string;
  /** Passed to the kernel verbatim; empty when the field is empty. */
  cmdline: string;
}

export interface HyveArgs {
  help: boolean;
  version: boolean;
  printMac: boolean;
  printOptions: boolean;
  acpi: boolean;
  cpus: number;
  memoryMiB: number;
  exitOnUnhandledIo: boolean;
  rtcUtc: boolean;
  x2apic: boolean;
  mpTable: boolean;
  firmware?: Kexec;
  /** The -f argument when its kind is not kexec (refused when the VM is built). */
  otherFirmware?: string;
  pidfile?: string;
  uuid?: string;
  com1?: SerialBackend;
  com2?: SerialBackend;
  slots: PciSlot[];
  /** Flags given that hyve accepts without effect (-C, -H, -W). */
  noEffect: string[];
  /** Flags given that hyve refuses (-b, -g, -p, -P, -w), with their arguments. */
  refused: string[];
  /** Emulations other than -l com1/com2 given to -l (e.g. bootrom). */
  refusedLpc: string[];
  /** --profile file [--profile-hz hz] [--profile-symbols file]: the guest profiler. */
  profile?: { file: string; hz?: number; symbols?: string };
}

export { DEFAULT_MEMORY_MIB };

/** Emulations xhyve/hyperkit know; hyve implements hostbridge and lpc. */
export const KNOWN_EMULATIONS = [
  'hostbridge',
  'amd_hostbridge',
  'lpc',
  'uart',
  'virtio-net',
  'virtio-tap',
  'virtio-vpnkit',
  'virtio-blk',
  'virtio-rnd',
  'virtio-console',
  'virtio-sock',
  'virtio-vsock',
  'virtio-9p',
  'virtio-ipc',
  'ahci',
  'ahci-hd',
  'ahci-cd',
  'passthru',
  'fbuf',
  'xhci',
  'e1000',
] as const;

/** Network emulations: each gets a MAC address (printed by -M). */
export const NET_EMULATIONS = new Set(['virtio-net', 'virtio-tap', 'virtio-vpnkit', 'e1000']);

function integer(text: string, what: string, min: number, max: number): number {
  if (!/^\d+$/.test(text)) throw new UsageError(`invalid ${what} '${text}': expected a whole number`);
  const value = Number(text);
  if (value < min || value > max) throw new UsageError(`invalid ${what} '${text}': must be between ${min} and ${max}`);
  return value;
}

const SHIFTS: Record<string, number> = { b: 0, k: 10, m: 20, g: 30, t: 40 };

/**
 * xhyve's -m: a number with an optional K/M/G/T suffix (either case). A bare number below
 * 1 MiB means MiB (xhyve's backward compatibility rule), otherwise bytes. Guest memory is
 * sized in whole 2 MiB steps.
 */
export function parseMemoryArg(text: string): number {
  const match = /^(\d+)([bkmgt]?)$/i.exec(text);
  if (!match) throw new UsageError(`invalid memory size '${text}': expected e.g. 512M, 2G or 1048576K`);
  let bytes = BigInt(match[1]!);
  const suffix = match[2]!.toLowerCase();
  if (suffix === '') {
    if (bytes < 1n << 20n) bytes <<= 20n;
  } else {
    bytes <<= BigInt(SHIFTS[suffix]!);
  }
  const mib = bytes >> 20n;
  if (bytes === 0n || (bytes & ((2n << 20n) - 1n)) !== 0n) {
    throw new UsageError(`invalid memory size '${text}': guest memory must be a positive multiple of 2 MiB`);
  }
  if (mib > 1n << 24n) throw new UsageError(`invalid memory size '${text}': more than 16 TiB`);
  return Number(mib);
}

/** `slot[:func]` or `bus:slot:func`. */
function parseSlot(text: string): Pick<PciSlot, 'bus' | 'slot' | 'func'> {
  const parts = text.split(':');
  if (parts.length > 3 || parts.some((p) => p === '')) {
    throw new UsageError(`invalid PCI slot '${text}': expected slot, slot:function or bus:slot:function`);
  }
  const [bus, slot, func] = parts.length === 3 ? parts : ['0', parts[0]!, parts[1] ?? '0'];
  return {
    bus: integer(bus!, 'PCI bus', 0, 255),
    slot: integer(slot!, 'PCI slot', 0, 31),
    func: integer(func!, 'PCI function', 0, 7),
  };
}

function parsePci(text: string): PciSlot {
  const comma = text.indexOf(',');
  if (comma < 0) throw new UsageError(`invalid -s '${text}': expected slot,emulation[,conf]`);
  const where = parseSlot(text.slice(0, comma));
  const rest = text.slice(comma + 1);
  const next = rest.indexOf(',');
  const emulation = next < 0 ? rest : rest.slice(0, next);
  const conf = next < 0 ? undefined : rest.slice(next + 1);
  if (!(KNOWN_EMULATIONS as readonly string[]).includes(emulation)) {
    throw new UsageError(`unknown PCI emulation '${emulation}' in -s ${text}`);
  }
  return { ...where, emulation, ...(conf === undefined ? {} : { conf }), text };
}

function parseLpc(text: string, args: HyveArgs): void {
  const [device, ...confs] = text.split(',');
  if (device === 'bootrom') {
    args.refusedLpc.push(text);
    return;
  }
  if (device !== 'com1' && device !== 'com2') {
    throw new UsageError(`invalid -l '${text}': the LPC devices are com1, com2 (and bootrom)`);
  }
  if (args[device]) throw new UsageError(`-l ${device} given twice`);
  const backend: SerialBackend = {};
  if (confs.length === 0) throw new UsageError(`invalid -l '${text}': expected ${device},stdio|autopty|/dev/tty...|log=file`);
  for (const conf of confs) {
    if (conf.startsWith('log=')) {
      if (backend.log !== undefined) throw new UsageError(`invalid -l '${text}': log= given twice`);
      const file = conf.slice(4);
      if (!file) throw new UsageError(`invalid -l '${text}': log= needs a file name`);
      backend.log = file;
      continue;
    }
    if (backend.kind) throw new UsageError(`invalid -l '${text}': more than one backend`);
    if (conf === 'stdio') backend.kind = 'stdio';
    else if (conf === 'autopty') backend.kind = 'autopty';
    else if (conf.startsWith('autopty=') && conf.length > 8) Object.assign(backend, { kind: 'autopty', path: conf.slice(8) });
    else if (conf.startsWith('/dev/')) Object.assign(backend, { kind: 'device', path: conf });
    else throw new UsageError(`invalid -l '${text}': unknown backend '${conf}' (stdio, autopty, /dev/..., log=file)`);
  }
  args[device] = backend;
}

/** xhyve's -f: `kexec,kernel,initrd,cmdline`, the command line being everything after the third comma. */
function parseFirmware(text: string, args: HyveArgs): void {
  const parts = text.split(',');
  const kind = parts[0];
  if (parts.length < 4) {
    throw new UsageError(`invalid -f '${text}': expected kexec,kernel,initrd,cmdline (initrd and cmdline may be empty)`);
  }
  if (kind !== 'kexec') {
    if (kind === 'fbsd' || kind === 'bootrom') {
      args.otherFirmware = text;
      return;
    }
    throw new UsageError(`invalid -f '${text}': unknown firmware '${kind}' (expected kexec)`);
  }
  const [, kernel, initrd] = parts;
  if (!kernel) throw new UsageError(`invalid -f '${text}': the kernel is missing`);
  args.firmware = { kernel, ...(initrd ? { initrd } : {}), cmdline: parts.slice(3).join(',') };
  args.otherFirmware = undefined;
}

function defaults(): HyveArgs {
  return {
    help: false,
    version: false,
    printMac: false,
    printOptions: false,
    acpi: false,
    cpus: 1,
    memoryMiB: DEFAULT_MEMORY_MIB,
    exitOnUnhandledIo: false,
    rtcUtc: false,
    x2apic: false,
    mpTable: true,
    slots: [],
    noEffect: [],
    refused: [],
    refusedLpc: [],
  };
}

/** Option letters that take an argument. */
const WITH_ARG = new Set(['c', 'f', 'F', 'g', 'l', 'm', 'p', 's', 'U']);
const LONG: Record<string, keyof HyveArgs> = { 'print-options': 'printOptions', help: 'help', version: 'version' };
/** hyve's own long options that take an argument (`--name value` or `--name=value`). */
const LONG_WITH_ARG = new Set(['profile', 'profile-hz', 'profile-symbols']);

function applyLong(name: string, value: string, args: HyveArgs): void {
  if (name === 'profile') {
    if (!value) throw new UsageError('--profile needs a file name');
    args.profile = { ...args.profile, file: value };
  } else if (name === 'profile-hz') {
    args.profile = { file: '', ...args.profile, hz: integer(value, 'profile rate (samples per second)', 1, 10_000) };
  } else {
    if (!value) throw new UsageError('--profile-symbols needs a file name');
    args.profile = { file: '', ...args.profile, symbols: value };
  }
}

/** Parses an xhyve command line (without the program name). Throws UsageError. */
export function parseArgs(argv: readonly string[]): HyveArgs {
  const args = defaults();
  let i = 0;
  for (; i < argv.length; i++) {
    const word = argv[i]!;
    if (word === '--') {
      i++;
      break;
    }
    if (word.startsWith('--')) {
      const [name, attached] = word.slice(2).split(/=(.*)/s, 2) as [string, string | undefined];
      if (LONG_WITH_ARG.has(name)) {
        let value = attached;
        if (value === undefined) {
          if (i + 1 >= argv.length) throw new UsageError(`option --${name} needs an argument`);
          value = argv[++i]!;
        }
        applyLong(name, value, args);
        continue;
      }
      const key = LONG[word.slice(2)];
      if (!key) throw new UsageError(`unknown option ${word}`);
      (args[key] as boolean) = true;
      continue;
    }
    if (!word.startsWith('-') || word === '-') break;
    for (let j = 1; j < word.length; j++) {
      const letter = word[j]!;
      if (!flag(letter)) throw new UsageError(`unknown option -${letter}`);
      let value: string | undefined;
      if (WITH_ARG.has(letter)) {
        if (j + 1 < word.length) value = word.slice(j + 1);
        else if (i + 1 < argv.length) value = argv[++i]!;
        else throw new UsageError(`option -${letter} needs an argument`);
        j = word.length;
      }
      apply(letter, value, args);
    }
  }
  if (i < argv.length) throw new UsageError(`unexpected argument '${argv[i]}'`);
  if (args.profile && !args.profile.file) throw new UsageError('--profile-hz and --profile-symbols need --profile file');
  return args;
}

function apply(letter: string, value: string | undefined, args: HyveArgs): void {
  const v = value ?? '';
  switch (letter) {
    case 'A':
      args.acpi = true;
      break;
    case 'c':
      args.cpus = integer(v, 'vCPU count', 1, MAX_CPUS);
      break;
    case 'e':
      args.exitOnUnhandledIo = true;
      break;
    case 'f':
      parseFirmware(v, args);
      break;
    case 'F':
      if (!v) throw new UsageError('-F needs a file name');
      args.pidfile = v;
      break;
    case 'h':
      args.help = true;
      break;
    case 'l':
      parseLpc(v, args);
      break;
    case 'm':
      args.memoryMiB = parseMemoryArg(v);
      break;
    case 'M':
      args.printMac = true;
      break;
    case 's':
      args.slots.push(parsePci(v));
      break;
    case 'u':
      args.rtcUtc = true;
      break;
    case 'U':
      if (!UUID_RE.test(v)) throw new UsageError(`invalid UUID '${v}': expected xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx`);
      args.uuid = v.toLowerCase();
      break;
    case 'v':
      args.version = true;
      break;
    case 'x':
      args.x2apic = true;
      break;
    case 'Y':
      args.mpTable = false;
      break;
    case 'C':
    case 'H':
    case 'W':
      if (!args.noEffect.includes(letter)) args.noEffect.push(letter);
      break;
    default:
      args.refused.push(value === undefined ? `-${letter}` : `-${letter} ${value}`);
  }
}
