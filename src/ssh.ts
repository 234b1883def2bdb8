/**
 * SSH to a guest over vsock (ssh2 as the client, the SSH overlay's Dropbear as the server):
 * exec with separate streams and exit status, streaming commands, SFTP file transfer. One
 * shared connection per guest carries exec/spawn/upload/download as concurrent channels;
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

/**
 * Dropbear serves at most 10 channels per connection and refuses more ("Unable to exec"):
 * channels beyond MAX_CHANNELS wait for one to close.
 */
const MAX_CHANNELS = 8;
const channelQueues = new WeakMap<Client, { open: number; waiting: (() => void)[] }>();

/** Opens a channel on `client` once fewer than MAX_CHANNELS are open; `release` when it closed. */
async function channelSlot(client: Client): Promise<() => void> {
  let queue = channelQueues.get(client);
  if (!queue) channelQueues.set(client, (queue = { open: 0, waiting: [] }));
  const q = queue;
  if (q.open >= MAX_CHANNELS) await new Promise<void>((resolve) => q.waiting.push(resolve));
  else q.open++;
  let released = false;
  return () => {
    if (released) return;
    released = true;
    const next = q.waiting.shift();
    if (next) next(); // the slot passes on
    else q.open--;
  };
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

/** Runs `command` on `client`, collecting its output (see ExecOptions). */
export async function execOn(client: Client, command: string, options: ExecOptions = {}): Promise<ExecResult> {
  const release = await channelSlot(client);
  try {
    return await execChannel(client, command, options);
  } finally {
    release();
  }
}

function execChannel(client: Client, command: string, options: ExecOptions): Promise<ExecResult> {
  return new Promise((resolve, reject) => {
    let line: string;
    try {
      line = withEnv(command, options.env);
    } catch (error) {
      return reject(error);
    }
    options.signal?.throwIfAborted();
    client.exec(line, (error, stream) => {
      if (error) return reject(new SshError(`exec ${JSON.stringify(command)}: ${error.message}`, 'HYVE_SSH'));
      const stdout: Buffer[] = [];
      const stderr: Buffer[] = [];
      let exit: CommandExit = { exitCode: null, signal: null };
      let failure: Error | undefined;
      let settled = false;
      const settle = () => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        options.signal?.removeEventListener('abort', onAbort);
        if (failure) return reject(failure);
        resolve({ stdout: Buffer.concat(stdout).toString(), stderr: Buffer.concat(stderr).toString(), ...exit });
      };
      const end = (why: Error) => {
        failure ??= why;
        stream.signal('KILL');
        stream.close();
        // A server may hold the channel open until the command is gone: do not wait for it.
        setTimeout(settle, 5_000).unref();
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
      stream.on('close', settle);
      feedStdin(stream, options.stdin);
    });
  });
}

function feedStdin(stream: ClientChannel, stdin: ExecOptions['stdin']): void {
  if (stdin === undefined) stream.end();
  else if (typeof stdin === 'string' || Buffer.isBuffer(stdin)) stream.end(stdin);
  else stdin.pipe(stream);
}

/** Starts `command` on `client` with its streams open to the caller. */
export async function spawnOn(client: Client, command: string, options: Pick<ExecOptions, 'env'> = {}): Promise<SpawnedCommand> {
  const release = await channelSlot(client);
  return new Promise((resolve, reject) => {
    client.exec(withEnv(command, options.env), (error, stream) => {
      if (error) {
        release();
        return reject(new SshError(`spawn ${JSON.stringify(command)}: ${error.message}`, 'HYVE_SSH'));
      }
      stream.on('close', release);
      let exit: CommandExit = { exitCode: null, signal: null };
      stream.on('exit', (code: number | null, signal?: string) => {
        exit = typeof code === 'number' ? { exitCode: code, signal: null } : { exitCode: null, signal: signalName(signal) };
      });
      const ended = new Promise<CommandExit>((done) => stream.on('close', () => done(exit)));
      resolve({ stdin: stream, stdout: stream, stderr: stream.stderr, exit: ended, kill: (signal = 'TERM') => stream.signal(signal) });
    });
  });
}

async function sftpOf(client: Client): Promise<SFTPWrapper> {
  const release = await channelSlot(client);
  return new Promise((resolve, reject) =>
    client.sftp((error, sftp) => {
      if (error) {
        release();
        return reject(new SshError(`SFTP: ${error.message}`, 'HYVE_SSH'));
      }
      sftp.on('close', release);
      resolve(sftp);
    }),
  );
}

function sftpCall(what: string, call: (done: (error?: Error | null) => void) => void): Promise<void> {
  return new Promise((resolve, reject) => call((error) => (error ? reject(new SshError(`${what}: ${error.message}`, 'HYVE_SSH')) : resolve())));
}

/** Copies a host file into the guest over SFTP, with its mode bits. */
export async function uploadOn(client: Client, localPath: string, remotePath: string): Promise<void> {
  const mode = (await stat(localPath)).mode & 0o7777;
  const sftp = await sftpOf(client);
  try {
    await sftpCall(`upload ${localPath} to ${remotePath}`, (done) => sftp.fastPut(localPath, remotePath, { mode }, done));
    await sftpCall(`chmod ${remotePath}`, (done) => sftp.chmod(remotePath, mode, done)); // the guest's umask applied at creation
  } finally {
    await endSftp(sftp);
  }
}

/** Copies a guest file to the host over SFTP, with its mode bits. */
export async function downloadOn(client: Client, remotePath: string, localPath: string): Promise<void> {
  const sftp = await sftpOf(client);
  try {
    const attrs = await new Promise<{ mode: number }>((resolve, reject) =>
      sftp.stat(remotePath, (error, stats) => (error ? reject(new SshError(`download ${remotePath}: ${error.message}`, 'HYVE_SSH')) : resolve(stats))),
    );
    await sftpCall(`download ${remotePath} to ${localPath}`, (done) => sftp.fastGet(remotePath, localPath, done));
    await chmod(localPath, attrs.mode & 0o7777);
  } finally {
    await endSftp(sftp);
  }
}

/**
 * Ends an SFTP session and waits (at most 5 s) until its channel has closed. Returning
 * earlier let the next exec() race the session's teardown in Dropbear, which then refused
 * that exec ("Unable to exec"): 5 of 6 times after a 20 MiB upload, none of 6 now.
 */
function endSftp(sftp: SFTPWrapper): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, 5_000);
    timer.unref();
    sftp.once('close', () => {
      clearTimeout(timer);
      resolve();
    });
    sftp.end();
  });
}

export { SSH_VSOCK_PORT };
