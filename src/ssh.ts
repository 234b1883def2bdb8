/**
 * SSH to a guest over vsock (ssh2 as the client, the SSH overlay's Dropbear as the server):
 * exec with separate streams and exit status, streaming commands, SFTP file transfer.
 * exec/spawn/upload/download run on a guest's SshPool, one channel per connection;
 * guest.ssh() hands out connections of their own. All of them close with the guest.
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
  /** Ends the command (SIGKILL, then the channel is closed) and rejects with SshError HYVE_SSH_TIMEOUT. Default: none. */
  timeoutMs?: number;
  /** Ends the command like timeoutMs does and rejects with the signal's reason. */
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

/** Connections exec/spawn/upload/download open at most; further commands wait for one. */
const MAX_CONNECTIONS = 8;

/** A connection lent to one channel; give it back with whether it may carry another. */
export interface SshLease {
  client: Client;
  /** `reusable`: the channel closed cleanly, so the server has no command of it left. */
  release(reusable: boolean): void;
}

/**
 * The connections exec(), spawn(), upload() and download() run on: one channel per
 * connection at a time, reused once that channel closed cleanly. Several channels on one
 * connection are what the guest's Dropbear (2022.83, Debian 12's) cannot take: a command
 * exiting makes it close every session channel still waiting for its exec request, and
 * the output of that exec then trips an assertion that ends the whole connection (Dropbear
 * issue #321, fixed in 2024.86). 50 concurrent execs on one connection lost it every time.
 */
export class SshPool {
  private readonly idle: Client[] = [];
  private readonly closed = new WeakSet<Client>();
  private readonly waiting: (() => void)[] = [];
  /** Connections open, opening or lent out. */
  private count = 0;

  constructor(
    private readonly open: () => Promise<Client>,
    private readonly max = MAX_CONNECTIONS,
  ) {}

  /** Lends an idle connection, or a new one while fewer than `max` exist, or waits for one. */
  async lease(): Promise<SshLease> {
    for (;;) {
      const client = this.idle.pop();
      if (client) return this.lend(client);
      if (this.count < this.max) break;
      await new Promise<void>((resolve) => this.waiting.push(resolve));
    }
    this.count++;
    let client: Client;
    try {
      client = await this.open();
    } catch (error) {
      this.count--;
      this.waiting.shift()?.(); // a waiter may try again
      throw error;
    }
    this.track(client);
    return this.lend(client);
  }

  /** Takes in a connection opened elsewhere (the one that showed SSH was ready) as idle. */
  adopt(client: Client): void {
    this.count++;
    this.track(client);
    this.giveBack(client);
  }

  private track(client: Client): void {
    client.once('close', () => {
      this.closed.add(client);
      const at = this.idle.indexOf(client);
      if (at >= 0) this.idle.splice(at, 1);
      this.count--;
      this.waiting.shift()?.();
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
        else client.end(); // its 'close' frees the place
      },
    };
  }

  private giveBack(client: Client): void {
    if (this.closed.has(client)) return;
    this.idle.push(client);
    this.waiting.shift()?.();
  }
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
  options.signal?.throwIfAborted();
  const lease = await pool.lease();
  return new Promise((resolve, reject) => {
    lease.client.exec(line, (error, stream) => {
      if (error) {
        lease.release(false);
        return reject(new SshError(`exec ${JSON.stringify(command)}: ${error.message}`, 'HYVE_SSH'));
      }
      const stdout: Buffer[] = [];
      const stderr: Buffer[] = [];
      let exit: CommandExit = { exitCode: null, signal: null };
      let failure: Error | undefined;
      let settled = false;
      const settle = (closed: boolean) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        options.signal?.removeEventListener('abort', onAbort);
        lease.release(closed);
        if (failure) return reject(failure);
        resolve({ stdout: Buffer.concat(stdout).toString(), stderr: Buffer.concat(stderr).toString(), ...exit });
      };
      const end = (why: Error) => {
        failure ??= why;
        stream.signal('KILL');
        stream.close();
        // A server may hold the channel open until the command is gone: do not wait for it.
        setTimeout(() => settle(false), 5_000).unref();
      };
      const timer = options.timeoutMs === undefined ? undefined : setTimeout(
        () => end(new SshError(`exec ${JSON.stringify(command)} did not finish within timeoutMs (${options.timeoutMs} ms)`, 'HYVE_SSH_TIMEOUT')),
        options.timeoutMs,
      );
      const onAbort = () => end(options.signal!.reason as Error);
      options.signal?.addEventListener('abort', onAbort, { once: true });
      stream.on('data', (chunk: Buffer) => stdout.push(chunk));
      stream.stderr.on('data', (chunk: Buffer) => stderr.push(chunk));
      stream.on('exit', (code: number | null, signal?: string) => {
        exit = typeof code === 'number' ? { exitCode: code, signal: null } : { exitCode: null, signal: signalName(signal) };
      });
      // The server closes the channel once the command has exited: the connection is free.
      stream.on('close', () => settle(true));
      feedStdin(stream, options.stdin);
    });
  });
}

function feedStdin(stream: ClientChannel, stdin: ExecOptions['stdin']): void {
  if (stdin === undefined) stream.end();
  else if (typeof stdin === 'string' || Buffer.isBuffer(stdin)) stream.end(stdin);
  else stdin.pipe(stream);
}

/** Starts `command` on a connection of `pool` with its streams open to the caller. */
export async function spawnOn(pool: SshPool, command: string, options: Pick<ExecOptions, 'env'> = {}): Promise<SpawnedCommand> {
  const line = withEnv(command, options.env);
  const lease = await pool.lease();
  return new Promise((resolve, reject) => {
    lease.client.exec(line, (error, stream) => {
      if (error) {
        lease.release(false);
        return reject(new SshError(`spawn ${JSON.stringify(command)}: ${error.message}`, 'HYVE_SSH'));
      }
      let exit: CommandExit = { exitCode: null, signal: null };
      stream.on('exit', (code: number | null, signal?: string) => {
        exit = typeof code === 'number' ? { exitCode: code, signal: null } : { exitCode: null, signal: signalName(signal) };
      });
      const ended = new Promise<CommandExit>((done) =>
        stream.on('close', () => {
          lease.release(true);
          done(exit);
        }),
      );
      resolve({ stdin: stream, stdout: stream, stderr: stream.stderr, exit: ended, kill: (signal = 'TERM') => stream.signal(signal) });
    });
  });
}

/** An SFTP session on a connection of `pool`; endSftp() gives the connection back. */
async function sftpOf(pool: SshPool): Promise<{ sftp: SFTPWrapper; lease: SshLease }> {
  const lease = await pool.lease();
  return new Promise((resolve, reject) =>
    lease.client.sftp((error, sftp) => {
      if (error) {
        lease.release(false);
        return reject(new SshError(`SFTP: ${error.message}`, 'HYVE_SSH'));
      }
      resolve({ sftp, lease });
    }),
  );
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
