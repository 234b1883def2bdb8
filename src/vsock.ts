/**
 * The host side of a guest's virtio-vsock device (Firecracker's "hybrid vsock"): the VMM
 * listens on one UNIX socket per VM; a client writes `CONNECT <port>\n`, reads
 * `OK <host port>\n` once the guest accepted, and then has a byte stream to that guest port.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { HyveError } from './errors.js';

/** Why `guest.connect()` has no stream. */
export type VsockErrorCode = 'HYVE_NO_VSOCK' | 'HYVE_VSOCK_REFUSED' | 'HYVE_VSOCK_TIMEOUT';

/** `guest.connect(port)` failed; `code` says why (docs/errors.md). */
export class VsockError extends HyveError<VsockErrorCode> {
  override readonly name = 'VsockError';
}

/** Options of `guest.connect()`. */
export interface ConnectOptions {
  /** Limit for the guest to accept. Default 10 s. */
  timeoutMs?: number;
  /** Aborts the attempt. */
  signal?: AbortSignal;
}

/** A fresh directory for a VM's vsock socket (short: UNIX socket paths hold 107 bytes). */
export function newVsockSocketPath(): string {
  return path.join(mkdtempSync(path.join(os.tmpdir(), 'hyve-vsock-')), 'vsock');
}

/** Removes the directory newVsockSocketPath() made (and `<socket>_<port>` listeners in it). */
export function removeVsockSocketPath(socketPath: string): void {
  rmSync(path.dirname(socketPath), { recursive: true, force: true });
}

/**
 * A byte stream to guest vsock `port` through the VMM's socket: resolves once the guest
 * accepted. Rejects with VsockError: HYVE_NO_VSOCK (no device, or the VM is gone),
 * HYVE_VSOCK_REFUSED (nothing listens on the port), HYVE_VSOCK_TIMEOUT.
 */
export function connectVsock(socketPath: string, port: number, options: ConnectOptions = {}): Promise<net.Socket> {
  if (!Number.isInteger(port) || port < 0 || port > 0xffffffff) {
    return Promise.reject(new VsockError(`vsock port must be a whole number 0-4294967295, got ${String(port)}`, 'HYVE_VSOCK_REFUSED'));
  }
  const timeoutMs = options.timeoutMs ?? 10_000;
  return new Promise((resolve, reject) => {
    const socket = net.createConnection(socketPath);
    let line = '';
    let settled = false;
    const finish = (error?: VsockError) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      options.signal?.removeEventListener('abort', onAbort);
      socket.off('readable', onReadable);
      socket.off('error', onError);
      socket.off('end', onEnd);
      socket.off('close', onEnd);
      if (error) {
        socket.destroy();
        reject(error);
      } else {
        resolve(socket);
      }
    };
    const onAbort = () => finish(new VsockError(`connecting to guest vsock port ${port} was aborted`, 'HYVE_VSOCK_TIMEOUT'));
    const timer = setTimeout(
      () => finish(new VsockError(`guest vsock port ${port} did not accept within ${timeoutMs} ms`, 'HYVE_VSOCK_TIMEOUT')),
      timeoutMs,
    );
    // 'readable' and read(), not 'data': once this listener is gone the stream is neither
    // flowing nor paused, so the caller's first 'data' listener (ssh2's) starts it.
    const onReadable = () => {
      let chunk: Buffer | null;
      while ((chunk = socket.read() as Buffer | null) !== null) {
        const newline = chunk.indexOf(0x0a);
        if (newline < 0) {
          line += chunk.toString('latin1');
          if (line.length > 64) return finish(new VsockError(`the VMM's vsock socket answered ${JSON.stringify(line)}`, 'HYVE_NO_VSOCK'));
          continue;
        }
        line += chunk.subarray(0, newline).toString('latin1');
        if (!/^OK \d+$/.test(line)) return finish(new VsockError(`the VMM's vsock socket answered ${JSON.stringify(line)}`, 'HYVE_NO_VSOCK'));
        finish();
        // Stream bytes that came with the OK line go back to the stream's consumer.
        if (newline + 1 < chunk.length) socket.unshift(chunk.subarray(newline + 1));
        return;
      }
    };
    const onError = (error: NodeJS.ErrnoException) => {
      const gone = error.code === 'ENOENT' || error.code === 'ECONNREFUSED';
      finish(
        new VsockError(
          gone ? `the guest has no vsock device (boot it with vsock: true), or the VM has ended: ${error.message}` : error.message,
          gone ? 'HYVE_NO_VSOCK' : 'HYVE_VSOCK_REFUSED',
        ),
      );
    };
    const onEnd = () => finish(new VsockError(`guest vsock port ${port} refused the connection (nothing listens there)`, 'HYVE_VSOCK_REFUSED'));
    socket.on('readable', onReadable);
    socket.once('connect', () => socket.write(`CONNECT ${port}\n`));
    socket.on('error', onError);
    socket.on('end', onEnd);
    socket.on('close', onEnd);
    if (options.signal?.aborted) return onAbort();
    options.signal?.addEventListener('abort', onAbort, { once: true });
  });
}
