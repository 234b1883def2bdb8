/**
 * The xhyve-compatible flags of the `hyve` command: one table that the parser, `hyve -h`
 * and the man page test (test/cli-manpage.test.ts) all read, so they cannot drift apart.
 */

/** What hyve does with a flag xhyve knows. */
export type FlagSupport =
  /** Implemented. */
  | 'yes'
  /** Accepted; has no effect in hyve (the reason is in `note`). */
  | 'accepted'
  /** Refused with exit status 1: hyve cannot do it yet (the reason is in `note`). */
  | 'refused';

export interface FlagSpec {
  /** The option letter (or long name for hyve's own options, without dashes). */
  name: string;
  /** Name of the argument, if the option takes one. */
  arg?: string;
  /** One line for `hyve -h`. */
  help: string;
  support: FlagSupport;
  /** Why a flag is accepted without effect, or refused. */
  note?: string;
}

export const FLAGS: readonly FlagSpec[] = [
  { name: 'A', help: 'create ACPI tables', support: 'yes' },
  { name: 'b', help: 'bvmconsole (FreeBSD low-level console)', support: 'refused', note: 'FreeBSD guests are not supported' },
  { name: 'c', arg: 'vcpus', help: 'number of vCPUs (default 1)', support: 'yes' },
  {
    name: 'C',
    help: 'include guest memory in core files',
    support: 'accepted',
    note: 'hyve always leaves guest memory in core files',
  },
  { name: 'e', help: 'exit on unhandled I/O port access', support: 'yes' },
  { name: 'f', arg: 'kexec,kernel,initrd,cmdline', help: 'firmware: the kernel, initrd and command line to boot', support: 'yes' },
  { name: 'F', arg: 'pidfile', help: 'write the process id to pidfile', support: 'yes' },
  { name: 'g', arg: 'gdbport', help: 'FreeBSD kernel gdb stub relay', support: 'refused', note: 'FreeBSD guests are not supported' },
  { name: 'h', help: 'print this help and exit', support: 'yes' },
  {
    name: 'H',
    help: 'vCPU yields the host CPU on HLT',
    support: 'accepted',
    note: "hyve's in-kernel local APIC always blocks a halted vCPU",
  },
  { name: 'l', arg: 'com1|com2,backend', help: 'connect a COM port: stdio, autopty, /dev/tty..., log=file', support: 'yes' },
  { name: 'm', arg: 'size[K|M|G|T]', help: 'guest memory (default 256M)', support: 'yes' },
  { name: 'M', help: 'print the MAC addresses of the virtio-net slots and exit', support: 'yes' },
  { name: 'p', arg: 'vcpu:hostcpu', help: 'pin a vCPU to a host CPU', support: 'refused' },
  {
    name: 'P',
    help: 'vCPU exits on PAUSE',
    support: 'refused',
    note: 'KVM handles spinning vCPUs itself (pause-loop exiting)',
  },
  { name: 's', arg: 'slot,emulation[,conf]', help: 'PCI slot: hostbridge at 0, lpc at 31', support: 'yes' },
  { name: 'u', help: 'RTC keeps UTC (default: local time)', support: 'yes' },
  { name: 'U', arg: 'uuid', help: 'VM UUID: SMBIOS system UUID, stable MAC addresses', support: 'yes' },
  { name: 'v', help: 'print the version and exit', support: 'yes' },
  {
    name: 'w',
    help: 'ignore unimplemented MSRs',
    support: 'refused',
    note: 'KVM handles MSRs in the host kernel and injects #GP for unknown ones; the kvm.ignore_msrs module parameter changes that',
  },
  {
    name: 'W',
    help: 'virtio devices use MSI instead of MSI-X',
    support: 'accepted',
    note: 'hyve has no virtio devices yet',
  },
  { name: 'x', help: 'local APIC in x2APIC mode', support: 'yes' },
  { name: 'Y', help: 'no MP table', support: 'yes' },
  { name: 'print-options', help: 'print the equivalent bootGuest() options as JSON and exit', support: 'yes' },
  { name: 'profile', arg: 'file', help: 'profile the guest: folded stacks to file when it ends', support: 'yes' },
  { name: 'profile-hz', arg: 'hz', help: 'profile samples per second per vCPU (default 99)', support: 'yes' },
  { name: 'profile-symbols', arg: 'file', help: 'vmlinux or System.map naming the profile (default: an ELF kernel)', support: 'yes' },
];

export function flag(name: string): FlagSpec | undefined {
  return FLAGS.find((f) => f.name === name);
}

function flagText(f: FlagSpec): string {
  const dash = f.name.length === 1 ? `-${f.name}` : `--${f.name}`;
  return f.arg ? `${dash} ${f.arg}` : dash;
}

/** The `hyve -h` text. */
export function usageText(): string {
  const lines = [
    'usage: hyve [-AeMhuvxCHWY] [-c vcpus] [-F pidfile] [-l lpcdev,backend] [-m size]',
    '            [-s slot,emulation[,conf]] [-U uuid] [--print-options] [--profile file]',
    '            -f kexec,kernel,initrd,cmdline',
    '       hyve fixtures [--debian-kernel]',
    '       hyve profile-report file [--symbols file] [--top n]',
    '',
  ];
  const width = Math.max(...FLAGS.map((f) => flagText(f).length)) + 2;
  for (const f of FLAGS) {
    let help = f.help;
    if (f.support === 'accepted') help += ' (no effect in hyve)';
    if (f.support === 'refused') help += ' (not implemented)';
    lines.push(`  ${flagText(f).padEnd(width)}${help}`);
  }
  lines.push(
    '',
    'Exit status: 0 poweroff or halt, 1 error, 2 reboot, 3 triple fault.',
    'On a terminal, type ~. at the start of a line to stop the VM. See hyve(1).',
  );
  return lines.join('\n');
}
