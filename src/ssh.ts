/**
 * SSH to a guest over vsock (ssh2 as the client, the SSH overlay's Dropbear as the server):
 * exec with separate streams and exit status, streaming commands, SFTP file transfer.
 * exec/upload/download run on a guest's SshPool, one channel per connection; spawn() and
 * guest.ssh() get connections of their own. All of them close with the guest.
 */
import { chmod, stat } from 'node:fs/promises';
import type { Duplex, Readable, Writable } from 'node:stream';
import ssh2 from 'ssh2';
import type { Client, ClientChannel, SFTPWrapper } from 'ssh2';
import { HyveError } from './errors.js';
import { shellQuote } from './cli/options.js';
import { sshFingerprint, SSH_VSOCK_PORT, type SshIdentity } from './fixtures/ssh-overlay.js';

/** Why an SSH operation failed (docs/errors.md). */
export type SshErrorCode = 'HYVE_SSH_HOST_KEY' | 'HYVE_SSH_TIMEOUT' | 'HYVE_SSH';

/** An SSH handshake or command failed; `code` says why. A guest without an SSH server is a GuestError instead. */
export class SshError extends HyveError<SshErrorCode> {
  override readonly name = 'SshError';
}

/** Options of `guest.ssh()`. */
export interface SshOptions {
  /** Limit for the connection and the handshake. Default 30 s (120 s without hardware virtualization). */
  timeoutMs?: number;
  /** The host key fingerprint (`SHA256:...`) to accept instead of the one hyve made. */
  hostKeyFingerprint?: string;
}

/** Options of `guest.exec()`. */
export interface ExecOptions {
  /** The command's standard input (default: none, at EOF at once). */
  stdin?: string | Buffer | Readable;
  /** Environment variables, exported in front of the command. */
  env?: Record<string, string>;
  /**
   * Ends the command (SIGKILL, then the channel is closed) and rejects with SshError
   * HYVE_SSH_TIMEOUT; counts from the call, the wait for a free connection included. Default: none.
   */
  timeoutMs?: number;
  /** Ends the command like timeoutMs does (or its wait for a connection) and rejects with the signal's reason. */
  signal?: AbortSignal;
}

/** What `guest.exec()` resolves with. */
export interface ExecResult {
  stdout: string;
  stderr: string;
  /** The exit status; null when a signal ended the command. */
  exitCode: number | null;
  /** The signal that ended the command (`'SIGKILL'`), or null. */
  signal: string | null;
}

/** How a spawned command ended. */
export type CommandExit = Pick<ExecResult, 'exitCode' | 'signal'>;

/** A command started by `guest.spawn()`. */
export interface SpawnedCommand {
  stdin: Writable;
  stdout: Readable;
  stderr: Readable;
  /** Settles when the command ended and its output was read to the end. */
  exit: Promise<CommandExit>;
  /** Sends the command a signal (`'TERM'`, `'KILL'`, ...). */
  kill(signal?: string): void;
}

/** Connections exec/upload/download keep at most; further calls wait for one. */
const MAX_CONNECTIONS = 8;
/**
 * Handshakes under way at once. With ssh: 'network' every connection comes from the user
 * network's one gateway address, and Dropbear drops a sixth unauthenticated connection
 * from one address (MAX_UNAUTH_PER_IP, 5).
 */
const MAX_OPENING = 4;

/** A connection lent to one channel; give it back with whether it may carry another. */
export interface SshLease {
  client: Client;
  /** `reusable`: the channel closed cleanly, so the server has no command of it left. */
  release(reusable: boolean): void;
}

/**
 * The connections exec(), upload() and download() run on: one channel per connection at a
 * time, reused once that channel closed cleanly. Several channels on one connection are
 * what the guest's Dropbear (2022.83, Debian 12's) cannot take: a command exiting makes it
 * close every session channel still waiting for its exec request, and the output of that
 * exec then trips an assertion that ends the whole connection (Dropbear issue #321, fixed
 * in 2024.86). 50 concurrent execs on one connection lost it every time.
 */
export class SshPool {
  private readonly idle: Client[] = [];
  private readonly closed = new WeakSet<Client>();
  /** Each is woken with a connection handed over, or with none: there may be room to open one. */
  private readonly waiting: ((client: Client | undefined) => void)[] = [];
  /** Connections open, opening or lent out. */
  private count = 0;
  private opening = 0;

  constructor(
    private readonly open: () => Promise<Client>,
    private readonly max = MAX_CONNECTIONS,
  ) {}

  /**
   * Lends an idle connection, or a new one while fewer than `max` exist, or waits for one
   * (first come, first served) until `signal` aborts.
   */
  async lease(signal?: AbortSignal): Promise<SshLease> {
    for (;;) {
      signal?.throwIfAborted();
      const idle = this.idle.pop();
      if (idle) return this.lend(idle);
      if (this.count < this.max && this.opening < MAX_OPENING) return this.lend(await this.openOne());
      const handed = await this.wait(signal);
      if (handed && !this.closed.has(handed)) return this.lend(handed);
    }
  }

  /** A connection of its own, outside the pool and its limit, ended on release (spawn()). */
  async own(): Promise<SshLease> {
    const client = await this.open();
    return { client, release: () => client.end() };
  }

  /** Takes in a connection opened elsewhere (the one that showed SSH was ready) as idle. */
  adopt(client: Client): void {
    this.count++;
    this.track(client);
    this.giveBack(client);
  }

  private async openOne(): Promise<Client> {
    this.count++;
    this.opening++;
    try {
      const client = await this.open();
      this.track(client);
      return client;
    } catch (error) {
      this.count--;
      throw error;
    } finally {
      this.opening--;
      this.wakeOne(undefined); // room for another handshake
    }
  }

  private wait(signal?: AbortSignal): Promise<Client | undefined> {
    return new Promise((resolve, reject) => {
      const waiter = (client: Client | undefined) => {
        signal?.removeEventListener('abort', onAbort);
        resolve(client);
      };
      const onAbort = () => {
        const at = this.waiting.indexOf(waiter);
        if (at >= 0) this.waiting.splice(at, 1);
        reject(signal!.reason);
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      this.waiting.push(waiter);
    });
  }

  private wakeOne(client: Client | undefined): boolean {
    const waiter = this.waiting.shift();
    waiter?.(client);
    return waiter !== undefined;
  }

  private track(client: Client): void {
    client.once('close', () => {
      this.closed.add(client);
      const at = this.idle.indexOf(client);
      if (at >= 0) this.idle.splice(at, 1);
      this.count--;
      this.wakeOne(undefined);
    });
  }

  private lend(client: Client): SshLease {
    let released = false;
    return {
      client,
      release: (reusable) => {
        if (released) return;
        released = true;
        if (reusable) this.giveBack(client);
        else client.destroy(); // its 'close' frees the place, also from a guest that stopped answering
      },
    };
  }

  private giveBack(client: Client): void {
    if (this.closed.has(client)) return;
    if (!this.wakeOne(client)) this.idle.push(client);
  }
}

/**
 * A lease from `pool` waited for within `timeoutMs` and until `signal` aborts, so both
 * cover the wait for a connection as well as the command.
 */
async function leaseWithin(pool: SshPool, options: Pick<ExecOptions, 'timeoutMs' | 'signal'>, timedOut: () => Error): Promise<SshLease> {
  options.signal?.throwIfAborted();
  if (options.timeoutMs === undefined) return pool.lease(options.signal);
  const timeout = new AbortController();
  const timer = setTimeout(() => timeout.abort(timedOut()), options.timeoutMs);
  try {
    return await pool.lease(options.signal ? AbortSignal.any([options.signal, timeout.signal]) : timeout.signal);
  } finally {
    clearTimeout(timer);
  }
}

/** Opens a session channel for `command`, turning ssh2's errors (thrown or passed) into SshError. */
function openExec(lease: SshLease, what: string, line: string): Promise<ClientChannel> {
  return new Promise((resolve, reject) => {
    const fail = (error: Error) => {
      lease.release(false);
      reject(new SshError(`${what}: ${error.message}`, 'HYVE_SSH'));
    };
    try {
      lease.client.exec(line, (error, stream) => (error ? fail(error) : resolve(stream)));
    } catch (error) {
      fail(error as Error); // 'Not connected': the connection ended before its 'close'
    }
  });
}

/** The envelope the shell runs: `export K='v'; command`. */
function withEnv(command: string, env: Record<string, string> | undefined): string {
  if (!env) return command;
  const exports = Object.entries(env).map(([name, value]) => {
    if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(name)) throw new SshError(`env: ${JSON.stringify(name)} is not a variable name`, 'HYVE_SSH');
    return `export ${name}=${shellQuote(value)}; `;
  });
  return exports.join('') + command;
}

function signalName(name: string | undefined): string | null {
  if (!name) return null;
  return name.startsWith('SIG') ? name : `SIG${name}`;
}

/** A channel's 'exit' event (an exit status, or a signal's name) as a CommandExit. */
function commandExit(code: number | null, signal?: string): CommandExit {
  return typeof code === 'number' ? { exitCode: code, signal: null } : { exitCode: null, signal: signalName(signal) };
}

/**
 * Opens an SSH connection on `sock` and checks the server's host key against `identity`.
 * Rejects with SshError HYVE_SSH_HOST_KEY naming both fingerprints on a mismatch.
 */
export function connectSsh(sock: Duplex, identity: SshIdentity, timeoutMs: number): Promise<Client> {
  return new Promise((resolve, reject) => {
    const client = new ssh2.Client();
    let mismatch: SshError | undefined;
    client.once('ready', () => {
      client.removeAllListeners('error');
      client.on('error', () => {}); // later failures reach the channels that use it
      resolve(client);
    });
    client.once('error', (error) => {
      client.end();
      reject(mismatch ?? new SshError(`SSH handshake with the guest failed: ${error.message}`, 'HYVE_SSH'));
    });
    client.connect({
      sock: sock as unknown as Readable,
      username: 'root',
      privateKey: identity.clientPrivateKey,
      readyTimeout: timeoutMs,
      hostVerifier: (key: Buffer) => {
        const got = sshFingerprint(key);
        if (got === identity.hostKeyFingerprint) return true;
        mismatch = new SshError(
          `the guest's SSH host key does not match: expected ${identity.hostKeyFingerprint}, the guest offered ${got}`,
          'HYVE_SSH_HOST_KEY',
        );
        return false;
      },
    });
  });
}

/** Runs `command` on a connection of `pool`, collecting its output (see ExecOptions). */
export async function execOn(pool: SshPool, command: string, options: ExecOptions = {}): Promise<ExecResult> {
  const line = withEnv(command, options.env);
  const what = `exec ${JSON.stringify(command)}`;
  const timedOut = () => new SshError(`${what} did not finish within timeoutMs (${options.timeoutMs} ms)`, 'HYVE_SSH_TIMEOUT');
  const started = Date.now();
  const lease = await leaseWithin(pool, options, timedOut);
  const stream = await openExec(lease, what, line);
  return new Promise((resolve, reject) => {
    const stdout: Buffer[] = [];
    const stderr: Buffer[] = [];
    let exit: CommandExit | undefined;
    let failure: Error | undefined;
    let settled = false;
    const settle = (closed: boolean) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      options.signal?.removeEventListener('abort', onAbort);
      // A close without an exit status: the connection ended under the command.
      if (!failure && !exit) failure = new SshError(`${what}: the SSH connection ended before the command's exit status arrived`, 'HYVE_SSH');
      lease.release(closed && !!exit);
      if (failure) return reject(failure);
      resolve({ stdout: Buffer.concat(stdout).toString(), stderr: Buffer.concat(stderr).toString(), ...exit! });
    };
    const end = (why: Error) => {
      failure ??= why;
      stream.signal('KILL');
      stream.close();
      // A server may hold the channel open until the command is gone: do not wait for it.
      setTimeout(() => settle(false), 5_000).unref();
    };
    const timer = options.timeoutMs === undefined ? undefined : setTimeout(() => end(timedOut()), Math.max(0, options.timeoutMs - (Date.now() - started)));
    const onAbort = () => end(options.signal!.reason as Error);
    options.signal?.addEventListener('abort', onAbort, { once: true });
    if (options.signal?.aborted) onAbort();
    stream.on('data', (chunk: Buffer) => stdout.push(chunk));
    stream.stderr.on('data', (chunk: Buffer) => stderr.push(chunk));
    stream.on('exit', (code: number | null, signal?: string) => (exit = commandExit(code, signal)));
    // The server closes the channel once the command has exited: the connection is free.
    stream.on('close', () => settle(true));
    feedStdin(stream, options.stdin);
  });
}

function feedStdin(stream: ClientChannel, stdin: ExecOptions['stdin']): void {
  if (stdin === undefined) stream.end();
  else if (typeof stdin === 'string' || Buffer.isBuffer(stdin)) stream.end(stdin);
  else stdin.pipe(stream);
}

/**
 * Starts `command` with its streams open to the caller, on a connection of its own: a
 * command that runs for long (`tail -f`) does not hold one of the pool's.
 */
export async function spawnOn(pool: SshPool, command: string, options: Pick<ExecOptions, 'env'> = {}): Promise<SpawnedCommand> {
  const line = withEnv(command, options.env);
  const lease = await pool.own();
  const stream = await openExec(lease, `spawn ${JSON.stringify(command)}`, line);
  let exit: CommandExit = { exitCode: null, signal: null };
  stream.on('exit', (code: number | null, signal?: string) => (exit = commandExit(code, signal)));
  const ended = new Promise<CommandExit>((done) =>
    stream.on('close', () => {
      lease.release(false);
      done(exit);
    }),
  );
  return { stdin: stream, stdout: stream, stderr: stream.stderr, exit: ended, kill: (signal = 'TERM') => stream.signal(signal) };
}

/** An SFTP session on a connection of `pool`; endSftp() gives the connection back. */
async function sftpOf(pool: SshPool): Promise<{ sftp: SFTPWrapper; lease: SshLease }> {
  const lease = await pool.lease();
  return new Promise((resolve, reject) => {
    const fail = (error: Error) => {
      lease.release(false);
      reject(new SshError(`SFTP: ${error.message}`, 'HYVE_SSH'));
    };
    try {
      lease.client.sftp((error, sftp) => (error ? fail(error) : resolve({ sftp, lease })));
    } catch (error) {
      fail(error as Error);
    }
  });
}

function sftpCall(what: string, call: (done: (error?: Error | null) => void) => void): Promise<void> {
  return new Promise((resolve, reject) => call((error) => (error ? reject(new SshError(`${what}: ${error.message}`, 'HYVE_SSH')) : resolve())));
}

/** Copies a host file into the guest over SFTP, with its mode bits. */
export async function uploadOn(pool: SshPool, localPath: string, remotePath: string): Promise<void> {
  const mode = (await stat(localPath)).mode & 0o7777;
  const { sftp, lease } = await sftpOf(pool);
  try {
    await sftpCall(`upload ${localPath} to ${remotePath}`, (done) => sftp.fastPut(localPath, remotePath, { mode }, done));
    await sftpCall(`chmod ${remotePath}`, (done) => sftp.chmod(remotePath, mode, done)); // the guest's umask applied at creation
  } finally {
    await endSftp(sftp, lease);
  }
}

/** Copies a guest file to the host over SFTP, with its mode bits. */
export async function downloadOn(pool: SshPool, remotePath: string, localPath: string): Promise<void> {
  const { sftp, lease } = await sftpOf(pool);
  try {
    const attrs = await new Promise<{ mode: number }>((resolve, reject) =>
      sftp.stat(remotePath, (error, stats) => (error ? reject(new SshError(`download ${remotePath}: ${error.message}`, 'HYVE_SSH')) : resolve(stats))),
    );
    await sftpCall(`download ${remotePath} to ${localPath}`, (done) => sftp.fastGet(remotePath, localPath, done));
    await chmod(localPath, attrs.mode & 0o7777);
  } finally {
    await endSftp(sftp, lease);
  }
}

/**
 * Ends an SFTP session and gives its connection back once the channel has closed (the
 * sftp-server exited). A channel still open after 5 s ends its connection instead: the
 * server's exit there would close the next channel's exec (see SshPool).
 */
function endSftp(sftp: SFTPWrapper, lease: SshLease): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(() => {
      lease.release(false);
      resolve();
    }, 5_000);
    timer.unref();
    sftp.once('close', () => {
      clearTimeout(timer);
      lease.release(true);
      resolve();
    });
    sftp.end();
  });
}

export { SSH_VSOCK_PORT };
