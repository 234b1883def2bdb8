/**
 * bootGuest(): a booted VM with its serial console, a shell protocol over it (run()), and
 * cleanup that survives failing tests (AsyncDisposable).
 */
import { existsSync, statSync } from 'node:fs';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { ensureDefaultGuest, DEFAULT_READY_MARKER, type DefaultGuest } from './fixtures/index.js';
import {
  GuestError,
  KERNEL_FAILURE_PATTERNS,
  MAX_WARNINGS,
  USER_CRASH_PATTERNS,
  bootPhase,
  saveTranscript,
  type BootPhase,
} from './diagnostics.js';
import { defaultTimeoutMs } from './host.js';
import { SerialConsole } from './serial.js';
import { DEFAULT_MEMORY_MIB, parseMemoryMiB } from './size.js';
import { badConfig, validateBootGuestOptions, validateDirectory, validateRunArguments, validateShutdownOptions } from './validate.js';
import { checkUuid } from './uuid.js';
import { VmProcess, VmStartError, type VmExit } from './vm-process.js';
import { WaitError, toWaitStrategy, type WaitStrategy } from './wait.js';
import type { ChildConfig, RestoreChildConfig } from './protocol.js';
import type { SnapshotReport, VmStats } from './native.js';
import type { ProfileOptions } from './profile/index.js';

/** Kernel arguments hyve always passes: the console on COM1, and reboot (end) on panic. */
export const HYVE_KERNEL_ARGS = 'console=ttyS0 panic=-1';

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

function checkFile(file: string, what: string, code: string): string {
  const resolved = path.resolve(file);
  if (!existsSync(resolved)) throw new VmStartError(`${what} ${resolved} does not exist`, code);
  if (!statSync(resolved).isFile()) throw new VmStartError(`${what} ${resolved} is not a regular file`, code);
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
  private lineScanFrom = 0;
  private readonly warningLines: string[] = [];
  /** Set when a timed-out run() could not get the shell back: later runs fail with it. */
  private unusable: GuestError | undefined;
  private readonly failOn: readonly RegExp[];

  /** @internal use bootGuest() */
  constructor(
    private readonly vm: VmProcess,
    private readonly name: string,
    failOn: readonly RegExp[] = KERNEL_FAILURE_PATTERNS,
  ) {
    // Without g/y a pattern keeps no lastIndex between lines.
    this.failOn = failOn.map((pattern) => new RegExp(pattern.source, pattern.flags.replace(/[gy]/g, '')));
    this.serial = new SerialConsole((data) => vm.write(data));
    vm.on('console', (port, data) => {
      if (port !== 0) return;
      this.serial.push(data);
      this.scanLines();
    });
    this.exited = vm.exited.then((exit) => {
      if (this.ending) this.serial.close(new Error(`the guest has ended: ${describeExit(exit)}`));
      else this.fail(exit.signal ? 'killed' : 'exited', describeExit(exit), exit);
      return { outcome: exit.outcome, code: exit.code, message: exit.message };
    });
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
   * the kernel reported as crashed (`segfault at`, `traps: ...`). The first 100 are kept;
   * GuestError messages include them.
   */
  get warnings(): readonly string[] {
    return this.warningLines;
  }

  /** Each complete console line is checked once: failure patterns end the guest, user crashes become warnings. */
  private scanLines(): void {
    const output = this.serial.output;
    const lineEnd = output.lastIndexOf('\n') + 1;
    if (lineEnd <= this.lineScanFrom) return;
    const lines = output.slice(this.lineScanFrom, lineEnd - 1).split('\n');
    this.lineScanFrom = lineEnd;
    for (const raw of lines) {
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
    return bootPhase(true, this.serial.output, this.readyReached);
  }

  /**
   * Runs a shell command on the guest console and returns its output and exit status.
   * Works without networking or SSH: markers around the command delimit its output.
   * Commands run one at a time, in call order.
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
    const encoded = Buffer.from(command, 'utf8').toString('base64');
    // One line, so the tty echoes all of it before any output; the command travels as
    // base64 so quotes and newlines need no escaping, and the markers cannot occur in
    // the echoed line (it contains '%s'/'%d', not the expanded text).
    const line = `printf 'HYVE-BEGIN-%s\\n' ${id}; eval "$(echo ${encoded} | base64 -d)"; printf 'HYVE-END-%s:%d\\n' ${id} $?\n`;
    if (line.length > 4000) {
      throw badConfig('run', `the command is too long for the console (${command.length} bytes); the tty line limit is about 3000`);
    }
    const since = this.serial.output.length;
    this.serial.write(line);
    const timeoutMs = options.timeoutMs ?? defaultTimeoutMs(30_000, 300_000);
    const end = await this.serial.waitFor(new RegExp(`HYVE-END-${id}:(\\d+)\\r?\\n`), { since, timeoutMs }).catch(
      async (error: Error) => {
        if (this.failure || this.ending || error.name !== 'SerialTimeoutError') throw this.failure ?? error;
        // The command is still running and would swallow the next run()'s line: interrupt
        // it and check that the shell answers, or refuse every later run() saying why.
        const what = `run(${JSON.stringify(command)}) timed out after ${timeoutMs} ms`;
        if (await this.interrupt()) throw this.errorFor('timeout', `${what}; it was interrupted (^C) and the shell answers again`);
        this.unusable = this.errorFor(
          'unusable',
          `the guest's shell is unusable: ${what}, and after ^C the shell did not answer a marker round trip`,
        );
        throw this.unusable;
      },
    );
    const begin = new RegExp(`(^|\\n)HYVE-BEGIN-${id}\\r?\\n`).exec(this.serial.output.slice(since, end.index));
    const start = begin ? since + begin.index + begin[0].length : since;
    const output = this.serial.output.slice(start, end.index).replace(/\r\n/g, '\n');
    return { output, exitCode: Number(end[1]) };
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
      const since = this.serial.output.length;
      this.serial.write('\x03');
      // The tty echoes ^C when it acts on it (signals the job, flushes its input); the
      // marker line goes only after that, or the tty could flush it along with ^C. No
      // echo: the shell's line editor had the tty in raw mode (a slow guest still reading
      // the command line, or already back at its prompt) and read ^C itself.
      const echoed = await answered('^C', since);
      await new Promise((resolve) => setTimeout(resolve, 100));
      const id = randomBytes(6).toString('hex');
      const markerSince = this.serial.output.length;
      this.serial.write(`printf 'HYVE-SYNC-%s\\n' ${id}\n`);
      if (await answered(new RegExp(`(^|\\n)HYVE-SYNC-${id}\\r?\\n`), markerSince)) return true;
      // The tty acted on ^C and still no shell: another ^C will not help.
      if (echoed) return false;
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
    let transcriptOffset = this.serial.output.length;
    const report = await this.vm.snapshot(resolved, () => (transcriptOffset = this.serial.output.length));
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
  }

  /** The error that ended this guest, if any. */
  get error(): GuestError | undefined {
    return this.failure;
  }

  /** @internal */
  errorFor(reason: string, summary: string, exit?: VmExit): GuestError {
    const transcript = this.serial.output;
    return new GuestError(summary, {
      reason,
      phase: this.phase,
      exit: exit ?? this.vm.exit,
      transcript,
      transcriptPath: saveTranscript(this.name, transcript),
      warnings: this.warningLines,
    });
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
async function resolveConfig(options: BootGuestOptions): Promise<{ config: ChildConfig; ready: WaitStrategy }> {
  let kernel = options.kernel;
  let initrd = options.initrd;
  let symbols = options.profile?.symbols;
  if (kernel === undefined) {
    const defaults = await defaultGuest(options);
    kernel = defaults.kernel;
    initrd ??= defaults.initrd;
    symbols ??= defaults.vmlinux;
  }
  const config: ChildConfig = {
    kernel: checkFile(kernel, 'kernel', 'HYVE_BAD_KERNEL'),
    initrd: initrd === undefined ? undefined : checkFile(initrd, 'initrd', 'HYVE_BAD_INITRD'),
    cmdline: [HYVE_KERNEL_ARGS, options.cmdline].filter(Boolean).join(' '),
    memoryMiB: parseMemoryMiB(options.memory ?? DEFAULT_MEMORY_MIB),
    cpus: options.cpus ?? 1,
    ...(options.uuid === undefined ? {} : { uuid: checkUuid(options.uuid) }),
    ...options.machine,
    ...(options.profile ? { profile: resolveProfile(options.profile, symbols) } : {}),
  };
  return { config, ready: toWaitStrategy(options.ready ?? DEFAULT_READY_MARKER) };
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
  const { config, ready } = await resolveConfig(options);
  // The clock starts once the default guest exists: building it (minutes, the first
  // time) reports its own progress and is not part of a boot.
  const startedAt = Date.now();
  const vm = new VmProcess(config);
  vm.on('log', options.onLog ?? ((line) => process.stderr.write(`hyve: ${line}\n`)));
  const guest = new Guest(vm, path.basename(config.kernel), options.failOn);
  await untilReady(guest, vm, ready, options, options.timeoutMs ?? defaultTimeoutMs(60_000, 300_000), startedAt);
  return guest;
}

/** bootGuest({ snapshot }): a new VM from a snapshot, resolved once it runs (and `ready`, if given). */
async function restoreGuest(snapshot: string, options: BootGuestOptions): Promise<Guest> {
  const startedAt = Date.now();
  const dir = path.resolve(snapshot);
  if (!existsSync(path.join(dir, 'state.bin'))) {
    throw new VmStartError(`${dir} is not a hyve snapshot (it has no state.bin)`, 'HYVE_BAD_SNAPSHOT');
  }
  const config: RestoreChildConfig = {
    snapshot: dir,
    verifySnapshotMemory: options.verifySnapshot ?? false,
    ...(options.profile ? { profile: resolveProfile(options.profile, options.profile.symbols) } : {}),
    expectSnapshot: {
      memoryMiB: options.memory === undefined ? undefined : parseMemoryMiB(options.memory),
      cpus: options.cpus,
      kernel: options.kernel === undefined ? undefined : path.resolve(options.kernel),
      initrd: options.initrd === undefined ? undefined : path.resolve(options.initrd),
      cmdline: options.cmdline === undefined ? undefined : [HYVE_KERNEL_ARGS, options.cmdline].filter(Boolean).join(' '),
    },
  };
  const vm = new VmProcess(config);
  vm.on('log', options.onLog ?? ((line) => process.stderr.write(`hyve: ${line}\n`)));
  const guest = new Guest(vm, path.basename(dir), options.failOn);
  const ready = options.ready === undefined ? undefined : toWaitStrategy(options.ready);
  await untilReady(guest, vm, ready, options, options.timeoutMs ?? defaultTimeoutMs(10_000, 60_000), startedAt);
  return guest;
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
