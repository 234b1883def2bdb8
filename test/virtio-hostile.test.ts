/**
 * Hostile rings from inside a guest: test/guests/virtio_hostile.c drives the virtio-rng
 * function's modern virtio-pci registers with malformed rings (a descriptor loop, a buffer
 * outside RAM, a length near 4 GiB, an available index that jumps, a queue size that is
 * not a power of two, a used index it scribbles over). The VMM stays up, the device
 * reports DEVICE_NEEDS_RESET with a configuration interrupt (virtio 1.x §2.1.2), and after
 * a reset the same device serves a good request again. test/guests/vsock_hostile.c does the
 * same to virtio-vsock with hostile packets: each is answered with a reset or dropped, and
 * the next connection still works.
 */
import { expect, test } from 'vitest';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { startVm } from 'hyve';
import { buildGuest } from './helpers/guests.js';

/**
 * Boots the bespoke guest `name` with `device` at its slot (between the host and LPC
 * bridges) and returns what it said: its "hyve-guest: " lines without the prefix, once it
 * powered off.
 */
async function runHostileGuest(name: string, device: { slot: number; emulation: string; args?: string }): Promise<string[]> {
  const vm = startVm({
    kernel: buildGuest(name),
    memoryMiB: 64,
    pciDevices: [{ slot: 0, emulation: 'hostbridge' }, device, { slot: 31, emulation: 'lpc' }],
  });
  let output = '';
  vm.on('console', (port, data) => {
    if (port === 0) output += data.toString('latin1');
  });
  const exit = await vm.exited;
  expect(exit.outcome, output).toBe('poweroff');
  return output.split('\n').filter((line) => line.startsWith('hyve-guest: ')).map((line) => line.slice('hyve-guest: '.length));
}

test('malformed rings set NEEDS_RESET; a reset makes the device usable again', async () => {
  const lines = await runHostileGuest('virtio_hostile', { slot: 3, emulation: 'virtio-rnd' });
  expect(lines).toEqual([
    'first request ok',
    'descriptor loop: needs-reset isr-config recovered',
    'address outside RAM: needs-reset isr-config recovered',
    'length near 4 GiB: needs-reset isr-config recovered',
    'available index jump: needs-reset isr-config recovered',
    'queue size 3: needs-reset isr-config recovered',
    'used index jump: device kept its own index recovered',
    'virtio hostile done',
  ]);
}, 120_000);

/** A listener on `socketPath` that keeps its connections paused: the test reads only those it picks. */
async function pausedListener(socketPath: string): Promise<{ server: Server; connections: Socket[] }> {
  const connections: Socket[] = [];
  const server = createServer({ pauseOnConnect: true }, (socket) => connections.push(socket));
  await new Promise<void>((resolve) => server.listen(socketPath, resolve));
  return { server, connections };
}

/** Everything `socket` sends until it closes. */
function readAll(socket: Socket): Promise<string> {
  return new Promise((resolve) => {
    let got = '';
    socket.setEncoding('latin1');
    socket.on('data', (data: string) => (got += data));
    socket.on('close', () => resolve(got));
    socket.on('error', () => {});
    socket.resume();
  });
}

test('hostile vsock packets are answered with a reset or dropped; the VMM stays up and the next connection works', async () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'hyve-vsock-hostile-'));
  const socket = path.join(dir, 'vsock.sock');
  const first = await pausedListener(`${socket}_5000`);
  const again = await pausedListener(`${socket}_5001`);
  try {
    const lines = await runHostileGuest('vsock_hostile', { slot: 4, emulation: 'virtio-vsock', args: socket });
    expect(lines).toEqual([
      'connected',
      'length past the chain: rst',
      'unknown op: rst',
      'datagram: rst',
      'data past the credit: rst',
      'data for no connection: rst',
      'connected again, device ok',
      'vsock hostile done',
    ]);
    // Nothing was read while the VM ran (the connection sending past its credit found the
    // host reading none of it); now it has ended, each connection reads to its end.
    expect(first.connections).toHaveLength(5);  // 1000 to 1004: 1005 sent no request, 1006's were dropped
    expect(await readAll(first.connections[0]!)).toBe('hello from the guest\n');
    expect(again.connections).toHaveLength(1);
    expect(await readAll(again.connections[0]!)).toBe('still here\n');
  } finally {
    for (const listener of [first, again]) {
      for (const c of listener.connections) c.destroy();
      listener.server.close();
    }
    rmSync(dir, { recursive: true, force: true });
  }
}, 120_000);
