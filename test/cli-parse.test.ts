/**
 * The xhyve command-line parser, table-driven from the lines in xhyve's man page and
 * example scripts (xhyverun*.sh) and hyve.1's examples, and the conversion to and from
 * bootGuest() options. Pure: no VM runs here.
 */
import path from 'node:path';
import { describe, expect, test } from 'vitest';
import { fromCommandLine, toCommandLine, deriveMac, HYVE_KERNEL_ARGS, NotImplementedError, UsageError } from 'hyve';
import { parseArgs, parseMemoryArg, type HyveArgs } from '../dist/src/cli/args.js';
import { EscapeDetector } from '../dist/src/cli/console.js';
import { toVmConfig, unsupported, checkSlots } from '../dist/src/cli/options.js';
import { shellWords } from './helpers/cli.js';

const cwd = '/work/vm';

interface Case {
  from: string;
  line: string;
  expect: Partial<HyveArgs>;
  /** Names that must appear in the "not implemented" error, or null when hyve can run it. */
  refused: string[] | null;
}

const cases: Case[] = [
  {
    from: 'xhyve xhyverun-tinycorelinux.sh',
    line: `-A -m 1G -s 0:0,hostbridge -s 31,lpc -l com1,stdio -f kexec,test/vmlinuz,test/initrd.gz,"earlyprintk=serial console=ttyS0"`,
    expect: {
      acpi: true,
      memoryMiB: 1024,
      cpus: 1,
      com1: { kind: 'stdio' },
      firmware: { kernel: 'test/vmlinuz', initrd: 'test/initrd.gz', cmdline: 'earlyprintk=serial console=ttyS0' },
    },
    refused: null,
  },
  {
    from: 'xhyve xhyverun.sh with SMP and NET enabled',
    line: `-A -m 1G -c 2 -s 0:0,hostbridge -s 31,lpc -l com1,stdio -s 2:0,virtio-net -f kexec,vmlinuz,initrd.gz,"earlyprintk=serial console=ttyS0"`,
    expect: { acpi: true, cpus: 2, memoryMiB: 1024 },
    refused: null,
  },
  {
    from: 'a start.sh from the xhyve community (virtio-blk disk, -U)',
    line: `-A -m 16G -c 4 -s 0:0,hostbridge -s 31,lpc -l com1,stdio -s 2:0,virtio-net -s 4,virtio-blk,hdd130gb.img -U DCF8D785-A15F-4540-9917-952204C9F465 -f kexec,vmlinuz,initrd.img,"earlyprintk=serial console=ttyS0 root=/dev/vda1 ro"`,
    expect: { memoryMiB: 16384, cpus: 4, uuid: 'dcf8d785-a15f-4540-9917-952204c9f465' },
    refused: null,
  },
  {
    from: 'xhyve.1 EXAMPLES (1): -H accepted, -P refused',
    line: `-c 2 -s 0,hostbridge -s 31,lpc -s 2,virtio-blk,/my/image -l com1,stdio -A -H -P -m 1G -f kexec,vmlinuz,initrd.gz,"earlyprintk=serial console=ttyS0"`,
    expect: { cpus: 2, noEffect: ['H'], refused: ['-P'] },
    refused: ['-P'],
  },
  {
    from: 'xhyve.1 EXAMPLES (3): AHCI disks and an AMD host bridge',
    line: `-c 4 -s 0,amd_hostbridge -s 31,lpc -s 1:0,ahci-hd,/images/disk.1 -s 1:1,ahci-hd,/images/disk.2 -s 2,ahci-cd,/images/install.iso -s 3,virtio-net,tap0 -l com1,/dev/nmdm0A -A -H -m 8G -f kexec,vmlinuz,initrd.gz,"earlyprintk=serial console=ttyS0"`,
    expect: { cpus: 4, memoryMiB: 8192, com1: { kind: 'device', path: '/dev/nmdm0A' } },
    refused: ['amd_hostbridge'],
  },
  {
    from: 'hyve.1 EXAMPLES (2): autopty with a link and a log',
    line: `-A -m 1G -l com1,autopty=/tmp/vm.tty,log=/tmp/vm.log -f kexec,vmlinuz,initrd.gz,"console=ttyS0"`,
    expect: { com1: { kind: 'autopty', path: '/tmp/vm.tty', log: '/tmp/vm.log' } },
    refused: null,
  },
  {
    from: 'getopt clustering and attached arguments',
    line: `-AuxeY -c2 -m512M -l com2,log=/tmp/com2.log -fkexec,k,,`,
    expect: {
      acpi: true,
      rtcUtc: true,
      x2apic: true,
      exitOnUnhandledIo: true,
      mpTable: false,
      cpus: 2,
      memoryMiB: 512,
      com2: { log: '/tmp/com2.log' },
      firmware: { kernel: 'k', cmdline: '' },
    },
    refused: null,
  },
  {
    from: 'defaults: no -A, -x, -u, -Y (xhyve: no ACPI, xAPIC, local-time RTC, MP table)',
    line: `-f kexec,bzImage,,"quiet"`,
    expect: { acpi: false, x2apic: false, rtcUtc: false, mpTable: true, exitOnUnhandledIo: false, memoryMiB: 256, cpus: 1 },
    refused: null,
  },
  {
    from: 'a command line with commas, and bus:slot:function',
    line: `-s 0:0:0,hostbridge -s 0:31:0,lpc -f kexec,k,i,"a=1,2 b=c,d"`,
    expect: { firmware: { kernel: 'k', initrd: 'i', cmdline: 'a=1,2 b=c,d' } },
    refused: null,
  },
  {
    from: 'FreeBSD userboot, gdb port and pinning',
    line: `-g 1234 -p 0:1 -b -w -f fbsd,userboot.so,bootvolume.img,""`,
    expect: { refused: ['-g 1234', '-p 0:1', '-b', '-w'] },
    refused: ['-g 1234', '-p 0:1', '-b', '-w', "firmware 'fbsd'"],
  },
];

describe('parsing xhyve command lines', () => {
  test.each(cases)('$from', ({ line, expect: expected, refused }) => {
    const args = parseArgs(shellWords(line));
    expect(args).toMatchObject(expected);
    const problem = unsupported(args);
    if (refused === null) {
      expect(problem).toBeNull();
    } else {
      expect(problem).toBeInstanceOf(NotImplementedError);
      for (const name of refused) expect(problem!.message).toContain(name);
      expect(problem!.message).toMatch(/not implemented yet/);
    }
  });

  test.each([
    ['1G', 1024],
    ['512m', 512],
    ['256', 256],
    ['268435456', 256], // a bare number of 1 MiB or more is bytes, as in xhyve
    ['1048576K', 1024],
    ['2t', 2 * 1024 * 1024],
    ['4096M', 4096],
  ])('-m %s is %i MiB', (text, mib) => {
    expect(parseMemoryArg(text)).toBe(mib);
  });

  test.each([
    ['-m 1X', /invalid memory size '1X'/],
    ['-m 3M', /multiple of 2 MiB/],
    ['-m 0', /multiple of 2 MiB/],
    ['-s 32,hostbridge', /invalid PCI slot '32'/],
    ['-s 2:8,virtio-net', /invalid PCI function '8'/],
    ['-s x,lpc', /invalid PCI slot 'x'/],
    ['-s 2', /expected slot,emulation/],
    ['-s 2,virtio-gpu', /unknown PCI emulation 'virtio-gpu'/],
    ['-l com3,stdio', /com1, com2/],
    ['-l com1,/tmp/x', /unknown backend '\/tmp\/x'/],
    ['-l com1,stdio,autopty', /more than one backend/],
    ['-c 0', /invalid vCPU count '0'/],
    ['-c two', /invalid vCPU count 'two'/],
    ['-U not-a-uuid', /invalid UUID/],
    ['-f kexec,vmlinuz', /expected kexec,kernel,initrd,cmdline/],
    ['-f kexec,,initrd,', /the kernel is missing/],
    ['-f grub,a,b,c', /unknown firmware 'grub'/],
    ['-Q', /unknown option -Q/],
    ['--frobnicate', /unknown option --frobnicate/],
    ['-c', /option -c needs an argument/],
    ['-A stray', /unexpected argument 'stray'/],
  ])('%s is refused', (line, message) => {
    expect(() => parseArgs(shellWords(line))).toThrow(UsageError);
    expect(() => parseArgs(shellWords(line))).toThrow(message);
  });

  test('the host bridge and LPC bridge only at their fixed slots; no slot twice', () => {
    expect(() => checkSlots(parseArgs(['-s', '1,lpc']))).toThrow(/LPC bridge at 0:31:0/);
    expect(() => checkSlots(parseArgs(['-s', '3,hostbridge']))).toThrow(/host bridge at 0:0:0/);
    expect(() => checkSlots(parseArgs(['-s', '2,virtio-net', '-s', '2:0,virtio-blk,x']))).toThrow(/0:2:0 given twice/);
  });
});

describe('the raw VM config the CLI starts', () => {
  test('the kernel command line is passed verbatim and xhyve machine defaults are explicit', () => {
    const config = toVmConfig(parseArgs(shellWords(`-m 512M -f kexec,k/bzImage,,"console=ttyS0 quiet"`)), cwd);
    expect(config).toEqual({
      kernel: '/work/vm/k/bzImage',
      cmdline: 'console=ttyS0 quiet',
      memoryMiB: 512,
      cpus: 1,
      acpi: false,
      mpTable: true,
      rtcUtc: false,
      x2apic: false,
      exitOnUnhandledIo: false,
    });
  });

  test('-s slots become the PCI functions the board builds, in the order given', () => {
    const config = toVmConfig(parseArgs(shellWords(`-s 31,lpc -s 0:0,hostbridge -f kexec,k/bzImage,,`)), cwd);
    expect(config.pciDevices).toEqual([
      { slot: 31, function: 0, emulation: 'lpc' },
      { slot: 0, function: 0, emulation: 'hostbridge' },
    ]);
    // The host bridge and the LPC bridge are always there, given or not.
    expect(toVmConfig(parseArgs(shellWords(`-s 0,hostbridge -f kexec,k/bzImage,,`)), cwd).pciDevices).toEqual([
      { slot: 0, function: 0, emulation: 'hostbridge' },
      { slot: 31, function: 0, emulation: 'lpc' },
    ]);
  });

  test('-s N,virtio-blk,path[,ro] and -s N,virtio-rnd reach the board, the path resolved against the cwd', () => {
    const line = `-s 3,virtio-rnd -s 4,virtio-blk,disks/a.img,ro -f kexec,k/bzImage,,`;
    expect(toVmConfig(parseArgs(shellWords(line)), cwd).pciDevices).toEqual([
      { slot: 0, function: 0, emulation: 'hostbridge' },
      { slot: 3, function: 0, emulation: 'virtio-rnd' },
      { slot: 4, function: 0, emulation: 'virtio-blk', args: `${path.resolve(cwd, 'disks/a.img')},ro` },
      { slot: 31, function: 0, emulation: 'lpc' },
    ]);
    expect(fromCommandLine(shellWords(line), cwd).options).toMatchObject({ rng: true, disks: [{ path: path.resolve(cwd, 'disks/a.img'), readOnly: true }] });
    expect(unsupported(parseArgs(shellWords(`-s 4,virtio-blk -f kexec,k,,`)))?.message).toMatch(/virtio-blk needs a disk image/);
    expect(unsupported(parseArgs(shellWords(`-s 3,virtio-rnd,x -f kexec,k,,`)))?.message).toMatch(/virtio-rnd takes no configuration/);
  });

  test('-s N,virtio-console,[console,]name=path reaches the board with its socket paths resolved', () => {
    const line = `-s 1,virtio-console,console,org.x=socks/x.sock -f kexec,k/bzImage,,"console=hvc0 panic=-1 quiet"`;
    expect(toVmConfig(parseArgs(shellWords(line)), cwd).pciDevices).toContainEqual({
      slot: 1,
      function: 0,
      emulation: 'virtio-console',
      args: `console,org.x=${path.resolve(cwd, 'socks/x.sock')}`,
    });
    const { options, warnings } = fromCommandLine(shellWords(line), cwd);
    expect(options).toMatchObject({ console: 'virtio', ports: ['org.x'], cmdline: 'quiet' });
    expect(warnings.join('\n')).toMatch(/guest\.openPort/);
    expect(unsupported(parseArgs(shellWords(`-s 1,virtio-console -f kexec,k,,`)))?.message).toMatch(/virtio-console needs ports/);
    expect(toCommandLine({ kernel: '/k', console: 'virtio' }).join(' ')).toMatch(/-s 1,virtio-console,console .*console=hvc0 panic=-1/);
    expect(() => toCommandLine({ kernel: '/k', ports: ['a'] })).toThrow(/virtio-console,name=/);
  });

  test('toCommandLine() spells disks and rng as -s slots', () => {
    const argv = toCommandLine({ kernel: '/k', rng: true, disks: [{ path: '/d.img', ephemeral: true, serial: 's1' }] });
    expect(argv.join(' ')).toContain('-s 3,virtio-rnd -s 4,virtio-blk,/d.img,ephemeral,serial=s1');
    const ahci = toCommandLine({ kernel: '/k', disks: [{ path: '/d.img', interface: 'ahci', readOnly: true }, { path: '/c.iso', interface: 'ahci-cd' }, { path: '/v.img', interface: 'virtio' }] });
    expect(ahci.join(' ')).toContain('-s 4,ahci-hd,/d.img,ro -s 5,ahci-cd,/c.iso -s 6,virtio-blk,/v.img');
  });

  test('-s N,ahci-hd,path[,ro] and -s N,ahci-cd,path reach the board and convert to disks with their interface', () => {
    const line = `-s 4,ahci-hd,a.img,ro -s 5,ahci-cd,cd/b.iso -f kexec,k/bzImage,,`;
    expect(toVmConfig(parseArgs(shellWords(line)), cwd).pciDevices).toEqual([
      { slot: 0, function: 0, emulation: 'hostbridge' },
      { slot: 4, function: 0, emulation: 'ahci-hd', args: `${path.resolve(cwd, 'a.img')},ro` },
      { slot: 5, function: 0, emulation: 'ahci-cd', args: path.resolve(cwd, 'cd/b.iso') },
      { slot: 31, function: 0, emulation: 'lpc' },
    ]);
    expect(fromCommandLine(shellWords(line), cwd).options.disks).toEqual([
      { path: path.resolve(cwd, 'a.img'), interface: 'ahci', readOnly: true },
      { path: path.resolve(cwd, 'cd/b.iso'), interface: 'ahci-cd' },
    ]);
    expect(unsupported(parseArgs(shellWords(`-s 5,ahci-cd -f kexec,k,,`)))?.message).toMatch(/ahci-cd needs a disk image/);
  });

  test('-f is required', () => {
    expect(() => toVmConfig(parseArgs(['-A', '-m', '1G']))).toThrow(/-f kexec,kernel,initrd,cmdline is required/);
  });
});

describe('bootGuest() options and back', () => {
  test('a command line starting with the harness arguments converts exactly', () => {
    const line = `-A -x -u -m 1G -c 2 -s 0:0,hostbridge -s 31,lpc -l com1,stdio -f kexec,bzImage,initrd.cpio,"${HYVE_KERNEL_ARGS} quiet"`;
    const { options, warnings } = fromCommandLine(shellWords(line), cwd);
    expect(warnings).toEqual([]);
    expect(options).toEqual({
      kernel: '/work/vm/bzImage',
      initrd: '/work/vm/initrd.cpio',
      cmdline: 'quiet',
      memory: '1G',
      cpus: 2,
      machine: { acpi: true, mpTable: true, rtcUtc: true, x2apic: true, exitOnUnhandledIo: false },
    });
    expect(toCommandLine(options)).toEqual([
      '-Aux',
      '-m',
      '1G',
      '-c',
      '2',
      '-s',
      '0:0,hostbridge',
      '-s',
      '31,lpc',
      '-l',
      'com1,stdio',
      '-f',
      `kexec,/work/vm/bzImage,/work/vm/initrd.cpio,${HYVE_KERNEL_ARGS} quiet`,
    ]);
  });

  test('any other command line converts with a note that bootGuest adds its arguments', () => {
    const { options, warnings } = fromCommandLine(shellWords(`-f kexec,/k,,"earlyprintk=serial console=ttyS0"`));
    expect(options.cmdline).toBe('earlyprintk=serial console=ttyS0');
    expect(options.machine).toEqual({ acpi: false, mpTable: true, rtcUtc: false, x2apic: false, exitOnUnhandledIo: false });
    expect(warnings.join('\n')).toMatch(/puts 'console=ttyS0 panic=-1' in front/);
  });

  test.each([
    { kernel: '/k/bzImage' },
    { kernel: '/k/bzImage', initrd: '/k/initrd', cmdline: 'quiet loglevel=3', memory: 512, cpus: 4 },
    { kernel: '/k/vmlinux', memory: '2G', machine: { acpi: false, x2apic: false } },
    { kernel: '/k/vmlinux', memory: '1048576K', machine: { mpTable: false, rtcUtc: false, exitOnUnhandledIo: true } },
  ])('options → argv → options keeps the machine: %j', (options) => {
    const argv = toCommandLine(options);
    const back = fromCommandLine(argv).options;
    const machine = { acpi: true, mpTable: true, rtcUtc: true, x2apic: true, exitOnUnhandledIo: false, ...options.machine };
    expect(back.machine).toEqual(machine);
    expect(back.kernel).toBe(options.kernel);
    expect(back.initrd).toBe(options.initrd);
    expect(back.cmdline).toBe(options.cmdline);
    expect(back.cpus).toBe(options.cpus ?? 1);
    expect(toCommandLine(back)).toEqual(argv);
  });

  test('what has no xhyve flag is refused', () => {
    expect(() => toCommandLine({})).toThrow(/options.kernel is required/);
    expect(() => toCommandLine({ kernel: '/k', machine: { pvhEntry: true } })).toThrow(/pvhEntry has no xhyve flag/);
    expect(() => toCommandLine({ kernel: '/k', snapshot: '/tmp/snap' })).toThrow(/snapshot .* has no xhyve flag/);
    expect(() => toCommandLine({ kernel: '/a,b' })).toThrow(/comma/);
    expect(() => fromCommandLine(['-s', '2,virtio-vpnkit', '-f', 'kexec,/k,,'])).toThrow(NotImplementedError);
    expect(() => toCommandLine({ kernel: '/k', network: 'user', forwardPorts: [{ guest: 80 }] })).toThrow(/guest port 80 needs a host port/);
  });

  test('a NIC: virtio-net with forwards is network user, virtio-tap (or bhyve\'s virtio-net,tapX) is a tap', () => {
    const user = fromCommandLine(['-s', '2,virtio-net,fwd=tcp:2222:22,fwd=8080:80', '-f', 'kexec,/k,,']).options;
    expect(user.network).toBe('user');
    expect(user.forwardPorts).toEqual([{ guest: 22, host: 2222 }, { guest: 80, host: 8080 }]);
    expect(toCommandLine(user)).toContain('2,virtio-net,fwd=tcp:2222:22,fwd=tcp:8080:80');
    expect(fromCommandLine(['-s', '2,virtio-tap,tap1', '-f', 'kexec,/k,,']).options.network).toEqual({ tap: 'tap1' });
    expect(fromCommandLine(['-s', '3,virtio-net,tap0', '-f', 'kexec,/k,,']).options.network).toEqual({ tap: 'tap0' });
    expect(() => fromCommandLine(['-s', '2,virtio-tap', '-f', 'kexec,/k,,'])).toThrow(/virtio-tap needs a tap device/);
    // With -U the VMM gets the MAC -M prints for the slot.
    const uuid = 'dcf8d785-a15f-4540-9917-952204c9f465';
    const config = toVmConfig(parseArgs(['-U', uuid, '-s', '2,virtio-net,fwd=tcp:2222:22', '-f', 'kexec,/k,,']));
    const mac = deriveMac(uuid, { bus: 0, slot: 2, func: 0 });
    expect(config.pciDevices?.find((d) => d.emulation === 'virtio-net')?.args).toBe(`fwd=tcp:2222:22,mac=${mac}`);
  });

  test('relative paths resolve against the working directory', () => {
    const { options } = fromCommandLine(['-f', 'kexec,vmlinuz,initrd.gz,'], cwd);
    expect(options.kernel).toBe(path.join(cwd, 'vmlinuz'));
    expect(options.initrd).toBe(path.join(cwd, 'initrd.gz'));
  });
});

describe('MAC addresses', () => {
  test('derived from the UUID and PCI address: locally administered, unicast, stable', () => {
    const mac = deriveMac('8a1f0e4c-3b2d-4c5e-9f60-7a8b9c0d1e2f', { bus: 0, slot: 2, func: 0 });
    expect(mac).toBe('b6:c4:8a:44:99:a0');
    expect(deriveMac('8A1F0E4C-3B2D-4C5E-9F60-7A8B9C0D1E2F', { bus: 0, slot: 2, func: 0 })).toBe(mac);
    const first = parseInt(mac.slice(0, 2), 16);
    expect(first & 2).toBe(2);
    expect(first & 1).toBe(0);
    expect(deriveMac('8a1f0e4c-3b2d-4c5e-9f60-7a8b9c0d1e2f', { bus: 0, slot: 2, func: 1 })).not.toBe(mac);
  });
});

describe('the ~. escape', () => {
  const feed = (...chunks: string[]) => {
    const detector = new EscapeDetector();
    let forwarded = '';
    for (const chunk of chunks) {
      const { forward, escape } = detector.feed(Buffer.from(chunk));
      forwarded += forward.toString();
      if (escape) return { forwarded, escape: true };
    }
    return { forwarded, escape: false };
  };

  test.each([
    [['~.'], '', true],
    [['ls\r~.'], 'ls\r', true],
    [['ls\r', '~', '.'], 'ls\r', true],
    [['a~.'], 'a~.', false],
    [['~~.'], '~.', false],
    [['\r~x'], '\r~x', false],
    [['\n~~\r~.'], '\n~\r', true],
  ] as const)('%j forwards %j (escape: %s)', (chunks, forwarded, escape) => {
    expect(feed(...chunks)).toEqual({ forwarded, escape });
  });
});
