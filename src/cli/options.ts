/**
 * One VM description, three shapes: an xhyve command line (HyveArgs), the raw VM config the
 * CLI starts (ChildConfig), and the options bootGuest() takes. The conversions live here
 * so the CLI and the API cannot disagree.
 *
 * The kernel command line: the CLI, like xhyve, passes it to the kernel verbatim, while
 * bootGuest() puts HYVE_KERNEL_ARGS ('console=ttyS0 panic=-1') in front of its `cmdline`.
 * So toCommandLine() writes HYVE_KERNEL_ARGS into -f (the kernel sees exactly what
 * bootGuest would give it), and toBootOptions() strips it again when the line starts with
 * it; a line that does not start with it converts with a warning, since bootGuest would
 * add those arguments.
 *
 * Machine defaults differ too: xhyve has no ACPI tables, xAPIC and a local-time RTC
 * unless -A, -x, -u say otherwise, while bootGuest's defaults (the native ones) are ACPI,
 * x2APIC and a UTC RTC. Both conversions therefore spell out every machine field.
 */
import { CONSOLE_SLOT, DISK_EMULATIONS, FIRST_DISK_SLOT, RNG_SLOT, diskConf, parseDiskConf, type DiskInterface } from '../disks.js';
import { NET_SLOT } from '../network.js';
import path from 'node:path';
import { HYVE_KERNEL_ARGS, HYVE_VIRTIO_CONSOLE_KERNEL_ARGS, type BootGuestOptions } from '../guest.js';
import type { ChildConfig } from '../protocol.js';
import { parseMemoryMiB } from '../size.js';
import { badConfig, validateBootGuestOptions } from '../validate.js';
import { flag } from './flags.js';
import { NET_EMULATIONS, NotImplementedError, UsageError, parseArgs, type HyveArgs, type PciSlot } from './args.js';
import { slotMac } from './mac.js';
import { checkUuid } from '../uuid.js';

type Machine = NonNullable<BootGuestOptions['machine']>;

/** bootGuest()'s machine when `machine` leaves a field out (the native addon's defaults). */
export const BOOT_GUEST_MACHINE_DEFAULTS: Required<Omit<Machine, 'pvhEntry'>> = {
  acpi: true,
  mpTable: true,
  rtcUtc: true,
  x2apic: true,
  exitOnUnhandledIo: false,
};

const FIXED_SLOTS: Record<string, { slot: number; name: string }> = {
  hostbridge: { slot: 0, name: 'the host bridge' },
  amd_hostbridge: { slot: 0, name: 'the host bridge' },
  lpc: { slot: 31, name: 'the LPC bridge' },
};

/** Checks PCI addresses: no slot twice, host bridge at 00:00.0 and LPC at 00:1f.0. */
export function checkSlots(args: HyveArgs): void {
  const seen = new Map<string, PciSlot>();
  for (const device of args.slots) {
    const key = `${device.bus}:${device.slot}:${device.func}`;
    const other = seen.get(key);
    if (other) throw new UsageError(`PCI slot ${key} given twice: -s ${other.text} and -s ${device.text}`);
    seen.set(key, device);
    const fixed = FIXED_SLOTS[device.emulation];
    if (fixed && (device.bus !== 0 || device.slot !== fixed.slot || device.func !== 0)) {
      throw new UsageError(
        `-s ${device.text}: hyve always has ${fixed.name} at 0:${fixed.slot}:0; use -s ${fixed.slot},${device.emulation} or leave it out`,
      );
    }
  }
}

/** The network slots, in PCI order, with their MAC addresses (what -M prints). */
export function macAddresses(args: HyveArgs, uuid: string): { device: PciSlot; mac: string }[] {
  checkSlots(args);
  return args.slots
    .filter((d) => NET_EMULATIONS.has(d.emulation))
    .sort((a, b) => a.bus - b.bus || a.slot - b.slot || a.func - b.func)
    .map((device) => ({ device, mac: slotMac(uuid, device) }));
}

/**
 * Everything on the line hyve cannot do yet, as one error naming each of them
 * (flags, firmware kinds, LPC devices, PCI emulations). Null when hyve can run it.
 */
export function unsupported(args: HyveArgs): NotImplementedError | null {
  const problems: string[] = [];
  for (const text of args.refused) {
    const spec = flag(text[1]!);
    problems.push(`${text} (${spec?.help ?? '?'}): not implemented yet${spec?.note ? `; ${spec.note}` : ''}`);
  }
  if (args.otherFirmware) {
    problems.push(`-f ${args.otherFirmware}: firmware '${args.otherFirmware.split(',')[0]}' is not implemented yet (hyve boots Linux with -f kexec)`);
  }
  for (const text of args.refusedLpc) problems.push(`-l ${text}: the LPC boot ROM is not implemented yet`);
  for (const device of args.slots) {
    if (device.emulation === 'hostbridge' || device.emulation === 'lpc' || device.emulation === 'virtio-rnd') {
      if (device.conf !== undefined) problems.push(`-s ${device.text}: ${device.emulation} takes no configuration`);
      continue;
    }
    if (DISK_INTERFACES[device.emulation]) {
      if (!device.conf) problems.push(`-s ${device.text}: ${device.emulation} needs a disk image: -s N,${device.emulation},path[,ro]`);
      continue;
    }
    if (device.emulation === 'virtio-net') continue;  // options: mac=, fwd= (checked by the VMM)
    if (device.emulation === 'virtio-tap') {
      if (!device.conf) problems.push(`-s ${device.text}: virtio-tap needs a tap device: -s N,virtio-tap,tap0`);
      continue;
    }
    if (device.emulation === 'virtio-console') {
      if (!device.conf) problems.push(`-s ${device.text}: virtio-console needs ports: -s N,virtio-console[,console][,name=/socket/path...]`);
      continue;
    }
    if (device.emulation === 'virtio-vsock') {
      if (!device.conf) problems.push(`-s ${device.text}: virtio-vsock needs a socket path: -s N,virtio-vsock,socket-path[,cid=N]`);
      continue;
    }
    const hint =
      device.emulation === 'uart'
        ? ' (COM1 and COM2 are on the LPC bridge: use -l com1,... instead)'
        : device.emulation === 'amd_hostbridge'
          ? ' (hyve has an Intel host bridge at 0:0:0: use -s 0,hostbridge)'
          : '';
    problems.push(`-s ${device.text}: PCI emulation '${device.emulation}' is not implemented yet${hint}`);
  }
  if (problems.length === 0) return null;
  return new NotImplementedError(problems.join('\n'));
}

/**
 * The PCI functions for the board (native/vmm/board.cc), from the -s list; without -s the
 * addon's default board is the same. hyve always has the host bridge at 0:0 and the LPC
 * bridge (which carries COM1/COM2) at 31:0, so either is added when left out.
 */
function pciDevicesOf(args: HyveArgs, cwd: string): NonNullable<ChildConfig['pciDevices']> {
  const devices = args.slots.map((device) => {
    let conf = device.conf === undefined ? undefined : argsOf(device.emulation, device.conf, cwd);
    // A NIC gets the MAC -M prints for this -U (its mac= if given); without -U the VMM picks one.
    if (NET_EMULATIONS.has(device.emulation) && args.uuid) {
      const others = (conf ?? '').split(',').filter((c) => c !== '' && !c.startsWith('mac='));
      conf = [...others, `mac=${slotMac(args.uuid, device)}`].join(',');
    }
    return { slot: device.slot, function: device.func, emulation: device.emulation, ...(conf !== undefined ? { args: conf } : {}) };
  });
  if (!devices.some((d) => d.emulation === 'hostbridge')) devices.unshift({ slot: 0, function: 0, emulation: 'hostbridge' });
  if (!devices.some((d) => d.emulation === 'lpc')) devices.push({ slot: 31, function: 0, emulation: 'lpc' });
  return devices;
}

/** The disk emulations, and the bootGuest() `interface` each is. */
const DISK_INTERFACES: Record<string, DiskInterface | undefined> = { 'virtio-blk': 'virtio', 'ahci-hd': 'ahci', 'ahci-cd': 'ahci-cd' };

/** bootGuest()'s `network` and `forwardPorts` for a -s virtio-net or virtio-tap slot (bootGuest puts it at slot 2). */
function networkOf(args: HyveArgs): Pick<BootGuestOptions, 'network' | 'forwardPorts'> {
  const nic = args.slots.find((d) => d.emulation === 'virtio-net' || d.emulation === 'virtio-tap');
  if (!nic) return {};
  const options = (nic.conf ?? '').split(',');
  // virtio-tap,tapX, or bhyve's spelling virtio-net,tapX: a name, not a key=value option.
  if (nic.emulation === 'virtio-tap' || (options[0] !== '' && !options[0]!.includes('='))) return { network: { tap: options[0]! } };
  const forwardPorts = options
    .filter((o) => o.startsWith('fwd='))
    .map((o) => /^fwd=(?:tcp:)?(\d+):(\d+)$/.exec(o))
    .filter((m) => m !== null)
    .map((m) => ({ guest: Number(m[2]), host: Number(m[1]) }));
  return { network: 'user', ...(forwardPorts.length ? { forwardPorts } : {}) };
}

/** An emulation's arguments with the host paths in them (a disk image, vsock's socket) resolved against `cwd`. */
function argsOf(emulation: string, conf: string, cwd: string): string {
  if (DISK_INTERFACES[emulation] || emulation === 'virtio-vsock') {
    const [file = '', ...options] = conf.split(',');
    return [path.resolve(cwd, file), ...options].join(',');
  }
  if (emulation === 'virtio-console') {
    // name=socket: the VMM listens on the socket (bhyve's spelling); `console` stays as it is.
    return conf
      .split(',')
      .map((item) => (item.includes('=') ? `${item.slice(0, item.indexOf('='))}=${path.resolve(cwd, item.slice(item.indexOf('=') + 1))}` : item))
      .join(',');
  }
  return conf;
}

/**
 * bootGuest()'s `disks`, `rng`, `console` and `ports` for the -s disk, virtio-rnd and
 * virtio-console slots (bootGuest picks the slots, and the ports' sockets).
 */
function devicesOf(args: HyveArgs, cwd: string): Pick<BootGuestOptions, 'disks' | 'rng' | 'console' | 'ports'> {
  const disks = args.slots
    .filter((d) => DISK_INTERFACES[d.emulation] && d.conf)
    .map((d) => {
      const { file, ...options } = parseDiskConf(d.conf!);
      const diskInterface = DISK_INTERFACES[d.emulation]!;
      return { path: path.resolve(cwd, file), ...(diskInterface !== 'virtio' ? { interface: diskInterface } : {}), ...options };
    });
  const consoleItems = args.slots.filter((d) => d.emulation === 'virtio-console').flatMap((d) => (d.conf ?? '').split(','));
  const ports = consoleItems.filter((item) => item.includes('=')).map((item) => item.slice(0, item.indexOf('=')));
  return {
    ...(disks.length ? { disks } : {}),
    ...(args.slots.some((d) => d.emulation === 'virtio-rnd') ? { rng: true } : {}),
    ...(consoleItems.includes('console') ? { console: 'virtio' as const } : {}),
    ...(ports.length ? { ports } : {}),
  };
}

function machineOf(args: HyveArgs): Required<Omit<Machine, 'pvhEntry'>> {
  return {
    acpi: args.acpi,
    mpTable: args.mpTable,
    rtcUtc: args.rtcUtc,
    x2apic: args.x2apic,
    exitOnUnhandledIo: args.exitOnUnhandledIo,
  };
}

function requireRunnable(args: HyveArgs): NonNullable<HyveArgs['firmware']> {
  const problem = unsupported(args);
  if (problem) throw problem;
  if (!args.firmware) throw new UsageError('-f kexec,kernel,initrd,cmdline is required');
  checkSlots(args);
  return args.firmware;
}

/** The raw VM the CLI starts: the kernel command line verbatim, as xhyve passes it. */
export function toVmConfig(args: HyveArgs, cwd = process.cwd()): ChildConfig {
  const firmware = requireRunnable(args);
  return {
    kernel: path.resolve(cwd, firmware.kernel),
    ...(firmware.initrd ? { initrd: path.resolve(cwd, firmware.initrd) } : {}),
    cmdline: firmware.cmdline,
    memoryMiB: args.memoryMiB,
    cpus: args.cpus,
    ...(args.uuid ? { uuid: args.uuid } : {}),
    ...machineOf(args),
    ...(args.slots.length > 0 ? { pciDevices: pciDevicesOf(args, cwd) } : {}),
    ...(args.profile ? { profile: resolveProfile(args.profile, cwd) } : {}),
  };
}

function resolveProfile(profile: NonNullable<HyveArgs['profile']>, cwd: string): NonNullable<HyveArgs['profile']> {
  return {
    file: path.resolve(cwd, profile.file),
    ...(profile.hz === undefined ? {} : { hz: profile.hz }),
    ...(profile.symbols === undefined ? {} : { symbols: path.resolve(cwd, profile.symbols) }),
  };
}

/** Formats MiB as the shortest of G or M. */
function formatMemory(mib: number): string {
  return mib % 1024 === 0 ? `${mib / 1024}G` : `${mib}M`;
}

export interface ToBootOptionsResult {
  options: BootGuestOptions;
  /** Differences bootGuest() would make that the options cannot express. */
  warnings: string[];
}

/** The bootGuest() options that boot the same machine as this command line. */
export function toBootOptions(args: HyveArgs, cwd = process.cwd()): ToBootOptionsResult {
  const config = toVmConfig(args, cwd);
  const warnings: string[] = [];
  let cmdline = config.cmdline ?? '';
  const devices = devicesOf(args, cwd);
  const hyveArgs = devices.console === 'virtio' ? HYVE_VIRTIO_CONSOLE_KERNEL_ARGS : HYVE_KERNEL_ARGS;
  if (cmdline === hyveArgs || cmdline.startsWith(`${hyveArgs} `)) {
    cmdline = cmdline.slice(hyveArgs.length + 1);
  } else {
    warnings.push(`bootGuest() puts '${hyveArgs}' in front of cmdline; the guest's kernel command line will have them too`);
  }
  if (args.com1?.kind !== 'stdio' || args.com2) {
    warnings.push('bootGuest() connects COM1 to its serial console (guest.serial); the -l settings have no equivalent');
  }
  if (args.pidfile) warnings.push('-F has no bootGuest() equivalent');
  if (args.slots.some((d) => d.emulation === 'virtio-console' && d.conf?.includes('='))) {
    warnings.push('bootGuest() makes its own sockets for virtio-console ports: reach them with guest.openPort(name)');
  }
  const options: BootGuestOptions = {
    kernel: config.kernel,
    ...(config.initrd ? { initrd: config.initrd } : {}),
    ...(cmdline ? { cmdline } : {}),
    memory: formatMemory(args.memoryMiB),
    cpus: args.cpus,
    ...(args.uuid ? { uuid: args.uuid } : {}),
    machine: machineOf(args),
    ...devices,
    ...networkOf(args),
    ...(config.profile ? { profile: config.profile } : {}),
  };
  return { options, warnings };
}

/**
 * The bootGuest() options for an xhyve-style argv (without the program name): what
 * `hyve --print-options` prints. Throws UsageError or NotImplementedError.
 */
export function fromCommandLine(argv: readonly string[], cwd = process.cwd()): ToBootOptionsResult {
  return toBootOptions(parseArgs(argv), cwd);
}

/** Quotes one argv word for a POSIX shell, only when it needs it. */
export function shellQuote(word: string): string {
  if (word !== '' && /^[A-Za-z0-9_@%+=:,./-]+$/.test(word)) return word;
  return `'${word.replace(/'/g, `'\\''`)}'`;
}

/**
 * The xhyve-style argv (without the program name) that boots the machine these bootGuest()
 * options describe, with COM1 on the terminal. `kernel` is required (the default guest has
 * no fixed path: pass ensureDefaultGuest()'s). Harness-only options (ready, timeoutMs,
 * signal, onProgress, onLog, verifySnapshot) have no flag and are left out.
 * `machine.pvhEntry` and `snapshot` change the machine or how it starts, have no xhyve
 * flag, and are refused.
 */
export function toCommandLine(options: BootGuestOptions): string[] {
  validateBootGuestOptions(options, 'toCommandLine');
  if (options.kernel === undefined) {
    throw badConfig('toCommandLine', 'options.kernel is required (for the default guest, pass ensureDefaultGuest().kernel)');
  }
  const machine = { ...BOOT_GUEST_MACHINE_DEFAULTS, ...options.machine };
  if (options.machine?.pvhEntry) throw badConfig('toCommandLine', 'machine.pvhEntry has no xhyve flag');
  if (options.snapshot !== undefined) throw badConfig('toCommandLine', 'snapshot (restoring instead of booting) has no xhyve flag');
  const cpus = options.cpus ?? 1;
  const argv: string[] = [];
  const flags = [machine.acpi && 'A', machine.exitOnUnhandledIo && 'e', machine.rtcUtc && 'u', machine.x2apic && 'x', !machine.mpTable && 'Y']
    .filter(Boolean)
    .join('');
  if (flags) argv.push(`-${flags}`);
  argv.push('-m', formatMemory(parseMemoryMiB(options.memory ?? 256)));
  argv.push('-c', String(cpus));
  if (options.uuid !== undefined) argv.push('-U', checkUuid(options.uuid));
  argv.push('-s', '0:0,hostbridge', '-s', '31,lpc', '-l', 'com1,stdio');
  // The slots bootGuest() gives them (src/disks.ts).
  if (options.rng) argv.push('-s', `${RNG_SLOT},virtio-rnd`);
  if (options.ports?.length) throw badConfig('toCommandLine', 'ports have sockets bootGuest() makes; spell them -s N,virtio-console,name=/socket/path');
  if (options.console === 'virtio') argv.push('-s', `${CONSOLE_SLOT},virtio-console,console`);
  (options.disks ?? []).forEach((disk, i) => {
    if (disk.path.includes(',')) throw badConfig('toCommandLine', `${disk.path}: -s cannot hold a path with a comma`);
    argv.push('-s', `${FIRST_DISK_SLOT + i},${DISK_EMULATIONS[disk.interface ?? 'virtio']},${diskConf(path.resolve(disk.path), disk)}`);
  });
  if (options.network !== undefined) {
    const forwards = (options.forwardPorts ?? []).map((f) => {
      if (!f.host) throw badConfig('toCommandLine', `forwardPorts: guest port ${f.guest} needs a host port for -s (fwd=tcp:HOST:GUEST)`);
      return `fwd=tcp:${f.host}:${f.guest}`;
    });
    const conf = options.network === 'user' ? ['virtio-net', ...forwards] : ['virtio-tap', options.network.tap];
    argv.push('-s', [NET_SLOT, ...conf].join(','));
  }
  for (const file of [options.kernel, options.initrd]) {
    if (file?.includes(',')) throw badConfig('toCommandLine', `${file}: xhyve's -f cannot hold a path with a comma`);
  }
  const cmdline = [options.console === 'virtio' ? HYVE_VIRTIO_CONSOLE_KERNEL_ARGS : HYVE_KERNEL_ARGS, options.cmdline].filter(Boolean).join(' ');
  if (options.profile) {
    argv.push('--profile', path.resolve(options.profile.file));
    if (options.profile.hz !== undefined) argv.push('--profile-hz', String(options.profile.hz));
    if (options.profile.symbols !== undefined) argv.push('--profile-symbols', path.resolve(options.profile.symbols));
  }
  argv.push('-f', `kexec,${path.resolve(options.kernel)},${options.initrd ? path.resolve(options.initrd) : ''},${cmdline}`);
  return argv;
}
