/**
 * bootGuest(): a booted VM with its serial console, a shell protocol over it (run()), and
 * cleanup that survives failing tests (AsyncDisposable).
 */
import { appendFileSync, copyFileSync, existsSync, mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import type { Duplex } from 'node:stream';
import { defaultCacheDir, ensureDefaultGuest, DEFAULT_READY_MARKER, NO_ECHO_ARG, SHELL_EXIT_MARKER, type DefaultGuest } from './fixtures/index.js';
import { ensureSshInitrd, ensureSshOverlay, SSH_KERNEL_ARGS, SSH_NETWORK_KERNEL_ARG, SSH_TCP_PORT, SSH_VSOCK_PORT } from './fixtures/ssh-overlay.js';
import { SshError, SshPool, connectSsh, downloadOn, execOn, spawnOn, uploadOn, type ExecOptions, type ExecResult, type SpawnedCommand, type SshOptions } from './ssh.js';
import type { Client } from 'ssh2';
import {
  GuestError,
  INIT_REACHED,
  KERNEL_FAILURE_PATTERNS,
  MAX_WARNINGS,
  USER_CRASH_PATTERNS,
  bootPhase,
  newTranscriptPath,
  saveTranscript,
  type BootPhase,
} from './diagnostics.js';
import { defaultTimeoutMs } from './host.js';
import { SerialConsole } from './serial.js';
import { DEFAULT_MEMORY_MIB, parseMemoryMiB } from './size.js';
import { consoleFunction, pciDevicesFor, vsockDevice, VSOCK_SLOT, type ConsoleDevice, type DiskOptions } from './disks.js';
import { VsockError, connectVsock, newVsockSocketPath, removeVsockSocketPath, type ConnectOptions } from './vsock.js';
import { loadAddon } from './native.js';
import { checkNetworkOptions, netDevice, resolveForwards, type NetworkOption, type PortForward, type ResolvedForward } from './network.js';
import { badConfig, validateBootGuestOptions, validateDirectory, validateRunArguments, validateShutdownOptions } from './validate.js';
import { checkUuid } from './uuid.js';
import { notRegularFile } from './input-file.js';
import { VmProcess, VmStartError, type VmExit } from './vm-process.js';
import { WaitError, toWaitStrategy, type WaitStrategy } from './wait.js';
import type { ChildConfig, RestoreChildConfig } from './protocol.js';
import type { HypervisorInfo, SnapshotReport, VmStats } from './native.js';
import type { ProfileOptions } from './profile/index.js';

/** Kernel arguments hyve always passes: the console on COM1, and reboot (end) on panic. */
export const HYVE_KERNEL_ARGS = 'console=ttyS0 panic=-1';
/** HYVE_KERNEL_ARGS with `console: 'virtio'`: the console on virtio-console's port 0. */
export const HYVE_VIRTIO_CONSOLE_KERNEL_ARGS = 'console=hvc0 panic=-1';

export interface BootGuestOptions {
  /** Kernel image (bzImage or vmlinux). Omitted: the default guest, built on first use. */
  kernel?: string;
  /** Initial ramdisk (cpio, optionally compressed). Omitted with `kernel`: the default guest's. */
  initrd?: string;
  /** Appended to hyve's own kernel arguments (`console=ttyS0 panic=-1`). */
  cmdline?: string;
  /** Guest RAM: '512M', '1G', or a number of MiB. Default 256 MiB. */
  memory?: string | number;
  /** vCPUs. Default 1. */
  cpus?: number;
  /**
   * When the guest counts as booted: console text (a string matches literally), a RegExp,
   * or a wait strategy (`Wait.forSerial(re, { timeoutMs })`, `Wait.forAll([...])`).
   * Default: the default guest's ready marker. With `snapshot`: nothing is awaited unless given.
   * `'ssh'`: booted means an SSH session works (handshake and login; exec() and the others share that connection); it turns
   * `vsock` on, and the default guest's ready marker is awaited first.
   */
  ready?: string | RegExp | WaitStrategy;
  /**
   * Limit from the call until `ready`, loading the kernel (or the snapshot) included;
   * building the default guest on first use is not counted. Default 60 s (300 s on hosts
   * without hardware virtualization); restores 10 s (60 s).
   */
  timeoutMs?: number;
  /**
   * Console lines that end the guest as failed (GuestError reason 'kernel panic'); each
   * complete line is tested. Default KERNEL_FAILURE_PATTERNS (panic, BUG, Oops at the start
   * of a line, after the printk timestamp if any). `[]` turns the check off.
   */
  failOn?: readonly RegExp[];
  /** Aborts the boot (and kills the VM). */
  signal?: AbortSignal;
  /** Progress of building the default guest on first use. */
  onProgress?: (line: string) => void;
  /**
   * VMM notices, e.g. the kernel arguments hyve adds on hosts without hardware
   * virtualization. Default: printed to stderr, prefixed `hyve:`.
   */
  onLog?: (line: string) => void;
  /**
   * The VM's identity: the SMBIOS system UUID (`xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx`), which
   * the guest reads from /sys/class/dmi/id/product_uuid; xhyve's `-U`. Omitted: a random
   * one per boot. A malformed UUID is a VmStartError (HYVE_BAD_CONFIG). Not allowed with
   * `snapshot`: a restored guest keeps the snapshot's UUID (its tables are in guest RAM).
   */
  uuid?: string;
  /** Advanced machine options, as the hyve CLI's flags set them. */
  machine?: Partial<Pick<ChildConfig, 'acpi' | 'mpTable' | 'rtcUtc' | 'x2apic' | 'exitOnUnhandledIo' | 'pvhEntry'>>;
  /**
   * Restore this snapshot directory (written by `guest.snapshot()`) instead of booting.
   * The machine (memory, cpus, kernel, cmdline) is the snapshot's; `memory`, `cpus`,
   * `kernel`, `initrd` and `cmdline`, if given, must match it or the restore is refused
   * (HYVE_BAD_SNAPSHOT). Resolves as soon as the VM runs: no ready marker is awaited, and
   * the console transcript starts empty.
   */
  snapshot?: string;
  /** With `snapshot`: checksum the whole memory file even if its size and mtime are unchanged. */
  verifySnapshot?: boolean;
  /**
   * Disks in order: virtio-blk (the guest's /dev/vda, /dev/vdb, ...) unless `interface` says
   * 'ahci' (a SATA disk, /dev/sdX) or 'ahci-cd' (a CD-ROM, /dev/srN). A path that does not
   * exist or is not a regular file or block device is a VmStartError HYVE_BAD_DISK.
   * `guest.snapshot()` saves each disk's contents (virtio and AHCI alike) with the snapshot;
   * every restore writes to its own copy of them.
   */
  disks?: DiskOptions[];
  /** A virtio-rng device fed by the host's getrandom() (the guest's /dev/hwrng). Default false. */
  rng?: boolean;
  /**
   * A virtio-net NIC (the guest's eth0; the default guest brings it up by DHCP before its
   * ready marker). `'user'`: rootless user-mode networking (libslirp in the VMM): the
   * guest is 10.0.2.15, its gateway 10.0.2.2 reaches the host's 127.0.0.1, DNS is
   * 10.0.2.3. `{ tap: 'tap0' }`: an existing host tap device (root, or a tap owned by the
   * user). With `snapshot`: the restored copy gets a new backend of its own (connections
   * open at snapshot time are reset). Default: no NIC.
   */
  network?: NetworkOption;
  /**
   * With `network: 'user'`: host ports on 127.0.0.1 forwarded to guest TCP ports; a
   * missing or 0 `host` picks a free port, which `guest.hostPort(guest)` tells. Each
   * guest (each restored copy too) has its own forwards.
   */
  forwardPorts?: PortForward[];
  /**
   * Where the guest's console is: 'serial' (COM1, ttyS0, the default) or 'virtio'
   * (virtio-console port 0, hvc0; the kernel argument becomes `console=hvc0`). Either way
   * it is `guest.serial`, and run() works on it. Restored copies of a snapshot of such a
   * guest have the same console and ports (each copy its own port sockets).
   */
  console?: 'serial' | 'virtio';
  /**
   * Named virtio-console ports (MULTIPORT), ports 1, 2, ... in order: byte streams between
   * the guest's /dev/vport0pN (its name in /sys/class/virtio-ports/vport0pN/name) and
   * `guest.openPort(name)` on the host. At most 30; names are 1-64 of [A-Za-z0-9._-].
   */
  ports?: string[];
  /**
   * A virtio-vsock device (guest CID 3) whose host side is a UNIX socket of the VM's own:
   * `guest.connect(port)` opens a stream to a guest vsock port, and a guest connecting to
   * host port P reaches `${guest.vsockSocket}_P`. Default false. Restored guests have one
   * if their snapshot has (each copy its own socket; connections open at the snapshot are
   * reset in the copies).
   */
  vsock?: boolean;
  /**
   * How `guest.ssh()`, exec() and the rest reach the guest's SSH server. 'vsock' (the
   * default): over the vsock device. 'network': through a forward of guest TCP port 22 on
   * the user network (needs `network: 'user'`; the forward is added, `guest.hostPort(22)`
   * tells its host port, and no vsock device is made), for guests whose kernel has no vsock.
   * Either way the default guest carries Dropbear when SSH is asked for (`ready: 'ssh'`,
   * `vsock: true`, or this option).
   */
  ssh?: 'vsock' | 'network';
  /**
   * Profile the guest: each vCPU is sampled `hz` times a second (default 99) and the folded
   * stacks (`root;...;leaf count`) are written to `file` when the VM ends, named with
   * `symbols` (default: the default guest's vmlinux, or the kernel when it is an ELF file).
   * `npx hyve profile-report file` summarizes it.
   */
  profile?: ProfileOptions;
}

/** What `guest.snapshot()` wrote. */
export type SnapshotInfo = SnapshotReport & {
  dir: string;
  /**
   * Length of `serial.output` at the pause: the transcript up to here is what the guest
   * printed before the snapshot; a guest restored from it continues after it. (The
   * original guest keeps running, so by the time snapshot() resolves more may follow.)
   */
  transcriptOffset: number;
};

export interface RunResult {
  /** What the command printed (stdout and stderr, as the console shows them; \n line ends). */
  output: string;
  exitCode: number;
}

export interface RunOptions {
  /** Default 30 s (300 s on hosts without hardware virtualization). */
  timeoutMs?: number;
}

/** How a guest ended: xhyve's outcome and exit code (0 poweroff, 1 error, 2 reboot, 3 triple fault). */
export type GuestExit = Pick<VmExit, 'outcome' | 'code' | 'message'>;

/**
 * The command as one shell word for `eval`. Printable text travels single-quoted, read
 * by the shell itself; anything with control characters (which the tty would act on: ^C,
 * ^U, tab completion...) goes base64-encoded, at the price of a `base64` process.
 */
function shellWord(command: string): string {
  if (!/[\x00-\x09\x0b-\x1f\x7f]/.test(command)) return `'${command.replaceAll("'", "'\\''")}'`;
  return `"$(echo ${Buffer.from(command, 'utf8').toString('base64')} | base64 -d)"`;
}

/** Longest console line checked against failure patterns: a longer one keeps its last part. */
const MAX_LINE_CHARS = 64 * 1024;

function checkFile(file: string, what: string, code: string): string {
  const resolved = path.resolve(file);
  const problem = notRegularFile(resolved);
  if (problem !== undefined) throw new VmStartError(`${what} ${resolved} ${problem}`, code);
  return resolved;
}

/** A running guest. Dispose it (`await using`) or call shutdown()/kill(). */
export class Guest implements AsyncDisposable {
  /** COM1: the guest's console. */
  readonly serial: SerialConsole;
  /** Settles once the VM has ended, however it ended. Never rejects. */
  readonly exited: Promise<GuestExit>;
  private failure: GuestError | undefined;
  /** Set when the host ends the guest on purpose: no failure report then. */
  private ending = false;
  private runQueue: Promise<unknown> = Promise.resolve();
  private readyReached = false;
  /** The console line being received (its end not yet seen), for scanLines(). */
  private partialLine = '';
  private initReached = false;
  /** The full transcript's file, once output had to be dropped from memory (see SerialConsole). */
  private spillPath: string | undefined;
  private readonly warningLines: string[] = [];
  /** Set when a timed-out run() could not get the shell back: later runs fail with it. */
  private unusable: GuestError | undefined;
  /** Whether the console tty echoed the last command line (assumed until seen). */
  private consoleEchoes = true;
  private readonly failOn: readonly RegExp[];
  private forwards: readonly ResolvedForward[] = [];
  private readonly sshClients = new Set<Client>();
  /** The connections exec/upload/download share; spawn() opens its own through it (see SshPool). */
  private readonly sshPool = new SshPool(() => this.ssh());

  /** @internal use bootGuest() */
  constructor(
    private readonly vm: VmProcess,
    private readonly name: string,
    failOn: readonly RegExp[] = KERNEL_FAILURE_PATTERNS,
    /** The host side of the guest's vsock device, if it may have one. */
    readonly vsockSocket?: string,
    /** SSH goes through the user network's forward of guest port 22 instead of vsock. */
    private readonly sshOverNetwork = false,
  ) {
    // Without g/y a pattern keeps no lastIndex between lines.
    this.failOn = failOn.map((pattern) => new RegExp(pattern.source, pattern.flags.replace(/[gy]/g, '')));
    this.serial = new SerialConsole((data) => vm.write(data), {
      // Output older than the in-memory cap goes to the transcript file as it is dropped.
      spill: (dropped) => {
        try {
          this.spillPath ??= newTranscriptPath(this.name);
          appendFileSync(this.spillPath, dropped);
        } catch {
          // best effort: the failure report then says less
        }
      },
    });
    // A network backend that failed (the tap vanished, slirp stopped): the guest keeps
    // running without a link, and every later GuestError says so.
    vm.on('log', (line) => {
      if (line.startsWith('virtio-net:') && this.warningLines.length < MAX_WARNINGS) this.warningLines.push(line);
    });
    vm.on('console', (port, data) => {
      if (port !== 0) return;
      this.scanLines(this.serial.push(data));
    });
    this.exited = vm.exited.then((exit) => {
      if (vsockSocket) removeVsockSocketPath(vsockSocket);
      for (const client of this.sshClients) client.end();
      if (this.ending) this.serial.close(new Error(`the guest has ended: ${describeExit(exit)}`));
      else this.fail(exit.signal ? 'killed' : 'exited', describeExit(exit), exit);
      // Ended without a failure report: nobody needs the spilled transcript.
      if (!this.failure && this.spillPath) rmSync(this.spillPath, { force: true });
      return { outcome: exit.outcome, code: exit.code, message: exit.message };
    });
  }

  /**
   * The host port (on 127.0.0.1) that forwards to `guestPort`, from bootGuest({
   * forwardPorts }). Throws (HYVE_BAD_CONFIG) for a port that is not forwarded.
   */
  hostPort(guestPort: number): number {
    const forward = this.forwards.find((f) => f.guest === guestPort);
    if (!forward) {
      const known = this.forwards.map((f) => f.guest).join(', ') || 'none';
      throw badConfig('hostPort', `guest port ${guestPort} is not forwarded (forwardPorts has: ${known})`);
    }
    return forward.host;
  }

  /** @internal */
  setForwards(forwards: readonly ResolvedForward[]): void {
    this.forwards = forwards;
  }

  /** @internal the UNIX socket of each named virtio-console port (bootGuest's `ports`). */
  readonly portSockets = new Map<string, string>();

  /**
   * A byte stream to the guest's virtio-console port `name` (bootGuest's `ports`): what is
   * written arrives in the guest's /dev/vport0pN, and what the guest writes there is read
   * here. One stream per port at a time; a later one is served after the earlier closes.
   * Flow control is end to end: a guest that does not read stalls the writes here, and a
   * host that does not read stalls the guest's writes; nothing is dropped. Bytes written
   * here wait until a guest process has the port open (Linux drops what arrives for a
   * closed port). The guest sees no end of stream when this one ends (send lengths or a
   * terminator).
   * Throws VmStartError HYVE_BAD_CONFIG for a name that is not one of `ports`.
   */
  openPort(name: string): net.Socket {
    const socket = this.portSockets.get(name);
    if (socket === undefined) {
      const known = [...this.portSockets.keys()];
      throw new VmStartError(`no virtio-console port ${JSON.stringify(name)} (the guest has ${known.length ? known.join(', ') : 'none'}: bootGuest({ ports }))`, 'HYVE_BAD_CONFIG');
    }
    return net.connect(socket);
  }

  /** Host process id of the VM (its own child process). */
  get pid(): number | undefined {
    return this.vm.pid;
  }

  /** VMM counters and timings: exits by reason, boot path, decompression time. Null once gone. */
  stats(): Promise<VmStats | null> {
    return this.vm.stats();
  }

  /**
   * Console lines that did not end the guest but are worth knowing about: user programs
   * the kernel reported as crashed (`segfault at`, `traps: ...`), and a network backend
   * that failed (`virtio-net: ...`, from the VMM). The first 100 are kept;
   * GuestError messages include them.
   */
  get warnings(): readonly string[] {
    return this.warningLines;
  }

  /**
   * Each complete console line is checked once, as `text` (the newest output) completes it:
   * failure patterns end the guest, user crashes become warnings. Linear in the output.
   */
  private scanLines(text: string): void {
    const lineEnd = text.lastIndexOf('\n');
    if (lineEnd < 0) {
      // A line without an end so far: keep its last 64 KiB (a pattern longer than that is not one).
      this.partialLine = (this.partialLine + text).slice(-MAX_LINE_CHARS);
      return;
    }
    const lines = (this.partialLine + text.slice(0, lineEnd)).split('\n');
    this.partialLine = text.slice(lineEnd + 1).slice(-MAX_LINE_CHARS);
    for (const raw of lines) {
      if (!this.initReached && INIT_REACHED.test(raw)) this.initReached = true;
      const line = raw.replace(/\r+$/, '');
      const failure = this.failOn.find((pattern) => pattern.test(line));
      if (failure && !this.failure) {
        this.fail('kernel panic', `the guest kernel failed: ${line.trim()} (matched failOn pattern ${failure})`);
        void this.vm.kill();
      } else if (USER_CRASH_PATTERNS.some((pattern) => pattern.test(line)) && this.warningLines.length < MAX_WARNINGS) {
        this.warningLines.push(line.trim());
      }
    }
  }

  /** Where the boot got to, judged from the console. */
  get phase(): BootPhase {
    if (!this.readyReached && this.initReached) return '/init reached';  // even if that line is no longer in memory
    return bootPhase(true, this.serial.output, this.readyReached);
  }

  /**
   * Runs a shell command on the guest console and returns its output and exit status.
   * Works without networking or SSH: markers around the command delimit its output.
   * Commands run one at a time, in call order. The console is shared with the kernel,
   * so a kernel message printed while the command runs is part of `output`.
   */
  run(command: string, options: RunOptions = {}): Promise<RunResult> {
    try {
      validateRunArguments(command, options);
    } catch (error) {
      return Promise.reject(error);
    }
    const result = this.runQueue.then(() => this.runNow(command, options));
    this.runQueue = result.catch(() => {});
    return result;
  }

  private async runNow(command: string, options: RunOptions): Promise<RunResult> {
    if (this.failure) throw this.failure;
    if (this.unusable) throw this.unusable;
    if (this.vm.exit) throw new Error('the guest has ended');
    const id = randomBytes(6).toString('hex');
    // The markers are printed by printf from '%s'/'%d' formats, so an echoed command line
    // never contains the expanded marker text.
    const line = `printf 'HYVE-BEGIN-%s\\n' ${id}; eval ${shellWord(command)}; printf 'HYVE-END-%s:%d\\n' ${id} $?\n`;
    if (line.split('\n').some((part) => part.length > 4000)) {
      throw badConfig('run', `the command is too long for the console (${command.length} bytes); the tty line limit is about 3000`);
    }
    // Not anchored at a line start: without echo the shell's prompt precedes the marker.
    // An echoed line never matches: it has '%s' where the id goes.
    const begin = new RegExp(`HYVE-BEGIN-${id}\\r?\\n`);
    const since = this.serial.length;
    this.serial.write(line);
    const timeoutMs = options.timeoutMs ?? defaultTimeoutMs(30_000, 300_000);
    // The default guest's /init reports a shell that exited (`exit 3`) and starts another.
    const endPattern = new RegExp(`(?:HYVE-END-${id}|${SHELL_EXIT_MARKER}):(\\d+)\\r?\\n`);
    const end = await this.serial.waitFor(endPattern, { since, timeoutMs }).catch(
      async (error: Error) => {
        if (this.failure || this.ending || error.name !== 'SerialTimeoutError') throw this.failure ?? error;
        // The command is still running and would swallow the next run()'s line: interrupt
        // it and check that the shell answers, or refuse every later run() saying why.
        const what = `run(${JSON.stringify(command)}) timed out after ${timeoutMs} ms`;
        this.noteEcho(this.serial.slice(since), begin);
        if (await this.interrupt()) throw this.errorFor('timeout', `${what}; it was interrupted (^C) and the shell answers again`);
        this.unusable = this.errorFor(
          'unusable',
          `the guest's shell is unusable: ${what}, and after ^C the shell did not answer a marker round trip`,
        );
        throw this.unusable;
      },
    );
    const sent = this.serial.slice(since, end.index);
    const started = begin.exec(sent);
    this.noteEcho(sent, begin);
    const start = started ? since + started.index + started[0].length : since;
    const output = this.serial.slice(start, end.index).replace(/\r\n/g, '\n');
    return { output, exitCode: Number(end[1]) };
  }

  /**
   * Whether the tty echoes input decides how interrupt() knows that ^C was acted on: once
   * the shell has printed a command's begin marker, its line was echoed before it or not.
   */
  private noteEcho(sent: string, begin: RegExp): void {
    const started = begin.exec(sent);
    if (started) this.consoleEchoes = sent.slice(0, started.index).includes("printf 'HYVE-BEGIN-%s");
  }

  /**
   * Sends ^C (the console tty's intr character) and checks with a fresh marker round trip
   * that the shell reads commands again; true if it does.
   */
  private async interrupt(): Promise<boolean> {
    // Generous on PVM: one console round trip there takes seconds, and a loaded host stretches it.
    const answerMs = defaultTimeoutMs(10_000, 120_000);
    const answered = (pattern: string | RegExp, since: number) =>
      this.serial.waitFor(pattern, { since, timeoutMs: answerMs }).then(
        () => true,
        () => false,
      );
    for (let attempt = 0; attempt < 2; attempt++) {
      if (this.failure || this.vm.exit) return false;
      const since = this.serial.length;
      this.serial.write('\x03');
      // The tty echoes ^C when it acts on it (signals the job, flushes its input); the
      // marker line goes only after that, or the tty could flush it along with ^C. No
      // echo: the shell's line editor had the tty in raw mode (a slow guest still reading
      // the command line, or already back at its prompt) and read ^C itself.
      // Without echo (the default guest's console) nothing shows that the tty acted on
      // ^C; the line discipline still handles it before the marker line that follows.
      const echoed = this.consoleEchoes && (await answered('^C', since));
      await new Promise((resolve) => setTimeout(resolve, 100));
      const id = randomBytes(6).toString('hex');
      const markerSince = this.serial.length;
      this.serial.write(`printf 'HYVE-SYNC-%s\\n' ${id}\n`);
      if (await answered(new RegExp(`HYVE-SYNC-${id}\\r?\\n`), markerSince)) return true;
      // The tty acted on ^C and still no shell: another ^C will not help. A second try is
      // for a line editor that had the tty raw and read ^C itself; editors stand aside
      // on a tty without echo.
      if (echoed || !this.consoleEchoes) return false;
    }
    return false;
  }

  /**
   * Pauses the guest, writes its complete state (CPU, interrupt controllers, clocks,
   * devices, RAM) to `dir`, and lets it continue. `bootGuest({ snapshot: dir })` then starts
   * any number of independent copies of it, each with copy-on-write memory. Console output
   * from before the pause is in `serial.output` when this resolves, up to `transcriptOffset`.
   * Safe to call while the guest is printing: no console byte is lost or repeated between
   * this guest's transcript up to the pause and a restored guest's.
   */
  async snapshot(dir: string): Promise<SnapshotInfo> {
    validateDirectory(dir, 'snapshot');
    if (this.failure) throw this.failure;
    const resolved = path.resolve(dir);
    let transcriptOffset = this.serial.length;
    const report = await this.vm.snapshot(resolved, () => (transcriptOffset = this.serial.length));
    return { ...report, dir: resolved, transcriptOffset };
  }

  /**
   * Sets the guest's wall clock to the host's, to within about a second (`date -s` on its
   * console, ahead by most of a measured round trip, since the command runs once its line
   * has crossed the console). Useful before a snapshot: a guest booted under an
   * instruction emulator (PVM) loses timer ticks while it boots and runs seconds behind;
   * restored copies keep the snapshot's clock, moved on by the time since.
   */
  async syncClock(): Promise<void> {
    const started = Date.now();
    await this.run('true');
    const roundTrip = Date.now() - started;
    const target = Math.round((Date.now() + roundTrip * 0.75) / 1000);
    const { exitCode, output } = await this.run(`date -u -s @${target} >/dev/null`);
    if (exitCode !== 0) throw new Error(`setting the guest clock failed: ${output.trim()}`);
  }

  /**
   * A new SSH connection to the guest (an ssh2 Client, logged in as root), for the whole
   * ssh2 API; it closes with the guest, or with `client.end()`. Needs the SSH overlay (the
   * default guest with `vsock: true` or `ready: 'ssh'`, or an initrd from `hyve initramfs
   * --with-ssh`). Rejects with a GuestError (reason 'no ssh', with the transcript) when
   * nothing answers SSH, and SshError HYVE_SSH_HOST_KEY, naming both fingerprints, when
   * the guest's host key is not the one hyve made (`hostKeyFingerprint` overrides it).
   * Run one channel at a time on it: the guest's Dropbear ends a connection when a
   * command exits while another channel waits for its exec (see SshPool).
   */
  async ssh(options: SshOptions = {}): Promise<Client> {
    if (this.failure) throw this.failure;
    const timeoutMs = options.timeoutMs ?? defaultTimeoutMs(30_000, 120_000);
    if (this.sshOverNetwork) return this.sshOverForward(options, timeoutMs);
    let sock: Duplex;
    try {
      sock = await this.connect(SSH_VSOCK_PORT, { timeoutMs });
    } catch (error) {
      if (this.failure) throw this.failure;
      if (!(error instanceof VsockError)) throw error;
      throw this.errorFor('no ssh', `the guest's console is up but SSH is not: ${error.message}`);
    }
    return this.sshOver(sock, options, timeoutMs);
  }

  /**
   * ssh: 'network': an SSH session through the forward of guest port 22. The user network
   * accepts on the host at once and closes when the guest refuses, so a guest without an
   * SSH server shows up as a failed handshake: reported as 'no ssh'.
   */
  private async sshOverForward(options: SshOptions, timeoutMs: number): Promise<Client> {
    const port = this.hostPort(SSH_TCP_PORT);
    const sock = net.connect(port, '127.0.0.1');
    try {
      return await this.sshOver(sock, options, timeoutMs);
    } catch (error) {
      sock.destroy();
      if (this.failure) throw this.failure;
      if (error instanceof SshError && error.code === 'HYVE_SSH_HOST_KEY') throw error;
      throw this.errorFor('no ssh', `the guest's console is up but SSH on its port 22 (host port ${port}) is not: ${(error as Error).message}`);
    }
  }

  /** An SSH session on a stream to the guest's port 22. */
  private async sshOver(sock: Duplex, options: SshOptions, timeoutMs: number): Promise<Client> {
    const identity = (await ensureSshOverlay({ cacheDir: defaultCacheDir() })).identity;
    const expected = options.hostKeyFingerprint === undefined ? identity : { ...identity, hostKeyFingerprint: options.hostKeyFingerprint };
    const client = await connectSsh(sock, expected, timeoutMs);
    this.sshClients.add(client);
    client.once('close', () => this.sshClients.delete(client));
    return client;
  }

  /**
   * Runs `command` with the guest's /bin/sh over SSH and resolves with its stdout and
   * stderr apart and its exit status (or the signal that ended it). Many may run at once.
   */
  async exec(command: string, options: ExecOptions = {}): Promise<ExecResult> {
    return execOn(this.sshPool, command, options);
  }

  /** Starts `command` over SSH with streaming stdin, stdout and stderr. */
  async spawn(command: string, options: Pick<ExecOptions, 'env'> = {}): Promise<SpawnedCommand> {
    return spawnOn(this.sshPool, command, options);
  }

  /** Copies a host file into the guest over SFTP, keeping its mode bits. */
  async upload(localPath: string, remotePath: string): Promise<void> {
    return uploadOn(this.sshPool, localPath, remotePath);
  }

  /** Copies a guest file to the host over SFTP, keeping its mode bits. */
  async download(remotePath: string, localPath: string): Promise<void> {
    return downloadOn(this.sshPool, remotePath, localPath);
  }

  /**
   * @internal Waits until an SSH session works (logged in: the handshake and the client
   * key's authentication passed), until `deadline`; the last failure is thrown. The
   * session joins the pool exec() and the others use: every connection starts a server
   * process in the guest, which an emulated guest pays for in seconds.
   */
  async waitForSsh(deadline: number): Promise<void> {
    if (this.sshOverNetwork) {
      // Through the forward a whole handshake is the only probe: tried until one works.
      for (;;) {
        if (this.failure) throw this.failure;
        try {
          this.sshPool.adopt(await this.ssh({ timeoutMs: Math.max(1_000, deadline - Date.now()) }));
          return;
        } catch (error) {
          const hopeless = error instanceof SshError && error.code === 'HYVE_SSH_HOST_KEY';
          if (hopeless || this.failure || Date.now() + 200 >= deadline) throw error;
        }
        await new Promise((resolve) => setTimeout(resolve, 200));
      }
    }
    // Until something listens on port 22 (probing the port makes no error reports).
    for (;;) {
      if (this.failure) throw this.failure;
      const probe = await connectVsock(this.vsockSocket ?? '', SSH_VSOCK_PORT, { timeoutMs: Math.max(1_000, deadline - Date.now()) }).catch(
        (error: unknown) => error as Error,
      );
      if (!(probe instanceof Error)) {
        this.sshPool.adopt(await this.sshOver(probe, {}, Math.max(1_000, deadline - Date.now())));
        return;
      }
      if (Date.now() + 200 >= deadline) break;
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
    this.sshPool.adopt(await this.ssh()); // fails, saying why
  }

  /**
   * A byte stream to the guest's vsock `port` (bootGuest({ vsock: true })), once a guest
   * program listening there accepted it. Rejects with VsockError: HYVE_NO_VSOCK,
   * HYVE_VSOCK_REFUSED (nothing listens), HYVE_VSOCK_TIMEOUT.
   */
  async connect(port: number, options: ConnectOptions = {}): Promise<Duplex> {
    if (this.failure) throw this.failure;
    if (!this.vsockSocket || this.vm.exit) throw new VsockError('the guest has no vsock device (boot it with vsock: true), or the VM has ended', 'HYVE_NO_VSOCK');
    return connectVsock(this.vsockSocket, port, options);
  }

  /** Asks the guest to power off (poweroff -f on its console) and resolves with how it ended. */
  async shutdown(options: { timeoutMs?: number } = {}): Promise<GuestExit> {
    validateShutdownOptions(options);
    if (!this.vm.exit) {
      this.ending = true;
      try {
        this.serial.write('\npoweroff -f\n');
      } catch {
        // already gone
      }
      const timeoutMs = options.timeoutMs ?? defaultTimeoutMs(10_000, 60_000);
      const timer = setTimeout(() => void this.vm.kill(), timeoutMs);
      try {
        return await this.exited;
      } finally {
        clearTimeout(timer);
      }
    }
    return this.exited;
  }

  /** Ends the VM at once (SIGKILL of its process). */
  async kill(): Promise<GuestExit> {
    this.ending = true;
    await this.vm.kill();
    return this.exited;
  }

  /** Kills the VM if it is still running; always leaves no process behind. */
  async [Symbol.asyncDispose](): Promise<void> {
    if (!this.vm.exit) await this.kill();
    else await this.exited;
  }

  /** @internal */
  markReady(): void {
    this.readyReached = true;
    this.vm.markReady();
  }

  /** The error that ended this guest, if any. */
  get error(): GuestError | undefined {
    return this.failure;
  }

  /** @internal */
  errorFor(reason: string, summary: string, exit?: VmExit): GuestError {
    return new GuestError(summary, {
      reason,
      phase: this.phase,
      exit: exit ?? this.vm.exit,
      transcript: this.serial.output,
      transcriptPath: this.saveTranscript(this.name),
      warnings: this.warningLines,
    });
  }

  /**
   * @internal Writes the whole console transcript to a file in the transcript directory
   * and returns its path (undefined if it cannot be written): the output dropped from
   * memory (already in the spill file) followed by what is retained.
   */
  saveTranscript(name: string): string | undefined {
    if (!this.spillPath) return saveTranscript(name, this.serial.output);
    try {
      const file = newTranscriptPath(name);
      copyFileSync(this.spillPath, file);
      appendFileSync(file, this.serial.output);
      return file;
    } catch {
      return undefined;
    }
  }

  private fail(reason: string, summary: string, exit?: VmExit): void {
    if (this.failure || this.ending) return;
    this.failure = this.errorFor(reason, summary, exit);
    this.serial.close(this.failure);
  }
}

function describeExit(exit: VmExit): string {
  if (exit.signal) return `the VM process died (${exit.signal}): ${exit.message}`;
  switch (exit.outcome) {
    case 'poweroff':
      return 'the guest powered off';
    case 'reboot':
      return 'the guest rebooted (hyve ends the VM on reboot)';
    case 'triple-fault':
      return `the guest triple-faulted: ${exit.message}`;
    default:
      return `the VM stopped with an error: ${exit.message}`;
  }
}

/**
 * The default guest, built on first use. A failed build is a VmStartError with code
 * HYVE_FIXTURE_BUILD (the cause attached), like every other reason a boot cannot start.
 */
export async function defaultGuest(options: Pick<BootGuestOptions, 'onProgress' | 'signal'>): Promise<DefaultGuest> {
  return ensureDefaultGuest({ onProgress: options.onProgress, signal: options.signal }).catch((error: unknown) => {
    if (error instanceof VmStartError || options.signal?.aborted) throw error;
    throw Object.assign(new VmStartError(`building the default guest failed: ${(error as Error).message}`, 'HYVE_FIXTURE_BUILD'), {
      cause: error,
    });
  });
}

/** The profile option with absolute paths (the VM child may run elsewhere). */
function resolveProfile(profile: ProfileOptions, symbols: string | undefined): ProfileOptions {
  return {
    file: path.resolve(profile.file),
    ...(profile.hz === undefined ? {} : { hz: profile.hz }),
    ...(symbols === undefined ? {} : { symbols: path.resolve(symbols) }),
  };
}

/** Resolves the options into what the VM child takes, building the default guest if needed. */
/**
 * The kernel, initrd and kernel command line a boot uses: the default guest's files
 * where none are given, and hyve's kernel arguments in front of `cmdline`. The one place
 * both a boot and the snapshot cache's key take them from.
 */
export async function bootFiles(
  options: Pick<BootGuestOptions, 'kernel' | 'initrd' | 'cmdline' | 'onProgress' | 'signal' | 'console' | 'vsock' | 'ready' | 'ssh'>,
): Promise<{ kernel: string; initrd: string | undefined; cmdline: string; vmlinux: string | undefined }> {
  let { kernel, initrd } = options;
  let initArgs: string | undefined;
  let vmlinux: string | undefined;
  if (kernel === undefined) {
    const defaults = await defaultGuest(options);
    kernel = defaults.kernel;
    vmlinux = defaults.vmlinux;
    if (initrd === undefined) {
      initrd = defaults.initrd;
      initArgs = NO_ECHO_ARG; // the default /init: a console without echo, for run()
      if (wantsVsock(options) || options.ssh === 'network') {
        // With vsock (or ssh: 'network') the default guest also answers SSH: the overlay's init starts Dropbear first.
        initrd = (await ensureSshInitrd(initrd, { cacheDir: defaultCacheDir() })).initrd;
        initArgs = [NO_ECHO_ARG, SSH_KERNEL_ARGS, options.ssh === 'network' ? SSH_NETWORK_KERNEL_ARG : ''].filter(Boolean).join(' ');
      }
    }
  }
  const hyveArgs = options.console === 'virtio' ? HYVE_VIRTIO_CONSOLE_KERNEL_ARGS : HYVE_KERNEL_ARGS;
  return { kernel, initrd, cmdline: [hyveArgs, initArgs, options.cmdline].filter(Boolean).join(' '), vmlinux };
}

/** The virtio-console for `console: 'virtio'` and `ports`, its sockets in a new directory; none without either. */
function consoleDevice(options: Pick<BootGuestOptions, 'console' | 'ports'>): { device: ConsoleDevice; dir: string } | undefined {
  const names = options.ports ?? [];
  if (options.console !== 'virtio' && names.length === 0) return undefined;
  const dir = mkdtempSync(path.join(os.tmpdir(), 'hyve-ports-'));
  return { device: { console: options.console === 'virtio', ports: names.map((name) => ({ name, socket: path.join(dir, `${name}.sock`) })) }, dir };
}

/** vsock is on when asked for, and for ready: 'ssh' (SSH runs over it unless ssh: 'network'). */
function wantsVsock(options: Pick<BootGuestOptions, 'vsock' | 'ready' | 'ssh'>): boolean {
  return options.vsock ?? (options.ready === 'ssh' && options.ssh !== 'network');
}

/**
 * The network options checked, and the port forwards with guest port 22's added for
 * ssh: 'network' (validateBootGuestOptions made sure it has network: 'user'), unless the
 * caller forwards that port already.
 */
function networkForwards(options: Pick<BootGuestOptions, 'network' | 'forwardPorts' | 'ssh'>): PortForward[] | undefined {
  checkNetworkOptions(options.network, options.forwardPorts);
  if (options.ssh !== 'network') return options.forwardPorts;
  const forwards = options.forwardPorts ?? [];
  return forwards.some((f) => f.guest === SSH_TCP_PORT) ? forwards : [...forwards, { guest: SSH_TCP_PORT }];
}

async function resolveConfig(options: BootGuestOptions): Promise<{
  config: ChildConfig;
  ready: WaitStrategy | undefined;
  forwards: ResolvedForward[];
  ports?: { device: ConsoleDevice; dir: string };
  vsockSocket: string | undefined;
}> {
  const { kernel, initrd, cmdline, vmlinux } = await bootFiles(options);
  const symbols = options.profile?.symbols ?? vmlinux;
  const config: ChildConfig = {
    kernel: checkFile(kernel, 'kernel', 'HYVE_BAD_KERNEL'),
    initrd: initrd === undefined ? undefined : checkFile(initrd, 'initrd', 'HYVE_BAD_INITRD'),
    cmdline,
    memoryMiB: parseMemoryMiB(options.memory ?? DEFAULT_MEMORY_MIB),
    cpus: options.cpus ?? 1,
    ...(options.uuid === undefined ? {} : { uuid: checkUuid(options.uuid) }),
    ...options.machine,
    ...(options.profile ? { profile: resolveProfile(options.profile, symbols) } : {}),
  };
  const wantedForwards = networkForwards(options);
  // ready: 'ssh' waits for the default guest's marker first (SSH is tried after it), for nothing on a console of another init.
  const consoleReady = options.ready === 'ssh' ? (options.kernel === undefined && options.initrd === undefined ? DEFAULT_READY_MARKER : undefined) : (options.ready ?? DEFAULT_READY_MARKER);
  const ready = consoleReady === undefined ? undefined : toWaitStrategy(consoleReady);
  const forwards = await resolveForwards(wantedForwards);
  const nic = options.network && netDevice(options.network, forwards, options.uuid);
  const withoutSockets = pciDevicesFor(options.disks, options.rng, nic);  // checks the disks before a directory is made
  const ports = consoleDevice(options);
  const vsockSocket = wantsVsock(options) ? newVsockSocketPath() : undefined;
  const pciDevices = ports || vsockSocket ? pciDevicesFor(options.disks, options.rng, nic, ports?.device, vsockSocket) : withoutSockets;
  if (pciDevices) config.pciDevices = pciDevices;
  return { config, ready, forwards, ports, vsockSocket };
}

/**
 * Checks in milliseconds that this machine can run VMs, as a boot would: throws
 * VmStartError HYVE_NO_KVM (no /dev/kvm) or HYVE_KVM_ACCESS (no permission) with the fix.
 * bootGuest() calls it before building the default guest, which takes minutes the first
 * time; a vitest globalSetup can call it to fail a run at once.
 */
export function requireHypervisor(): HypervisorInfo {
  try {
    return loadAddon().checkHypervisor();
  } catch (error) {
    const e = error as Error & { code?: string };
    throw new VmStartError(e.message, e.code ?? 'HYVE_NO_KVM');
  }
}

/**
 * Boots a guest and resolves once `ready` appears on its console. Rejects with a
 * VmStartError for bad input (before any process starts) and a GuestError when the boot
 * times out, panics or ends early; the VM is gone when either is thrown.
 */
export async function bootGuest(options: BootGuestOptions = {}): Promise<Guest> {
  validateBootGuestOptions(options);
  options.signal?.throwIfAborted();
  if (options.uuid !== undefined) {
    checkUuid(options.uuid);
    if (options.snapshot !== undefined) {
      throw new VmStartError(
        "uuid cannot be given with snapshot: a restored guest keeps the snapshot's UUID (its SMBIOS tables are in the snapshot's RAM)",
        'HYVE_BAD_CONFIG',
      );
    }
  }
  if (options.snapshot !== undefined) return restoreGuest(options.snapshot, options);
  requireHypervisor();
  const { config, ready, forwards, ports, vsockSocket } = await resolveConfig(options);
  // The clock starts once the default guest exists: building it (minutes, the first
  // time) reports its own progress and is not part of a boot.
  const startedAt = Date.now();
  const vm = new VmProcess(config);
  if (ports) void vm.exited.then(() => rmSync(ports.dir, { recursive: true, force: true }));
  vm.on('log', options.onLog ?? ((line) => process.stderr.write(`hyve: ${line}\n`)));
  const guest = new Guest(vm, path.basename(config.kernel), options.failOn, vsockSocket, options.ssh === 'network');
  guest.setForwards(forwards);
  for (const port of ports?.device.ports ?? []) guest.portSockets.set(port.name, port.socket);
  const timeoutMs = options.timeoutMs ?? defaultTimeoutMs(60_000, 300_000);
  await untilReady(guest, vm, ready, options, timeoutMs, startedAt);
  if (options.ready === 'ssh') await untilSsh(guest, startedAt + timeoutMs);
  return guest;
}

/**
 * The snapshot's devices a restored copy needs host endpoints of its own for: its
 * virtio-consoles, and whether it has a virtio-vsock function (at bootGuest's slot). An
 * unreadable snapshot has none here, and its restore reports why.
 */
function snapshotDevices(dir: string): { vsock: boolean; consoles: ReturnType<ReturnType<typeof loadAddon>['snapshotDevices']>['consoles'] } {
  try {
    const { sections, consoles } = loadAddon().snapshotDevices(dir);
    const slot = VSOCK_SLOT.toString(16).padStart(2, '0');
    return { vsock: sections.includes(`device:pci-00:${slot}.0:virtio-vsock`), consoles };
  } catch {
    return { vsock: false, consoles: [] };
  }
}

/** bootGuest({ snapshot }): a new VM from a snapshot, resolved once it runs (and `ready`, if given). */

async function restoreGuest(snapshot: string, options: BootGuestOptions): Promise<Guest> {
  const startedAt = Date.now();
  const dir = path.resolve(snapshot);
  if (!existsSync(path.join(dir, 'state.bin'))) {
    throw new VmStartError(`${dir} is not a hyve snapshot (it has no state.bin)`, 'HYVE_BAD_SNAPSHOT');
  }
  for (const name of ['state.bin', 'memory.bin']) {
    const problem = notRegularFile(path.join(dir, name));
    if (problem !== undefined) throw new VmStartError(`snapshot file ${path.join(dir, name)} ${problem}`, 'HYVE_BAD_SNAPSHOT');
  }
  const forwards = await resolveForwards(networkForwards(options));
  // The snapshot names its NIC, virtio-console and vsock device; the restored copy gets
  // its own NIC backend and forwards, port sockets of its own (the original's still
  // listen) and a vsock socket of its own.
  const pciDevices: NonNullable<RestoreChildConfig['pciDevices']> = options.network ? [netDevice(options.network, forwards)] : [];
  const devices = snapshotDevices(dir);
  const consoles = devices.consoles.map((saved) => ({ saved, made: consoleDevice({ console: saved.console ? 'virtio' : 'serial', ports: saved.ports })! }));
  for (const { saved, made } of consoles) pciDevices.push(consoleFunction(made.device, saved.slot, saved.function));
  const vsockSocket = devices.vsock ? newVsockSocketPath() : undefined;
  if (vsockSocket) pciDevices.push(vsockDevice(vsockSocket));
  const config: RestoreChildConfig = {
    snapshot: dir,
    ...(pciDevices.length ? { pciDevices } : {}),
    verifySnapshotMemory: options.verifySnapshot ?? false,
    ...(options.profile ? { profile: resolveProfile(options.profile, options.profile.symbols) } : {}),
    expectSnapshot: {
      memoryMiB: options.memory === undefined ? undefined : parseMemoryMiB(options.memory),
      cpus: options.cpus,
      kernel: options.kernel === undefined ? undefined : path.resolve(options.kernel),
      initrd: options.initrd === undefined ? undefined : path.resolve(options.initrd),
      cmdline: options.cmdline === undefined ? undefined : [consoles.some(({ saved }) => saved.console) ? HYVE_VIRTIO_CONSOLE_KERNEL_ARGS : HYVE_KERNEL_ARGS, options.cmdline].filter(Boolean).join(' '),
    },
  };
  const vm = new VmProcess(config);
  for (const { made } of consoles) void vm.exited.then(() => rmSync(made.dir, { recursive: true, force: true }));
  vm.on('log', options.onLog ?? ((line) => process.stderr.write(`hyve: ${line}\n`)));
  const guest = new Guest(vm, path.basename(dir), options.failOn, vsockSocket, options.ssh === 'network');
  guest.setForwards(forwards);
  for (const port of consoles.flatMap(({ made }) => made.device.ports)) guest.portSockets.set(port.name, port.socket);
  const ready = options.ready === undefined || options.ready === 'ssh' ? undefined : toWaitStrategy(options.ready);
  const timeoutMs = options.timeoutMs ?? defaultTimeoutMs(10_000, 60_000);
  await untilReady(guest, vm, ready, options, timeoutMs, startedAt);
  if (options.ready === 'ssh') await untilSsh(guest, startedAt + timeoutMs);
  return guest;
}

/** ready: 'ssh': an SSH session works before `deadline`, or the guest is killed and the last failure thrown. */
async function untilSsh(guest: Guest, deadline: number): Promise<void> {
  try {
    await guest.waitForSsh(deadline);
  } catch (error) {
    await guest.kill();
    throw guest.error ?? (error instanceof GuestError || error instanceof SshError ? error : guest.errorFor('no ssh', `SSH did not answer: ${(error as Error).message}`));
  }
}

/**
 * Waits, within `timeoutMs` of `startedAt`, for the VM to start and then for `ready`.
 * On any failure the VM is killed before the error is thrown: a VmStartError as the VMM
 * reported it, otherwise a GuestError with the transcript.
 */
async function untilReady(
  guest: Guest,
  vm: VmProcess,
  ready: WaitStrategy | undefined,
  options: BootGuestOptions,
  timeoutMs: number,
  startedAt: number,
): Promise<void> {
  const deadline = startedAt + timeoutMs;
  const controller = new AbortController();
  const timedOut = new Error(`timeoutMs (${timeoutMs} ms) passed`);
  let timer = setTimeout(() => controller.abort(timedOut), Math.max(0, deadline - Date.now()));
  const onAbort = () => controller.abort(options.signal?.reason);
  if (options.signal?.aborted) onAbort();
  options.signal?.addEventListener('abort', onAbort, { once: true });
  const aborted = new Promise<never>((_, reject) => {
    controller.signal.addEventListener('abort', () => reject(controller.signal.reason as Error), { once: true });
  });
  aborted.catch(() => {});
  try {
    // Loading the kernel or snapshot happens in the VMM before 'started': a loader that
    // hangs there is bounded by the same timeout.
    await Promise.race([vm.started, aborted]);
    // From here the wait strategies keep to the deadline themselves and say which one
    // ran out; the timer stays only as a backstop for a strategy that does not.
    clearTimeout(timer);
    timer = setTimeout(() => controller.abort(timedOut), Math.max(0, deadline - Date.now()) + 1_000);
    if (ready) await ready.waitUntilReady({ serial: guest.serial, since: 0, deadline, deadlineSource: "the boot's timeoutMs", signal: controller.signal });
    guest.markReady();
  } catch (error) {
    let failure: unknown = error;
    if (!(error instanceof VmStartError)) {
      const elapsed = Date.now() - startedAt;
      failure =
        guest.error ??
        (options.signal?.aborted
          ? guest.errorFor('aborted', `the boot was aborted after ${elapsed} ms`)
          : error instanceof WaitError
            ? guest.errorFor('timeout', `the guest was not ready: ${error.message}`)
            : error === timedOut
              ? guest.errorFor(
                  'timeout',
                  `the guest was not ready within timeoutMs (${timeoutMs} ms)${ready ? `: still waiting for ${ready.describe()}` : ' (the VM did not start)'}`,
                )
              : guest.errorFor('error', `the boot failed after ${elapsed} ms: ${(error as Error).message}`));
    }
    await guest.kill();
    throw failure;
  } finally {
    clearTimeout(timer);
    options.signal?.removeEventListener('abort', onAbort);
  }
}
