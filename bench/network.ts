/**
 * Network figures (issue 10) on a booted guest with a NIC, the same code for every backend:
 * guest → host and host → guest TCP MiB/s and the TCP connect round trip (connect to the
 * first byte of the guest's answer). benchio is both ends: in the guest (/opt/benchio)
 * and on the host, where it runs in the host's namespace (user networking: the guest
 * reaches the host's 127.0.0.1 as 10.0.2.2, the host the guest through forwards) or in
 * a namespace the benchmark made (tap). Traffic goes only to loopback or into that namespace.
 */
import { execFileSync, spawn } from 'node:child_process';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Guest } from '../src/index.js';
import { resolveForwards } from '../src/network.js';
import { benchio, benchioOnHost, note, parseBenchio, repeat, sh, type Column, type Results } from './lib.js';

const MIB = 2 ** 20;
export const SINK_PORT = 5001;
export const HELLO_PORT = 5002;

/** How the host reaches the guest and the guest the host, for one backend. */
export interface NetPath {
  /** Backend name for the figures, e.g. 'user' or 'tap'. */
  backend: string;
  /** Where the host's benchio connects to reach guest port `port`. */
  guestAddress(port: number): { host: string; port: number };
  /** The host's address as the guest sees it, and the one the host's server binds. */
  hostAddress: { fromGuest: string; bind: string };
  /** Prefix for host-side commands (`ip netns exec NS`), if any. */
  prefix: string[];
  /** Why connections from the host to the guest are not measured on this path, if they are not. */
  noInbound?: string;
}

/** User-mode networking (hyve's libslirp, QEMU's own): forwards on 127.0.0.1. */
export function userPath(guest: Guest): NetPath {
  return {
    backend: 'user',
    guestAddress: (port) => ({ host: '127.0.0.1', port: guest.hostPort(port) }),
    hostAddress: { fromGuest: '10.0.2.2', bind: '127.0.0.1' },
    prefix: [],
  };
}

/**
 * passt (under QEMU): the guest has the host's own address by DHCP and reaches the host's
 * loopback through its gateway's address, which passt maps to 127.0.0.1. Inbound is left
 * out: with Debian 12's passt (0.0~git20230309) and QEMU 7.2 a connection to a forward
 * never completes (the guest's SYN-ACKs go unanswered), whether the forward binds 127.0.0.1
 * or every address.
 */
export async function passtPath(guest: Guest): Promise<NetPath> {
  const gateway = (await sh(guest, "ip route | awk '/^default/ { print $3 }'")).trim();
  if (!/^\d+\.\d+\.\d+\.\d+$/.test(gateway)) throw new Error(`the guest got no default route from passt (ip route: ${JSON.stringify(gateway)})`);
  return {
    ...userPath(guest),
    backend: 'passt',
    hostAddress: { fromGuest: gateway, bind: '127.0.0.1' },
    noInbound: 'forwards never complete with Debian 12\'s passt under QEMU 7.2',
  };
}

/** A free TCP port on the host (resolveForwards picks one for a forward the same way). */
async function freePort(): Promise<number> {
  return (await resolveForwards([{ guest: 1 }]))[0]!.host;
}

/** Starts the guest's servers and waits until the host gets an answer through `net`. */
export async function startGuestServers(guest: Guest, net: NetPath): Promise<void> {
  await sh(guest, `(/opt/benchio sink 0.0.0.0 ${SINK_PORT} >/dev/null 2>&1 &); (/opt/benchio hello 0.0.0.0 ${HELLO_PORT} >/dev/null 2>&1 &)`);
  const hello = net.guestAddress(HELLO_PORT);
  for (let attempt = 0; ; attempt++) {
    try {
      await benchioOnHost(['connect', hello.host, String(hello.port), '1'], net.prefix);
      return;
    } catch (error) {
      if (attempt >= 120) throw new Error(`the guest's benchio servers never answered through ${net.backend}: ${(error as Error).message}`);
      await sleep(1000);
    }
  }
}

export interface NetParams {
  runs: number;
  bytes: number;
  connects: number;
}

/** The three figures through `net`; the guest's servers must be running (startGuestServers). */
export async function measureNetwork(guest: Guest, net: NetPath, column: Column, results: Results, p: NetParams): Promise<void> {
  const mibps = (r: { bytes: number; seconds: number }) => r.bytes / MIB / r.seconds;
  const size = `${p.bytes >= MIB ? `${p.bytes / MIB} MiB` : `${p.bytes >> 10} KiB`}`;
  const toHost = await repeat(p.runs, async () => {
    const port = await freePort();
    // The host's sink times from the first byte to the end of the stream.
    const [command, ...args] = [...net.prefix, benchio(), 'sink', net.hostAddress.bind, String(port), 'once'];
    const sink = spawn(command!, args, { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    sink.stdout.on('data', (d: Buffer) => (out += d.toString()));
    const ended = new Promise<void>((resolve) => sink.on('close', () => resolve()));
    try {
      await sleep(300); // listening
      await sh(guest, `/opt/benchio send ${net.hostAddress.fromGuest} ${port} ${p.bytes}`);
      await ended;
      return mibps(parseBenchio(out));
    } finally {
      sink.kill('SIGKILL');
    }
  });
  results.add(column, `${net.backend}: guest → host TCP (${size})`, 'MiB/s', true, toHost);
  if (net.noInbound) {
    note(`${net.backend}: host → guest not measured: ${net.noInbound}`);
    return;
  }
  const sinkAt = net.guestAddress(SINK_PORT);
  const toGuest = await repeat(p.runs, async () => mibps(await benchioOnHost(['send', sinkAt.host, String(sinkAt.port), String(p.bytes)], net.prefix)));
  results.add(column, `${net.backend}: host → guest TCP (${size})`, 'MiB/s', true, toGuest);
  const helloAt = net.guestAddress(HELLO_PORT);
  const connect = await repeat(p.runs, async () => (await benchioOnHost(['connect', helloAt.host, String(helloAt.port), String(p.connects)], net.prefix)).seconds * 1000);
  results.add(column, `${net.backend}: TCP connect → first byte (median of ${p.connects})`, 'ms', false, connect);
}

/**
 * A tap device in a network namespace made here (root only), removed by `dispose`. The VMM
 * opens the tap in the host's namespace; `attach` then moves it into the namespace and
 * gives both ends addresses (host 10.203.0.1, guest 10.203.0.2).
 */
export function makeTapNamespace(): { tap: string; net: NetPath; attach(guest: Guest): Promise<void>; dispose(): void } {
  const ns = `hyve-bench-${process.pid}`;
  const tap = `hyvebt${process.pid % 100000}`;
  const ip = (...args: string[]) => execFileSync('ip', args, { stdio: ['ignore', 'pipe', 'pipe'], encoding: 'utf8' });
  const prefix = ['ip', 'netns', 'exec', ns];
  ip('netns', 'add', ns);
  ip('tuntap', 'add', 'dev', tap, 'mode', 'tap');
  return {
    tap,
    net: {
      backend: 'tap',
      guestAddress: (port) => ({ host: '10.203.0.2', port }),
      hostAddress: { fromGuest: '10.203.0.1', bind: '10.203.0.1' },
      prefix,
    },
    async attach(guest) {
      // The tap takes the MTU the guest's NIC has on this backend.
      const mtu = (await sh(guest, 'cat /sys/class/net/eth0/mtu')).trim();
      ip('link', 'set', tap, 'mtu', mtu);
      ip('link', 'set', tap, 'netns', ns);
      ip('netns', 'exec', ns, 'ip', 'addr', 'add', '10.203.0.1/24', 'dev', tap);
      ip('netns', 'exec', ns, 'ip', 'link', 'set', tap, 'up');
      ip('netns', 'exec', ns, 'ip', 'link', 'set', 'lo', 'up');
      await sh(guest, 'ip addr flush dev eth0 && ip addr add 10.203.0.2/24 dev eth0 && ip link set eth0 up');
    },
    dispose() {
      for (const command of [['netns', 'exec', ns, 'ip', 'link', 'del', tap], ['link', 'del', tap], ['netns', 'del', ns]]) {
        try {
          ip(...command);
        } catch {
          // already gone
        }
      }
    },
  };
}
