/**
 * The `hyve` command: xhyve's command line, run in the foreground with the console on the
 * terminal; `hyve fixtures` builds the default guest; `hyve profile-report` summarizes a profile;
 * `hyve initramfs --with-ssh` appends the SSH overlay to an initrd. Exit status as hyperkit documents it:
 * 0 poweroff or halt, 1 error, 2 reboot, 3 triple fault.
 */
import { randomUUID } from 'node:crypto';
import { closeSync, openSync, readFileSync, unlinkSync, writeSync } from 'node:fs';
import path from 'node:path';
import { ensureDefaultGuest, fetchDebianKernel, defaultCacheDir } from '../fixtures/index.js';
import { progressRenderer } from '../progress.js';
import { notRegularFile } from '../input-file.js';
import { packageRoot } from '../paths.js';
import { VmProcess, VmStartError, type VmExit } from '../vm-process.js';
import { NotImplementedError, UsageError, parseArgs, type HyveArgs } from './args.js';
import { Console } from './console.js';
import { flag, usageText } from './flags.js';
import { macAddresses, toBootOptions, toVmConfig } from './options.js';
import { profileReport } from './profile-report.js';
import { appendSshOverlay, SSH_KERNEL_ARGS } from '../fixtures/ssh-overlay.js';

const fixturesUsage = `usage: hyve fixtures [--debian-kernel]
  fixtures          build the default guest (kernel + initramfs) into ${defaultCacheDir()}
  --debian-kernel   also fetch Debian's stock kernel (for tests that boot it)`;

async function fixtures(rest: string[]): Promise<number> {
  const unknown = rest.filter((a) => a !== '--debian-kernel');
  if (unknown.length) {
    console.error(`hyve fixtures: unknown option ${unknown[0]}\n${fixturesUsage}`);
    return 1;
  }
  // One status line on a terminal, a line every few seconds in a log; the build's own
  // output goes to the log file in the cache.
  const onProgress = progressRenderer();
  try {
    const guest = await ensureDefaultGuest({ onProgress });
    const debian = rest.includes('--debian-kernel')
      ? await fetchDebianKernel({ cacheDir: defaultCacheDir(), onProgress })
      : undefined;
    onProgress.end();
    console.log(`kernel   ${guest.kernel}\nvmlinux  ${guest.vmlinux}\ninitrd   ${guest.initrd}`);
    if (debian) console.log(`debian   ${debian.vmlinuz} (${debian.version})`);
    return 0;
  } catch (error) {
    onProgress.end();
    // Build errors start with 'hyve:' and end with the failing command's last output lines.
    const { message } = error as Error;
    process.stderr.write(`${message.startsWith('hyve:') ? '' : 'hyve fixtures: '}${message}\n`);
    return 1;
  }
}

const initramfsUsage = 'usage: hyve initramfs --with-ssh IN.cpio[.gz] OUT.cpio';

/**
 * `hyve initramfs --with-ssh in out`: `in` with hyve's SSH overlay appended, so a guest
 * booted from it (with `rdinit=/hyve/init`, SSH_KERNEL_ARGS) answers guest.exec() over vsock.
 */
async function initramfs(rest: string[]): Promise<number> {
  const files = rest.filter((a) => a !== '--with-ssh');
  if (!rest.includes('--with-ssh') || files.length !== 2 || files.some((f) => f.startsWith('-'))) {
    console.error(initramfsUsage);
    return 1;
  }
  try {
    const identity = await appendSshOverlay(files[0]!, files[1]!, { cacheDir: defaultCacheDir() });
    console.log(`${files[1]}: boot it with the kernel argument ${SSH_KERNEL_ARGS}; SSH host key ${identity.hostKeyFingerprint}`);
    return 0;
  } catch (error) {
    process.stderr.write(`hyve initramfs: ${(error as Error).message}\n`);
    return 1;
  }
}

function version(): string {
  const pkg = JSON.parse(readFileSync(path.join(packageRoot, 'package.json'), 'utf8')) as { version: string };
  return `hyve ${pkg.version}\n\nhyve runs Linux guests on its own KVM hypervisor, a port of the xhyve/bhyve design.`;
}

function checkFile(file: string, what: string): void {
  const problem = notRegularFile(file);
  if (problem !== undefined) throw new UsageError(`${what} ${file} ${problem}`);
}

/** Writes the pid file as xhyve does (refusing to overwrite one) and returns its remover. */
function writePidfile(file: string): () => void {
  let fd: number;
  try {
    fd = openSync(file, 'wx', 0o644);
  } catch (error) {
    throw new Error(`pid file ${file}: ${(error as Error).message}`);
  }
  writeSync(fd, String(process.pid));
  closeSync(fd);
  let removed = false;
  const remove = () => {
    if (removed) return;
    removed = true;
    try {
      unlinkSync(file);
    } catch {
      // already gone
    }
  };
  process.on('exit', remove);
  return remove;
}

function describeExit(exit: VmExit): string | undefined {
  switch (exit.outcome) {
    case 'poweroff':
      return undefined;
    case 'reboot':
      return 'the guest rebooted';
    case 'triple-fault':
      return `the guest triple-faulted${exit.message ? `: ${exit.message}` : ''}`;
    default:
      return exit.message || 'the VM stopped with an error';
  }
}

/** Boots the VM and runs it until it ends; resolves with the exit status. */
async function run(args: HyveArgs): Promise<number> {
  const config = toVmConfig(args);
  checkFile(config.kernel, 'kernel');
  if (config.initrd) checkFile(config.initrd, 'initrd');
  for (const letter of args.noEffect) {
    const spec = flag(letter)!;
    process.stderr.write(`hyve: -${letter} has no effect: ${spec.note}\n`);
  }
  const removePidfile = args.pidfile ? writePidfile(args.pidfile) : () => {};

  let vm: VmProcess | undefined;
  let ending: string | undefined;
  const console_ = new Console({
    com1: args.com1,
    com2: args.com2,
    send: (data, port) => vm?.write(data, port),
    onEscape: () => stop('~. typed: stopping the VM'),
  });
  const stop = (why: string) => {
    if (ending) return;
    ending = why;
    console_.message(`hyve: ${why}`);
    void vm?.kill();
  };
  const signals = ['SIGINT', 'SIGTERM', 'SIGHUP'] as const;
  const onSignal = (signal: NodeJS.Signals) => stop(`${signal}: stopping the VM`);
  for (const signal of signals) process.on(signal, onSignal);
  try {
    await console_.open();
    vm = new VmProcess(config);
    const killVm = () => void vm?.kill();
    process.on('exit', killVm);
    vm.on('console', (port, data) => console_.output(port, data));
    vm.on('log', (line) => console_.message(`hyve: ${line}`));
    try {
      await vm.started;
    } catch (error) {
      if (!ending) console_.message(`hyve: ${(error as Error).message}`);
      await vm.exited;
      return 1;
    }
    const exit = await vm.exited;
    process.off('exit', killVm);
    if (ending) return 1;
    const why = describeExit(exit);
    if (why) console_.message(`hyve: ${why} (exit status ${exit.code})`);
    return exit.code;
  } finally {
    for (const signal of signals) process.off(signal, onSignal);
    await console_.close();
    removePidfile();
  }
}

/** Runs the command line; resolves with the exit status. Never throws. */
export async function main(argv: string[]): Promise<number> {
  if (argv[0] === 'fixtures') return fixtures(argv.slice(1));
  if (argv[0] === 'profile-report') return profileReport(argv.slice(1));
  if (argv[0] === 'initramfs') return initramfs(argv.slice(1));
  try {
    const args = parseArgs(argv);
    if (args.help) {
      process.stdout.write(`${usageText()}\n`);
      return 0;
    }
    if (args.version) {
      process.stdout.write(`${version()}\n`);
      return 0;
    }
    if (args.printMac) {
      const macs = macAddresses(args, args.uuid ?? randomUUID());
      if (macs.length === 0) throw new UsageError('-M: no network device to print the MAC of (add -s slot,virtio-net)');
      process.stdout.write(macs.map(({ mac }) => `MAC: ${mac}\n`).join(''));
      return 0;
    }
    if (args.printOptions) {
      const { options, warnings } = toBootOptions(args);
      for (const warning of warnings) process.stderr.write(`hyve: note: ${warning}\n`);
      process.stdout.write(`${JSON.stringify(options, null, 2)}\n`);
      return 0;
    }
    if (argv.length === 0) {
      process.stderr.write(`${usageText()}\n`);
      return 1;
    }
    return await run(args);
  } catch (error) {
    const e = error as Error;
    process.stderr.write(`hyve: ${e.message.replace(/\n/g, '\nhyve: ')}\n`);
    if (e instanceof UsageError) process.stderr.write("hyve: 'hyve -h' lists the options\n");
    else if (!(e instanceof NotImplementedError || e instanceof VmStartError)) {
      if (process.env.HYVE_DEBUG) process.stderr.write(`${e.stack}\n`);
    }
    return 1;
  }
}
