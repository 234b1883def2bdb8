/**
 * SSH over virtio-vsock on the default guest (Dropbear from the SSH overlay): exec with
 * separate streams and exit status, stdin, signals, concurrency, SFTP both ways with mode
 * bits, and the errors for a wrong host key and a guest without an SSH server. One boot
 * (ready: 'ssh', shared through the snapshot cache) and two restored copies, each of which
 * answers SSH after its vsock transport was reset. Two tests, not one per feature: on an
 * emulated (PVM) host every SSH connection and every command costs the guest seconds of
 * process start-up, so the checks share a copy and its pooled connections.
 */
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync, chmodSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, expect } from 'vitest';
import { GuestError, SshError, VsockError } from 'hyve';
import { guestTest } from 'hyve/vitest';
import { runCommand } from './helpers/console.js';

const bootTimeout = 1_200_000;
// A loaded PVM host can take more than the default 300 s to boot (timeouts are not speed checks).
const test = guestTest({ snapshot: 'auto', ready: 'ssh', timeoutMs: bootTimeout - 60_000 });
const work = mkdtempSync(path.join(os.tmpdir(), 'hyve-ssh-test-'));

beforeAll(() => test.prepareSnapshot(), bootTimeout);
afterAll(() => rmSync(work, { recursive: true, force: true }));

test(
  'exec keeps streams, exit status and env apart, takes stdin, reports signals and timeouts, runs concurrently; spawn streams; a wrong host key names both fingerprints',
  async ({ guest }) => {
    expect(await guest.exec('echo "$GREETING"; echo err >&2; touch /tmp/first-copy; exit 3', { env: { GREETING: "it's here" } })).toEqual({
      stdout: "it's here\n",
      stderr: 'err\n',
      exitCode: 3,
      signal: null,
    });
    const stdin = randomBytes(100_000);
    expect((await guest.exec('wc -c', { stdin })).stdout.trim()).toBe('100000');
    expect(await guest.exec('kill -KILL $$')).toEqual({ stdout: '', stderr: '', exitCode: null, signal: 'SIGKILL' });
    const timedOut = await guest.exec('sleep 1000', { timeoutMs: 2_000 }).catch((e: unknown) => e);
    expect(timedOut).toBeInstanceOf(SshError);
    expect((timedOut as SshError).code).toBe('HYVE_SSH_TIMEOUT');

    // 50 concurrent commands each get their own output (they share 8 connections).
    const results = await Promise.all(Array.from({ length: 50 }, (_, i) => guest.exec(`echo start-${i}; echo end-${i} >&2; exit ${i}`)));
    results.forEach((r, i) => expect(r).toEqual({ stdout: `start-${i}\n`, stderr: `end-${i}\n`, exitCode: i, signal: null }));
    // timeoutMs covers the wait for a connection: with all 8 busy, a ninth exec times out waiting.
    const busy = Array.from({ length: 8 }, () => guest.exec('sleep 3'));
    const waited = await guest.exec('true', { timeoutMs: 500 }).catch((e: unknown) => e);
    expect((waited as SshError).code).toBe('HYVE_SSH_TIMEOUT');
    expect((await Promise.all(busy)).map((r) => r.exitCode)).toEqual(Array(8).fill(0));

    const child = await guest.spawn('while read -r line; do echo "got $line"; done; echo done >&2');
    const lines: string[] = [];
    child.stdout.on('data', (d: Buffer) => lines.push(d.toString()));
    const firstLine = new Promise<void>((resolve) => child.stdout.once('data', () => resolve()));
    child.stdin.write('one\n');
    await firstLine; // the first reply arrives while stdin is still open
    expect(lines.join('')).toBe('got one\n');
    const stderr: Buffer[] = [];
    child.stderr.on('data', (d: Buffer) => stderr.push(d));
    child.stdin.end('two\n');
    expect(await child.exit).toEqual({ exitCode: 0, signal: null });
    expect(lines.join('')).toBe('got one\ngot two\n');
    expect(Buffer.concat(stderr).toString()).toBe('done\n');

    const error = await guest.ssh({ hostKeyFingerprint: 'SHA256:not-the-guest-key' }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(SshError);
    expect((error as SshError).code).toBe('HYVE_SSH_HOST_KEY');
    expect((error as SshError).message).toMatch(/expected SHA256:not-the-guest-key, the guest offered SHA256:[A-Za-z0-9+/]{43}/);
  },
  bootTimeout,
);

// On PVM hosts this once failed 3 of 3 times (64 KiB to 512 KiB) with the wire intact:
// Dropbear's and sftp-server's AVX copies corrupted each other's registers across task
// switches, until hyve pinned XCR0 = x87|SSE for guest user mode (native/pvm/user_xstate.h).
test(
  'SFTP both ways keeps bytes and mode bits',
  async ({ guest }) => {
    // 20 MiB each way (hundreds of SFTP requests in flight at once), byte-exact by checksum.
    const data = randomBytes(20 << 20);
    const local = path.join(work, 'up.bin');
    writeFileSync(local, data);
    chmodSync(local, 0o751);
    const sha = createHash('sha256').update(data).digest('hex');
    await guest.upload(local, '/tmp/up.bin');
    expect((await guest.exec('sha256sum /tmp/up.bin; stat -c %a /tmp/up.bin; chmod 640 /tmp/up.bin')).stdout).toBe(`${sha}  /tmp/up.bin\n751\n`);
    const back = path.join(work, 'down.bin');
    await guest.download('/tmp/up.bin', back);
    expect(createHash('sha256').update(readFileSync(back)).digest('hex')).toBe(sha);
    expect(statSync(back).mode & 0o777).toBe(0o640);
  },
  bootTimeout,
);

test(
  'another restored copy answers SSH and lacks the files the first copy wrote; guest.ssh() is a connection of its own; with the SSH server gone, a GuestError says the console is up but SSH is not',
  async ({ guest }) => {
    expect((await guest.exec('test -e /tmp/first-copy; echo $?')).stdout).toBe('1\n');
    const client = await guest.ssh();
    const uname = await new Promise<string>((resolve, reject) =>
      client.exec('uname -s', (error, stream) => {
        if (error) return reject(error);
        let out = '';
        stream.on('data', (d: Buffer) => (out += d.toString())).on('close', () => resolve(out));
      }),
    );
    expect(uname).toBe('Linux\n');
    client.end();

    // Until the killed servers have exited: one still alive would take the connection into its backlog.
    expect((await runCommand(guest, 'kill $(pidof vsockd) && while pidof vsockd >/dev/null; do sleep 0.2; done; echo killed')).output).toBe('killed\n');
    const error = await guest.ssh().catch((e: unknown) => e);
    expect(error).toBeInstanceOf(GuestError);
    expect((error as GuestError).reason).toBe('no ssh');
    expect((error as GuestError).message).toMatch(/console is up but SSH is not: guest vsock port 22 refused the connection/);
    const refused = await guest.connect(4242).catch((e: unknown) => e);
    expect(refused).toBeInstanceOf(VsockError);
    expect((refused as VsockError).code).toBe('HYVE_VSOCK_REFUSED');
  },
  bootTimeout,
);
