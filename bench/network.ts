/**
 * Network benchmark (virtio-net on user-mode networking): prints figures, asserts nothing.
 *
 * - guest → host TCP MiB/s: the guest pipes zeros through busybox nc to a host server on
 *   127.0.0.1 (the guest's 10.0.2.2), timed on the host from first to last byte;
 * - host → guest TCP MiB/s: the host sends to a forwarded port where the guest reads it
 *   all and answers, timed from connect to the answer;
 * - connect round trip through a forward: connect to the guest's first byte, median of 20.
 *
 * QEMU TCG with its user networking, side by side, is not measured yet.
 */
import { connect, createServer, type Socket } from 'node:net';
import { bootGuest, type Guest } from '../src/index.js';
import { hostIsPvm } from '../src/host.js';

const MIB = 2 ** 20;
const bytes = Number(process.env.HYVE_BENCH_NET_MIB ?? 16) * MIB;

async function guestToHost(guest: Guest): Promise<number> {
  let first = 0;
  let last = 0;
  let got = 0;
  const server = createServer();
  const done = new Promise<void>((resolve) => {
    server.on('connection', (socket: Socket) => {
      socket.on('data', (data: Buffer) => {
        if (got === 0) first = performance.now();
        got += data.length;
        last = performance.now();
        if (got >= bytes) {
          socket.destroy();
          resolve();
        }
      });
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as { port: number }).port;
  const run = guest.run(`dd if=/dev/zero bs=65536 count=${bytes / 65536} 2>/dev/null | nc 10.0.2.2 ${port}`, { timeoutMs: 1_800_000 });
  await done;
  await run.catch(() => undefined);
  server.close();
  return bytes / MIB / ((last - first) / 1000);
}

async function hostToGuest(guest: Guest, port: number): Promise<number> {
  const start = performance.now();
  await new Promise<void>((resolve, reject) => {
    const socket = connect(port, '127.0.0.1', () => socket.end(Buffer.alloc(bytes)));
    socket.on('data', () => {
      socket.destroy();
      resolve();
    });
    socket.on('error', reject);
  });
  return bytes / MIB / ((performance.now() - start) / 1000);
}

async function connectRtt(port: number): Promise<number> {
  const start = performance.now();
  await new Promise<void>((resolve, reject) => {
    const socket = connect(port, '127.0.0.1');
    socket.once('data', () => {
      socket.destroy();
      resolve();
    });
    socket.on('error', reject);
  });
  return performance.now() - start;
}

async function main(): Promise<void> {
  console.log(`hyve network benchmark (${hostIsPvm() ? 'PVM host: guest kernel mode is emulated' : 'hardware KVM'}), ${bytes / MIB} MiB per transfer`);
  const guest = await bootGuest({ memory: '256M', network: 'user', forwardPorts: [{ guest: 5001 }, { guest: 5002 }], timeoutMs: 1_800_000 });
  try {
    await guest.run(
      `printf '#!/bin/sh\\nhead -c ${bytes} >/dev/null\\necho done\\n' >/tmp/sink.sh && printf '#!/bin/sh\\necho hi\\n' >/tmp/hi.sh && chmod +x /tmp/sink.sh /tmp/hi.sh` +
        ' && (nc -ll -p 5001 -e /tmp/sink.sh >/dev/null 2>&1 &) && (nc -ll -p 5002 -e /tmp/hi.sh >/dev/null 2>&1 &)',
    );
    await new Promise((resolve) => setTimeout(resolve, 2000));
    console.log(`guest → host TCP: ${(await guestToHost(guest)).toFixed(1)} MiB/s`);
    console.log(`host → guest TCP: ${(await hostToGuest(guest, guest.hostPort(5001))).toFixed(1)} MiB/s`);
    const rtts: number[] = [];
    for (let i = 0; i < 20; i++) rtts.push(await connectRtt(guest.hostPort(5002)));
    rtts.sort((a, b) => a - b);
    console.log(`connect → first byte through a forward: median ${rtts[10]!.toFixed(1)} ms, min ${rtts[0]!.toFixed(1)} ms (20 runs)`);
  } finally {
    await guest.kill();
  }
}

main().catch((error: Error) => {
  console.error(`benchmark failed: ${error.message}`);
  process.exit(1);
});
