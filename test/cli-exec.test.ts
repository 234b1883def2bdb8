/**
 * The built `hyve` executable as a subprocess, without a terminal: bad input gives a
 * message on stderr and exit status 1, -M prints stable MACs, --print-options prints
 * bootGuest() options, and `hyve -h` agrees with the man page.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, test } from 'vitest';
import { HYVE_KERNEL_ARGS } from 'hyve';
import { FLAGS } from '../dist/src/cli/flags.js';
import { buildGuest } from './helpers/guests.js';
import { repoRoot, runCli, shellWords } from './helpers/cli.js';

describe('bad command lines: a message on stderr, exit status 1', () => {
  test.each([
    ['missing -f', '-A -m 1G -s 0:0,hostbridge -s 31,lpc -l com1,stdio', /-f kexec,kernel,initrd,cmdline is required/],
    ['bad slot', '-s 32,virtio-net -f kexec,k,,', /invalid PCI slot '32'/],
    ['bad function', '-s 2:9,virtio-net -f kexec,k,,', /invalid PCI function '9'/],
    ['LPC at another slot', '-s 1,lpc -f kexec,k,,', /LPC bridge at 0:31:0/],
    ['bad size', '-m 12Q -f kexec,k,,', /invalid memory size '12Q'/],
    ['odd size', '-m 3M -f kexec,k,,', /multiple of 2 MiB/],
    ['unknown emulation', '-s 2,virtio-gpu -f kexec,k,,', /unknown PCI emulation 'virtio-gpu'/],
    ['unknown flag', '-Z -f kexec,k,,', /unknown option -Z/],
    ['unknown long option', '--frobnicate', /unknown option --frobnicate/],
    ['bad UUID', '-U 1234 -f kexec,k,,', /invalid UUID '1234'/],
    ['bad -l', '-l com1,telnet -f kexec,k,,', /unknown backend 'telnet'/],
    ['missing kernel file', '-f kexec,/nonexistent/bzImage,,', /kernel \/nonexistent\/bzImage does not exist/],
    ['no arguments', '', /usage: hyve/],
  ])('%s', (_name, line, message) => {
    const result = runCli(shellWords(line));
    expect(result.status).toBe(1);
    expect(result.stdout).toBe('');
    expect(result.stderr).toMatch(message);
  });

  test.each([
    ['virtio-sock', '-s 2:0,virtio-sock', /-s 2:0,virtio-sock: PCI emulation 'virtio-sock' is not implemented yet/],
    ['virtio-9p', '-s 5,virtio-9p,share=/tmp', /'virtio-9p' is not implemented yet/],
    ['virtio-tap without a tap device', '-s 5,virtio-tap', /virtio-tap needs a tap device: -s N,virtio-tap,tap0/],
    ['ahci-hd without an image', '-s 6,ahci-hd', /ahci-hd needs a disk image: -s N,ahci-hd,path\[,ro\]/],
    ['PCI uart', '-s 7,uart', /'uart' is not implemented yet \(COM1 and COM2 are on the LPC bridge/],
    ['-P', '-P', /-P \(vCPU exits on PAUSE\): not implemented yet/],
    ['-w', '-w', /-w \(ignore unimplemented MSRs\): not implemented yet; KVM handles MSRs/],
    ['-p', '-p 0:1', /-p 0:1 \(pin a vCPU to a host CPU\): not implemented yet/],
    ['fbsd firmware', '', /firmware 'fbsd' is not implemented yet/, 'fbsd,userboot.so,disk.img,'],
    ['boot ROM', '-l bootrom,rom.fd', /the LPC boot ROM is not implemented yet/],
  ])('%s is refused by name, not ignored', (_name, flags, message, firmware = 'kexec,k,,') => {
    const result = runCli([...shellWords(flags), '-f', firmware]);
    expect(result.status).toBe(1);
    expect(result.stderr).toMatch(message);
  });
});

describe('-M prints MAC addresses and exits 0', () => {
  // Golden output: hyve's derivation (md5 of "uuid/bus:slot.func", locally administered,
  // unicast) computed independently with Python's hashlib when the test was written.
  test.each([
    [
      '-M -U 8a1f0e4c-3b2d-4c5e-9f60-7a8b9c0d1e2f -s 0:0,hostbridge -s 31,lpc -s 3,virtio-net -s 2:0,virtio-net,tap0 -f kexec,vmlinuz,,""',
      'MAC: b6:c4:8a:44:99:a0\nMAC: 6a:1e:f1:a2:aa:af\n',
    ],
    [
      '-A -m 16G -c 4 -s 0:0,hostbridge -s 31,lpc -l com1,stdio -s 2:0,virtio-net -s 4,virtio-blk,hdd.img -U DCF8D785-A15F-4540-9917-952204C9F465 -M -f kexec,vmlinuz,initrd.img,"earlyprintk=serial console=ttyS0 root=/dev/vda1 ro"',
      'MAC: ae:ba:e1:38:1e:a9\n',
    ],
    ['-M -U 8a1f0e4c-3b2d-4c5e-9f60-7a8b9c0d1e2f -s 2,virtio-net,tap0,mac=02:be:fa:76:45:00 -f kexec,k,,', 'MAC: 02:be:fa:76:45:00\n'],
  ])('%s', (line, golden) => {
    const result = runCli(shellWords(line));
    expect(result.stderr).toBe('');
    expect(result.stdout).toBe(golden);
    expect(result.status).toBe(0);
  });

  test('without -U the MAC is random, like xhyve without -U', () => {
    const line = ['-M', '-s', '2,virtio-net', '-f', 'kexec,k,,'];
    const [a, b] = [runCli(line), runCli(line)];
    expect(a.stdout).toMatch(/^MAC: ([0-9a-f]{2}:){5}[0-9a-f]{2}\n$/);
    expect(a.stdout).not.toBe(b.stdout);
  });

  test('without a network device there is nothing to print', () => {
    const result = runCli(['-M', '-U', '8a1f0e4c-3b2d-4c5e-9f60-7a8b9c0d1e2f', '-f', 'kexec,k,,']);
    expect(result.status).toBe(1);
    expect(result.stderr).toMatch(/no network device/);
  });
});

describe('--print-options', () => {
  test('prints the bootGuest() options of the command line as JSON', () => {
    const kernel = buildGuest('uart');
    const line = `-A -m 512M -c 2 -s 0:0,hostbridge -s 31,lpc -l com1,stdio -f kexec,${kernel},,"${HYVE_KERNEL_ARGS} quiet" --print-options`;
    const result = runCli(shellWords(line));
    expect(result.stderr).toBe('');
    expect(result.status).toBe(0);
    expect(JSON.parse(result.stdout)).toEqual({
      kernel,
      cmdline: 'quiet',
      memory: '512M',
      cpus: 2,
      machine: { acpi: true, mpTable: true, rtcUtc: false, x2apic: false, exitOnUnhandledIo: false },
    });
  });

  test('notes what bootGuest() would do differently', () => {
    const result = runCli(shellWords(`--print-options -l com1,autopty -f kexec,k,,"console=ttyS0"`));
    expect(result.status).toBe(0);
    expect(result.stderr).toMatch(/note: bootGuest\(\) puts 'console=ttyS0 panic=-1' in front/);
    expect(result.stderr).toMatch(/note: bootGuest\(\) connects COM1/);
    expect(JSON.parse(result.stdout).cmdline).toBe('console=ttyS0');
  });
});

describe('hyve -h and the man page', () => {
  const manPage = readFileSync(path.join(repoRoot, 'hyve.1'), 'utf8');
  const help = runCli(['-h']);

  test('-h prints the usage on stdout and exits 0; -v prints the version', () => {
    expect(help.status).toBe(0);
    expect(help.stdout).toMatch(/^usage: hyve /);
    const version = runCli(['-v']);
    expect(version.status).toBe(0);
    const pkg = JSON.parse(readFileSync(path.join(repoRoot, 'package.json'), 'utf8'));
    expect(version.stdout).toContain(`hyve ${pkg.version}`);
  });

  test('every flag in -h is in the man page with the same argument, and the other way round', () => {
    // `.It Fl c Ar vcpus` lines of the OPTIONS section.
    const options = manPage.slice(manPage.indexOf('.Sh OPTIONS'), manPage.indexOf('.Sh ESCAPE SEQUENCE'));
    const documented = [...options.matchAll(/^\.It Fl (-?[\w-]+)(?: Ar (\S+))?/gm)].map((m) => ({
      name: m[1]!.replace(/^-/, ''),
      arg: m[2],
    }));
    const inHelp = [...help.stdout.matchAll(/^ {2}(--?[\w-]+)(?: (\S+))?/gm)].map((m) => ({
      name: m[1]!.replace(/^--?/, ''),
      arg: m[2],
    }));
    expect(inHelp).toEqual(FLAGS.map((f) => ({ name: f.name, arg: f.arg })));
    const sort = (list: { name: string }[]) => [...list].sort((a, b) => a.name.localeCompare(b.name));
    // The man page writes the -m suffixes as a separate Op: compare the argument's head.
    const head = (list: { name: string; arg?: string }[]) => list.map((f) => ({ name: f.name, arg: f.arg?.replace(/\[.*$/, '') }));
    expect(head(sort(documented))).toEqual(head(sort(inHelp)));
  });

  test('flags hyve accepts without effect or refuses say so in both', () => {
    const options = manPage.slice(manPage.indexOf('.Sh OPTIONS'), manPage.indexOf('.Sh ESCAPE SEQUENCE'));
    for (const f of FLAGS.filter((f) => f.support !== 'yes')) {
      const entry = options.split(/^\.It Fl /m).find((e) => e.startsWith(`${f.name} `) || e.startsWith(`${f.name}\n`))!;
      expect(entry, `-${f.name} in hyve.1`).toBeDefined();
      expect(entry).toMatch(f.support === 'refused' ? /Not implemented/ : /Accepted without effect/);
      const line = help.stdout.split('\n').find((l) => l.startsWith(`  -${f.name} `))!;
      expect(line).toContain(f.support === 'refused' ? '(not implemented)' : '(no effect in hyve)');
    }
  });

  test('the exit statuses and the escape sequence agree', () => {
    expect(help.stdout).toContain('0 poweroff or halt, 1 error, 2 reboot, 3 triple fault');
    expect(manPage).toMatch(/\.It 0\nthe guest powered off or halted\n\.It 1\n/);
    expect(manPage).toMatch(/\.It 2\nthe guest rebooted/);
    expect(manPage).toMatch(/\.It 3\nthe guest triple-faulted/);
    expect(help.stdout).toContain('~.');
    expect(manPage).toContain('.Ql ~.\nat the start of a line');
  });

  test('package.json installs the man page and the executable', () => {
    const pkg = JSON.parse(readFileSync(path.join(repoRoot, 'package.json'), 'utf8'));
    expect(pkg.man).toEqual(['./hyve.1']);
    expect(pkg.files).toContain('hyve.1');
    expect(pkg.bin).toEqual({ hyve: 'dist/src/cli.js' });
  });
});
