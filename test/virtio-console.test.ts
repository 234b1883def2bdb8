/**
 * virtio-console on the default guest (one boot for the file): hvc0 as the guest console
 * (console: 'virtio'), with run() working over it, a named MULTIPORT port carrying
 * 16 MiB each way, byte-exact, between guest.openPort() and the guest's /dev/vport0pN,
 * and a restored copy of a snapshot with a console and ports of its own.
 */
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Socket } from 'node:net';
import { bootGuest, type Guest } from 'hyve';
import { runCommand } from './helpers/console.js';

const PORT = 'org.hyve.test';
const BYTES = 16 * 1024 * 1024;

let guest: Guest;

beforeAll(async () => {
  // A loaded 2-core PVM host has taken over 5 minutes for a default-guest boot.
  guest = await bootGuest({ timeoutMs: 1_100_000, console: 'virtio', ports: [PORT, 'second'] });
}, 1_200_000);

afterAll(async () => {
  await guest?.kill();
});

const sh = async (command: string, timeoutMs = 120_000) => runCommand(guest, command, { timeoutMs });

/** The guest's device for the port named `name`, found by its name in sysfs. */
const devicePath = `for d in /sys/class/virtio-ports/*; do [ "$(cat $d/name 2>/dev/null)" = ${PORT} ] && echo /dev/\${d##*/}; done`;

/** Resolves with the first `length` bytes `socket` receives. */
function receive(socket: Socket, length: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let got = 0;
    const onData = (chunk: Buffer) => {
      chunks.push(chunk);
      got += chunk.length;
      if (got >= length) {
        socket.off('data', onData);
        resolve(Buffer.concat(chunks).subarray(0, length));
      }
    };
    socket.on('data', onData);
    socket.once('error', reject);
    socket.once('close', () => reject(new Error(`the port closed after ${got} of ${length} bytes`)));
  });
}

describe('virtio-console', () => {
  test('hvc0 is the guest console and run() works on it', async () => {
    const { output, exitCode } = await sh('cat /sys/class/tty/console/active; tty; echo $((6 * 7))');
    expect(exitCode).toBe(0);
    expect(output).toBe('hvc0\n/dev/hvc0\n42\n');
    expect(guest.serial.output).toContain('HYVE-READY');
  }, 180_000);

  test('named ports appear in sysfs with their names', async () => {
    const { output } = await sh('cat /sys/class/virtio-ports/*/name 2>/dev/null; ' + devicePath); // the console port has no name
    expect(output.split('\n').filter(Boolean).sort()).toEqual(['/dev/vport0p1', PORT, 'second'].sort());
    expect(() => guest.openPort('nope')).toThrow(/no virtio-console port "nope".*org\.hyve\.test, second/);
  }, 180_000);

  test('16 MiB go through a named port both ways, byte-exact', async () => {
    const socket = guest.openPort(PORT);
    try {
      await new Promise<void>((resolve, reject) => socket.once('connect', resolve).once('error', reject));
      const sent = randomBytes(BYTES);
      const echoed = receive(socket, BYTES);
      socket.write(sent);
      // One open of the port, read and written (a port takes one opener at a time).
      const started = Date.now();
      const { exitCode } = await sh(`head -c ${BYTES} <>$(${devicePath}) >&0`, 1_500_000);
      expect(exitCode).toBe(0);
      const back = await echoed;
      console.log(`virtio-console: 16 MiB each way in ${((Date.now() - started) / 1000).toFixed(1)} s`);
      expect(back.length).toBe(BYTES);
      expect(back.equals(sent)).toBe(true);
      // And the guest's own bytes reach the host.
      const hello = receive(socket, 17);
      expect((await sh(`printf 'hello from guest\\n' >$(${devicePath})`)).exitCode).toBe(0);
      expect((await hello).toString()).toBe('hello from guest\n');
    } finally {
      socket.destroy();
    }
  }, 1_800_000);

  test('a restored copy has the console and its own named port sockets; bytes go both ways', async () => {
    const work = mkdtempSync(path.join(os.tmpdir(), 'hyve-console-snapshot-'));
    try {
      const started = Date.now();
      const { dir } = await guest.snapshot(path.join(work, 'snapshot'));
      const copy = await bootGuest({ snapshot: dir });
      try {
        // Its own socket: the original's still listens.
        expect(copy.portSockets.get(PORT)).not.toBe(guest.portSockets.get(PORT));
        expect(existsSync(guest.portSockets.get(PORT)!)).toBe(true);
        expect((await runCommand(copy, 'echo copy $((6 * 7))', { timeoutMs: 120_000 })).output).toBe('copy 42\n');
        const socket = copy.openPort(PORT);
        try {
          await new Promise<void>((resolve, reject) => socket.once('connect', resolve).once('error', reject));
          const fromGuest = receive(socket, 10);
          socket.write('from host\n');
          // The original's peer was reset in the copy, so the guest's write waits until this
          // peer connected (the port reopened), and the host's bytes until the guest opened it.
          const { output, exitCode } = await runCommand(copy, `exec 3<>$(${devicePath}); printf 'from copy\\n' >&3; head -c 10 <&3`, { timeoutMs: 120_000 });
          expect(exitCode).toBe(0);
          expect(output).toBe('from host\n');
          expect((await fromGuest).toString()).toBe('from copy\n');
        } finally {
          socket.destroy();
        }
      } finally {
        await copy.kill();
      }
      console.log(`virtio-console: snapshot, restore and both checks in ${((Date.now() - started) / 1000).toFixed(1)} s`);
      expect((await sh('echo still here')).output).toBe('still here\n');
    } finally {
      rmSync(work, { recursive: true, force: true });
    }
  }, 300_000);
});
