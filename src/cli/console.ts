/**
 * The guest's COM ports on the host: the terminal (stdio), a new pseudo-terminal
 * (autopty), an existing tty device, and a log file. On a terminal, stdin goes to raw
 * mode so every key reaches the guest, and `~.` typed at the start of a line ends the
 * VM (`~~` sends one `~`), as in ssh. The terminal's mode is restored on every way out:
 * restore() is idempotent and also runs from a process 'exit' handler.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, constants, createReadStream, createWriteStream, openSync, rmSync, symlinkSync } from 'node:fs';
import { once } from 'node:events';
import type { Readable, Writable } from 'node:stream';
import tty from 'node:tty';
import type { SerialBackend } from './args.js';

const PORT_NAMES = ['COM1', 'COM2'] as const;

/** Finds `~.` at the start of a line in typed bytes; `~~` sends one `~`. */
export class EscapeDetector {
  private atLineStart = true;
  private tildePending = false;

  /** Returns the bytes to pass to the guest and whether the escape was typed. */
  feed(data: Buffer): { forward: Buffer; escape: boolean } {
    const out: number[] = [];
    for (const byte of data) {
      if (this.tildePending) {
        this.tildePending = false;
        if (byte === 0x2e /* . */) return { forward: Buffer.from(out), escape: true };
        out.push(0x7e);
        if (byte !== 0x7e) out.push(byte);
        this.atLineStart = byte === 0x0d || byte === 0x0a;
        continue;
      }
      if (this.atLineStart && byte === 0x7e /* ~ */) {
        this.tildePending = true;
        continue;
      }
      out.push(byte);
      this.atLineStart = byte === 0x0d || byte === 0x0a;
    }
    return { forward: Buffer.from(out), escape: false };
  }
}

interface Endpoint {
  output: Writable;
  input?: Readable;
  /** Undo terminal changes; synchronous. */
  restore?: () => void;
  close: () => Promise<void>;
}

export interface ConsoleOptions {
  com1?: SerialBackend;
  com2?: SerialBackend;
  /** Sends bytes typed on a port to the guest. */
  send: (data: Buffer, port: number) => void;
  /** Called once when `~.` is typed on the terminal. */
  onEscape: () => void;
}

/** A word for sh(1): single-quoted. */
function shellQuote(word: string): string {
  return `'${word.replace(/'/g, `'\\''`)}'`;
}

/**
 * Opens a pseudo-terminal through util-linux script(1) and returns its slave's path. If
 * `link` is given, the helpers remove it (when it still points at this pty) once they end.
 */
async function openPty(link?: string): Promise<{ path: string; child: ChildProcess }> {
  // script(1) holds the pty's master side and relays it to its stdin/stdout; the command it
  // runs puts the slave in raw mode, prints the slave's name, and keeps it open so a
  // terminal program can come and go. Node itself cannot open a pty (no ioctl).
  // Nothing outlives hyve, even a SIGKILLed one (no JavaScript runs then): setpriv(1) has
  // the kernel kill script(1) when hyve dies; its pty then hangs up, and SIGHUP ends the
  // shell (which removes the link first) and its sleep.
  const removeLink = link
    ? `cleanup() { [ "$(readlink ${shellQuote(link)})" = "$pty" ] && rm -f ${shellQuote(link)}; exit 0; }; trap cleanup HUP TERM; `
    : '';
  const command = `stty raw -echo; pty=$(tty); echo "$pty"; ${removeLink}sleep 2147483647 & wait`;
  const child = spawn('setpriv', ['--pdeathsig', 'KILL', 'script', '-q', '-f', '-E', 'never', '-c', command, '/dev/null'], {
    stdio: ['pipe', 'pipe', 'ignore'],
  });
  const spawned = once(child, 'spawn').then(
    () => undefined,
    (error: Error) => {
      throw new Error(`autopty needs util-linux script(1) and setpriv(1): ${error.message}`);
    },
  );
  await spawned;
  let buffered = Buffer.alloc(0);
  const path = await new Promise<string>((resolve, reject) => {
    const onData = (chunk: Buffer) => {
      buffered = Buffer.concat([buffered, chunk]);
      const newline = buffered.indexOf(0x0a);
      if (newline < 0) return;
      child.stdout!.off('data', onData);
      const rest = buffered.subarray(newline + 1);
      if (rest.length) child.stdout!.unshift(rest);
      resolve(buffered.subarray(0, newline).toString().trim());
    };
    child.stdout!.on('data', onData);
    child.once('exit', () => reject(new Error('autopty: script(1) exited before opening a pty')));
  });
  if (!path.startsWith('/dev/')) {
    child.kill();
    throw new Error(`autopty: unexpected pty name '${path}'`);
  }
  return { path, child };
}

export class Console {
  private readonly endpoints: (Endpoint | undefined)[] = [];
  private readonly logs: (Writable | undefined)[] = [];
  private rawStdin = false;
  private restored = false;
  private readonly onExit = () => this.restore();

  constructor(private readonly options: ConsoleOptions) {}

  /** True while the terminal is in raw mode (messages then need \r\n). */
  get raw(): boolean {
    return this.rawStdin && !this.restored;
  }

  /** Opens every configured port; prints where autopty ports are. Throws on failure. */
  async open(): Promise<void> {
    process.on('exit', this.onExit);
    const backends = [this.options.com1, this.options.com2];
    if (backends.filter((b) => b?.kind === 'stdio').length > 1) throw new Error('only one COM port can use stdio');
    for (const [port, backend] of backends.entries()) {
      if (!backend) continue;
      if (backend.log) this.logs[port] = createWriteStream(backend.log, { flags: 'a' });
      if (backend.kind === 'stdio') this.endpoints[port] = this.openStdio(port);
      else if (backend.kind === 'device') this.endpoints[port] = this.openDevice(port, backend.path!);
      else if (backend.kind === 'autopty') this.endpoints[port] = await this.openAutopty(port, backend.path);
    }
  }

  /** Guest output on a port. */
  output(port: number, data: Buffer): void {
    this.endpoints[port]?.output.write(data);
    this.logs[port]?.write(data);
  }

  /** A message from hyve itself, on stderr; readable in raw mode too. */
  message(text: string): void {
    const line = text.endsWith('\n') ? text : `${text}\n`;
    process.stderr.write(this.raw ? line.replace(/\r?\n/g, '\r\n') : line);
  }

  /** Leaves raw mode on every terminal hyve changed. Safe to call any number of times. */
  restore(): void {
    if (this.restored) return;
    this.restored = true;
    for (const endpoint of this.endpoints) {
      try {
        endpoint?.restore?.();
      } catch {
        // the terminal is gone
      }
    }
  }

  /** Restores the terminal, flushes logs and outputs, closes devices and ptys. */
  async close(): Promise<void> {
    this.restore();
    process.off('exit', this.onExit);
    await Promise.all([
      ...this.endpoints.map((e) => e?.close()),
      ...this.logs.map((log) => (log ? new Promise<void>((resolve) => log.end(resolve)) : undefined)),
    ]);
  }

  private forward(port: number, input: Readable, escapes: boolean): void {
    const detector = escapes ? new EscapeDetector() : undefined;
    input.on('data', (chunk: Buffer) => {
      if (!detector) return this.options.send(chunk, port);
      const { forward, escape } = detector.feed(chunk);
      if (forward.length) this.options.send(forward, port);
      if (escape) this.options.onEscape();
    });
    input.on('error', () => {});
  }

  private openStdio(port: number): Endpoint {
    const stdin = process.stdin;
    const terminal = stdin.isTTY === true;
    if (terminal) {
      stdin.setRawMode(true);
      this.rawStdin = true;
    }
    this.forward(port, stdin, terminal);
    return {
      output: process.stdout,
      input: stdin,
      restore: () => {
        if (terminal) stdin.setRawMode(false);
      },
      close: async () => {
        stdin.pause();
        stdin.destroy();
        if (process.stdout.writableNeedDrain) await once(process.stdout, 'drain');
      },
    };
  }

  private openDevice(port: number, path: string): Endpoint {
    let readFd: number;
    let writeFd: number;
    try {
      readFd = openSync(path, constants.O_RDONLY | constants.O_NOCTTY | constants.O_NONBLOCK);
      writeFd = openSync(path, constants.O_WRONLY | constants.O_NOCTTY);
    } catch (error) {
      throw new Error(`-l ${PORT_NAMES[port]!.toLowerCase()},${path}: ${(error as Error).message}`);
    }
    const isTty = tty.isatty(readFd);
    let input: Readable;
    let output: Writable;
    let restore: (() => void) | undefined;
    if (isTty) {
      const reader = new tty.ReadStream(readFd);
      reader.setRawMode(true);
      restore = () => reader.setRawMode(false);
      input = reader;
      output = new tty.WriteStream(writeFd);
    } else {
      closeSync(readFd);
      readFd = openSync(path, constants.O_RDONLY | constants.O_NOCTTY);
      input = createReadStream('', { fd: readFd });
      output = createWriteStream('', { fd: writeFd });
    }
    this.forward(port, input, false);
    return {
      output,
      input,
      restore,
      close: async () => {
        input.destroy();
        await new Promise<void>((resolve) => output.end(resolve));
      },
    };
  }

  private async openAutopty(port: number, link: string | undefined): Promise<Endpoint> {
    const { path, child } = await openPty(link);
    if (link) {
      rmSync(link, { force: true });
      symlinkSync(path, link);
    }
    this.message(`hyve: ${PORT_NAMES[port]} is on ${path}${link ? ` (${link})` : ''}`);
    this.forward(port, child.stdout!, false);
    child.stdin!.on('error', () => {});
    return {
      output: child.stdin!,
      input: child.stdout!,
      close: async () => {
        if (link) rmSync(link, { force: true });
        child.kill();
      },
    };
  }
}
