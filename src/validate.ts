/**
 * Run-time checks of every public options object, for callers without a type checker
 * (plain JavaScript): a wrong type or value, or an unknown option name, is a
 * VmStartError with code HYVE_BAD_CONFIG that names the option and what it accepts,
 * thrown before any process starts. One module, so every entry point says it the same way.
 */
import { parseMemoryMiB } from './size.js';
import { VmStartError } from './vm-process.js';
import { UUID_RE } from './uuid.js';
import { isWaitStrategy } from './wait.js';

/** The options bootGuest() takes. */
export const BOOT_GUEST_OPTION_NAMES = [
  'kernel',
  'initrd',
  'cmdline',
  'memory',
  'cpus',
  'uuid',
  'ready',
  'timeoutMs',
  'signal',
  'failOn',
  'onProgress',
  'onLog',
  'machine',
  'snapshot',
  'verifySnapshot',
  'disks',
  'rng',
  'profile',
  'network',
  'forwardPorts',
  'console',
  'ports',
  'vsock',
  'ssh',
] as const;

/** The fields of one entry of bootGuest()'s `disks` option. */
export const DISK_OPTION_NAMES = ['path', 'readOnly', 'ephemeral', 'serial', 'interface'] as const;

/** The fields of one entry of bootGuest()'s `forwardPorts` option. */
export const FORWARD_PORT_OPTION_NAMES = ['guest', 'host'] as const;

/** The fields of the `profile` option (bootGuest(), startVm()). */
export const PROFILE_OPTION_NAMES = ['file', 'hz', 'symbols'] as const;

/** The fields of bootGuest()'s `machine` option (and of startVm()'s machine). */
export const MACHINE_OPTION_NAMES = ['acpi', 'mpTable', 'rtcUtc', 'x2apic', 'exitOnUnhandledIo', 'pvhEntry'] as const;

/** The options guestTest() takes on top of bootGuest()'s. */
export const GUEST_TEST_OPTION_NAMES = [...BOOT_GUEST_OPTION_NAMES, 'scope', 'snapshotCacheDir'] as const;

/** The options ensureSnapshot() takes: bootGuest's for the boot it may make, and the cache directory. */
export const ENSURE_SNAPSHOT_OPTION_NAMES = [
  // A cached snapshot would keep the contents its disks had when it was made: guests with
  // disks get none; virtio-console's console and ports are not in the cache key (yet);
  // forwards belong to each restored copy.
  ...BOOT_GUEST_OPTION_NAMES.filter((name) => !['snapshot', 'verifySnapshot', 'disks', 'forwardPorts', 'console', 'ports'].includes(name)),
  'cacheDir',
] as const;

/** The options startVm() takes. */
export const START_VM_OPTION_NAMES = ['kernel', 'initrd', 'cmdline', 'memoryMiB', 'cpus', 'uuid', 'pciDevices', 'profile', ...MACHINE_OPTION_NAMES] as const;

/** The options guest.run() takes. */
export const RUN_OPTION_NAMES = ['timeoutMs'] as const;

/** The options guest.shutdown() takes. */
export const SHUTDOWN_OPTION_NAMES = ['timeoutMs'] as const;

/** The options of serial.waitFor() and Wait.forSerial(). */
export const WAIT_OPTION_NAMES = ['timeoutMs', 'since', 'signal'] as const;

/** Options bootGuest() honours when it restores a snapshot (`snapshot` set). */
export const RESTORE_OPTION_NAMES = [
  'snapshot',
  'verifySnapshot',
  'memory',
  'cpus',
  'kernel',
  'initrd',
  'cmdline',
  'ready',
  'timeoutMs',
  'signal',
  'failOn',
  'onLog',
  'profile',
  'network',
  'forwardPorts',
  'ssh',
] as const;

/** Most vCPUs a machine may have (the VMM's limit). */
export const MAX_CPUS = 64;

/** One option's rule: `ok` says whether a (defined) value is acceptable, `accepts` says in words what is. */
interface Rule {
  accepts: string;
  ok: (value: unknown) => boolean;
}

const isString: Rule = { accepts: 'a string', ok: (v) => typeof v === 'string' };
const isPath: Rule = { accepts: 'a file path (a non-empty string)', ok: (v) => typeof v === 'string' && v !== '' };
const isBoolean: Rule = { accepts: 'true or false', ok: (v) => typeof v === 'boolean' };
const isFunction: Rule = { accepts: 'a function', ok: (v) => typeof v === 'function' };
// Duck-typed: a signal from another realm (a jsdom test environment) is still a signal.
const isSignal: Rule = {
  accepts: 'an AbortSignal',
  ok: (v) => v instanceof AbortSignal || (typeof v === 'object' && v !== null && typeof (v as AbortSignal).aborted === 'boolean' && typeof (v as AbortSignal).addEventListener === 'function'),
};
const isTimeout: Rule = {
  accepts: 'a positive number of milliseconds',
  ok: (v) => typeof v === 'number' && Number.isFinite(v) && v > 0,
};
const isCpus: Rule = {
  accepts: `a whole number from 1 to ${MAX_CPUS}`,
  ok: (v) => Number.isInteger(v) && (v as number) >= 1 && (v as number) <= MAX_CPUS,
};
const isMemory: Rule = {
  accepts: "a size such as '512M' or '1G', or a number of MiB",
  ok: (v) => typeof v === 'string' || (typeof v === 'number' && Number.isFinite(v) && v > 0),
};
const isMemoryMiB: Rule = {
  accepts: 'a positive even whole number of MiB',
  ok: (v) => Number.isInteger(v) && (v as number) > 0 && (v as number) % 2 === 0 && (v as number) <= 2 ** 24,
};
const isReady: Rule = {
  accepts: 'a string, a RegExp or a wait strategy (Wait.forSerial(...), Wait.forAll([...]))',
  ok: (v) => typeof v === 'string' || v instanceof RegExp || isWaitStrategy(v),
};
const isFailOn: Rule = {
  accepts: 'an array of RegExps (an empty array turns the kernel-failure check off)',
  ok: (v) => Array.isArray(v) && v.every((p) => p instanceof RegExp),
};
const isMachine: Rule = { accepts: `an object with the fields ${MACHINE_OPTION_NAMES.join(', ')}`, ok: isPlainObject };
const isUuid: Rule = { accepts: 'a UUID (8-4-4-4-12 hex digits)', ok: (v) => typeof v === 'string' && UUID_RE.test(v) };
const isProfile: Rule = {
  accepts: `an object { file, hz?, symbols? } (file and symbols non-empty paths, hz a whole number from 1 to ${10_000})`,
  ok: (v) => {
    if (!isPlainObject(v)) return false;
    const { file, hz, symbols } = v as { file?: unknown; hz?: unknown; symbols?: unknown };
    return (
      Object.keys(v).every((k) => (PROFILE_OPTION_NAMES as readonly string[]).includes(k)) &&
      isPath.ok(file) &&
      (hz === undefined || (Number.isInteger(hz) && (hz as number) >= 1 && (hz as number) <= 10_000)) &&
      (symbols === undefined || isPath.ok(symbols))
    );
  },
};
const isSince: Rule = { accepts: 'a transcript offset (a whole number >= 0)', ok: (v) => Number.isInteger(v) && (v as number) >= 0 };

const BOOT_GUEST_RULES: Record<(typeof BOOT_GUEST_OPTION_NAMES)[number], Rule> = {
  kernel: isPath,
  initrd: isPath,
  cmdline: isString,
  memory: isMemory,
  cpus: isCpus,
  uuid: isUuid,
  ready: isReady,
  timeoutMs: isTimeout,
  signal: isSignal,
  failOn: isFailOn,
  onProgress: isFunction,
  onLog: isFunction,
  machine: isMachine,
  snapshot: isPath,
  verifySnapshot: isBoolean,
  disks: {
    accepts: `an array of { ${DISK_OPTION_NAMES.join(', ')} } with a non-empty path and interface 'virtio', 'ahci' or 'ahci-cd'`,
    ok: (v) =>
      Array.isArray(v) &&
      v.every(
        (d) =>
          isPlainObject(d) &&
          Object.keys(d).every((k) => (DISK_OPTION_NAMES as readonly string[]).includes(k)) &&
          isPath.ok(d.path) &&
          [d.readOnly, d.ephemeral].every((b) => b === undefined || typeof b === 'boolean') &&
          (d.serial === undefined || typeof d.serial === 'string') &&
          (d.interface === undefined || d.interface === 'virtio' || d.interface === 'ahci' || d.interface === 'ahci-cd'),
      ),
  },
  rng: isBoolean,
  profile: isProfile,
  network: {
    accepts: "'user' or { tap: 'NAME' }",
    ok: (v) => v === 'user' || (isPlainObject(v) && Object.keys(v).every((k) => k === 'tap') && typeof v.tap === 'string'),
  },
  forwardPorts: {
    accepts: `an array of { ${FORWARD_PORT_OPTION_NAMES.join(', ')} } with whole-number ports (guest 1-65535, host 0-65535)`,
    ok: (v) =>
      Array.isArray(v) &&
      v.every(
        (f) =>
          isPlainObject(f) &&
          Object.keys(f).every((k) => (FORWARD_PORT_OPTION_NAMES as readonly string[]).includes(k)) &&
          Number.isInteger(f.guest) && (f.guest as number) >= 1 && (f.guest as number) <= 65535 &&
          (f.host === undefined || (Number.isInteger(f.host) && (f.host as number) >= 0 && (f.host as number) <= 65535)),
      ),
  },
  console: { accepts: "'serial' or 'virtio'", ok: (v) => v === 'serial' || v === 'virtio' },
  ports: {
    accepts: 'an array of distinct port names, each 1-64 of [A-Za-z0-9._-], at most 30',
    ok: (v) =>
      Array.isArray(v) &&
      v.length <= 30 &&
      new Set(v).size === v.length &&
      v.every((name) => typeof name === 'string' && /^[A-Za-z0-9._-]{1,64}$/.test(name)),
  },
  vsock: isBoolean,
  ssh: { accepts: "'vsock' or 'network'", ok: (v) => v === 'vsock' || v === 'network' },
};

const MACHINE_RULES: Record<(typeof MACHINE_OPTION_NAMES)[number], Rule> = {
  acpi: isBoolean,
  mpTable: isBoolean,
  rtcUtc: isBoolean,
  x2apic: isBoolean,
  exitOnUnhandledIo: isBoolean,
  pvhEntry: isBoolean,
};

const START_VM_RULES: Record<(typeof START_VM_OPTION_NAMES)[number], Rule> = {
  kernel: isPath,
  initrd: isPath,
  cmdline: isString,
  memoryMiB: isMemoryMiB,
  cpus: isCpus,
  uuid: isUuid,
  pciDevices: {
    accepts: 'an array of { slot, function?, emulation, args? } (xhyve -s)',
    ok: (v) => Array.isArray(v) && v.every((d) => isPlainObject(d) && Number.isInteger((d as { slot: unknown }).slot) && typeof (d as { emulation: unknown }).emulation === 'string'),
  },
  profile: isProfile,
  ...MACHINE_RULES,
};

const GUEST_TEST_RULES: Record<(typeof GUEST_TEST_OPTION_NAMES)[number], Rule> = {
  ...BOOT_GUEST_RULES,
  scope: { accepts: "'test' or 'file'", ok: (v) => v === 'test' || v === 'file' },
  snapshot: { accepts: "'auto' or a snapshot directory (a non-empty string)", ok: isPath.ok },
  snapshotCacheDir: isPath,
  uuid: { accepts: "a UUID or 'from-test-name'", ok: (v) => v === 'from-test-name' || isUuid.ok(v) },
};

const ENSURE_SNAPSHOT_RULES: Record<string, Rule> = {
  ...Object.fromEntries(ENSURE_SNAPSHOT_OPTION_NAMES.filter((n) => n !== 'cacheDir').map((n) => [n, BOOT_GUEST_RULES[n as keyof typeof BOOT_GUEST_RULES]])),
  cacheDir: isPath,
};

const TIMEOUT_RULES = { timeoutMs: isTimeout };
const WAIT_RULES: Record<(typeof WAIT_OPTION_NAMES)[number], Rule> = { timeoutMs: isTimeout, since: isSince, signal: isSignal };

function isPlainObject(value: unknown): value is Record<string, unknown> {
  if (typeof value !== 'object' || value === null) return false;
  const proto = Object.getPrototypeOf(value) as unknown;
  return proto === Object.prototype || proto === null;
}

/** Edit distance between two option names (case-insensitive), for "did you mean". */
function distance(a: string, b: string): number {
  a = a.toLowerCase();
  b = b.toLowerCase();
  let previous = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const current = [i];
    for (let j = 1; j <= b.length; j++) {
      current[j] = Math.min(previous[j]! + 1, current[j - 1]! + 1, previous[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
    }
    previous = current;
  }
  return previous[b.length]!;
}

/** The valid name closest to `name`, if any is close enough to be a likely misspelling. */
export function closestName(name: string, valid: readonly string[]): string | undefined {
  const lower = name.toLowerCase();
  // 'verify' for 'verifySnapshot', 'timeout' for 'timeoutMs': one is the start of the other.
  const prefixed = valid.find((v) => lower.length >= 3 && (v.toLowerCase().startsWith(lower) || lower.startsWith(v.toLowerCase())));
  if (prefixed) return prefixed;
  const best = valid.reduce((a, b) => (distance(name, b) < distance(name, a) ? b : a));
  return distance(name, best) <= Math.max(2, Math.floor(best.length / 3)) ? best : undefined;
}

/** A short, safe rendering of a bad value for an error message. */
function describe(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return `an array (${value.length} items)`;
  if (value instanceof RegExp) return `${value} (RegExp)`;
  switch (typeof value) {
    case 'string':
      return `${JSON.stringify(value.length > 60 ? `${value.slice(0, 60)}...` : value)} (string)`;
    case 'number':
    case 'boolean':
    case 'bigint':
      return `${String(value)} (${typeof value})`;
    case 'function':
      return 'a function';
    default: {
      const name = (value as object).constructor?.name;
      return name && name !== 'Object' ? `a ${name}` : 'an object';
    }
  }
}

/** A HYVE_BAD_CONFIG error naming the entry point and the option. */
export function badConfig(where: string, message: string): VmStartError {
  return new VmStartError(`${where}: ${message}`, 'HYVE_BAD_CONFIG');
}

/**
 * Checks `options` against `rules`: it must be a plain object (or undefined), every key a
 * known option, every defined value acceptable. `hint` adds advice for a known mistake.
 */
function check(where: string, options: unknown, rules: Record<string, Rule>, hint?: (key: string) => string | undefined): void {
  if (options === undefined) return;
  if (!isPlainObject(options)) throw badConfig(where, `options must be an object, got ${describe(options)}`);
  const names = Object.keys(rules);
  for (const [key, value] of Object.entries(options)) {
    const rule = rules[key];
    if (!rule) {
      const advice = hint?.(key) ?? (closestName(key, names) ? `did you mean '${closestName(key, names)}'?` : 'no option has a similar name.');
      throw badConfig(where, `unknown option '${key}'; ${advice} (valid options: ${names.join(', ')})`);
    }
    if (value !== undefined && !rule.ok(value)) {
      throw badConfig(where, `option '${key}' must be ${rule.accepts}, got ${describe(value)}`);
    }
  }
}

/** fromCommandLine() returns { options, warnings }: passing it whole is an easy slip. */
function fromCommandLineHint(key: string): string | undefined {
  return key === 'options' || key === 'warnings'
    ? "this looks like fromCommandLine()'s result: pass its `.options` (and read its `.warnings`)."
    : undefined;
}

/** The nested `machine` object, and `memory`'s value (a size string is only checked by parsing it). */
function checkBootDetails(where: string, options: unknown): void {
  const { machine, memory, ssh, network } = (options ?? {}) as { machine?: unknown; memory?: string | number; ssh?: unknown; network?: unknown };
  if (machine !== undefined) check(`${where}: machine`, machine, MACHINE_RULES);
  if (ssh === 'network' && network !== 'user') {
    throw badConfig(where, `option 'ssh': 'network' needs network: 'user' (SSH goes through its forward of guest port 22), got network ${describe(network)}`);
  }
  if (memory !== undefined) {
    try {
      parseMemoryMiB(memory);
    } catch (error) {
      throw badConfig(where, `option 'memory': ${(error as Error).message}`);
    }
  }
}

export function validateBootGuestOptions(options: unknown, where = 'bootGuest'): void {
  check(where, options, BOOT_GUEST_RULES, fromCommandLineHint);
  checkBootDetails(where, options);
}

export function validateGuestTestOptions(options: unknown): void {
  check('guestTest', options, GUEST_TEST_RULES, fromCommandLineHint);
  checkBootDetails('guestTest', options);
}

export function validateEnsureSnapshotOptions(options: unknown): void {
  check('ensureSnapshot', options, ENSURE_SNAPSHOT_RULES, fromCommandLineHint);
  checkBootDetails('ensureSnapshot', options);
}

export function validateStartVmOptions(options: unknown): void {
  if (options === undefined) throw badConfig('startVm', 'options are required (at least { kernel })');
  check('startVm', options, START_VM_RULES);
  if ((options as { kernel?: unknown }).kernel === undefined) throw badConfig('startVm', "option 'kernel' is required");
}

export function validateRunArguments(command: unknown, options: unknown): void {
  if (typeof command !== 'string') throw badConfig('run', `the command must be a string (one shell command line), got ${describe(command)}`);
  check('run', options, TIMEOUT_RULES);
}

export function validateShutdownOptions(options: unknown): void {
  check('shutdown', options, TIMEOUT_RULES);
}

export function validateWaitOptions(options: unknown, where = 'waitFor'): void {
  check(where, options, WAIT_RULES);
}

/** A pattern for serial.waitFor() / Wait.forSerial(): a string or a RegExp. */
export function validatePattern(pattern: unknown, where = 'waitFor'): void {
  if (typeof pattern !== 'string' && !(pattern instanceof RegExp)) {
    throw badConfig(where, `the pattern must be a string or a RegExp, got ${describe(pattern)}`);
  }
}

export function validateDirectory(dir: unknown, where: string): void {
  if (typeof dir !== 'string' || dir === '') throw badConfig(where, `the directory must be a non-empty string, got ${describe(dir)}`);
}
