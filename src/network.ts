/**
 * bootGuest()'s `network` and `forwardPorts` options as the board's virtio-net function
 * (xhyve's `-s 2,virtio-net`): the user-mode backend (libslirp in the VMM, rootless) with
 * host ports on 127.0.0.1 forwarded to guest ports, or a tap device.
 */
import { createServer, type Server } from 'node:net';
import { deriveMac } from './cli/mac.js';
import { VmStartError } from './vm-process.js';

/** The guest's network: `'user'` (rootless NAT, DHCP, forwards) or a host tap device. */
export type NetworkOption = 'user' | { tap: string };

/** One forward of bootGuest({ forwardPorts }): a host port on 127.0.0.1 to a guest port. */
export interface PortForward {
  /** The guest's TCP port. */
  guest: number;
  /** The host port on 127.0.0.1; 0 or omitted: a free one (guest.hostPort() tells which). */
  host?: number;
}

/** A forward with its host port chosen. */
export interface ResolvedForward {
  guest: number;
  host: number;
}

/** Slot of the virtio-net function (virtio-rng is at 3, disks from 4). */
export const NET_SLOT = 2;

/** The user network the guest sees (libslirp's, as QEMU's): its DNS server and gateway. */
export const USER_NET = { gateway: '10.0.2.2', dns: '10.0.2.3', guest: '10.0.2.15' } as const;

const TAP_NAME_RE = /^[A-Za-z0-9_.-]{1,15}$/;

/** Checks the options together (types are the validator's business). */
export function checkNetworkOptions(network: NetworkOption | undefined, forwards: readonly PortForward[] | undefined): void {
  if (forwards?.length && network !== 'user') {
    throw new VmStartError("forwardPorts needs network: 'user' (a tap device is reached at the guest's own address)", 'HYVE_BAD_CONFIG');
  }
  if (typeof network === 'object' && !TAP_NAME_RE.test(network.tap)) {
    throw new VmStartError(`network.tap: '${network.tap}' is not an interface name (1-15 of A-Z a-z 0-9 _ . -)`, 'HYVE_BAD_CONFIG');
  }
  const seen = new Set<number>();
  for (const f of forwards ?? []) {
    if (seen.has(f.guest)) throw new VmStartError(`forwardPorts: guest port ${f.guest} is forwarded twice`, 'HYVE_BAD_CONFIG');
    seen.add(f.guest);
  }
}

/** Picks a free host port for each forward without one (held open until all are picked, so they differ). */
export async function resolveForwards(forwards: readonly PortForward[] | undefined): Promise<ResolvedForward[]> {
  const servers: Server[] = [];
  try {
    const resolved: ResolvedForward[] = [];
    for (const f of forwards ?? []) {
      if (f.host) {
        resolved.push({ guest: f.guest, host: f.host });
        continue;
      }
      const server = createServer();
      servers.push(server);
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen(0, '127.0.0.1', resolve);
      });
      resolved.push({ guest: f.guest, host: (server.address() as { port: number }).port });
    }
    return resolved;
  } finally {
    await Promise.all(servers.map((s) => new Promise((resolve) => s.close(resolve))));
  }
}

/** The virtio-net function for the VMM (`-s 2,virtio-net,fwd=...` or `-s 2,virtio-net,tapX`). */
export function netDevice(
  network: NetworkOption,
  forwards: readonly ResolvedForward[],
  uuid?: string,
): { slot: number; function: number; emulation: string; args: string } {
  // With a UUID the MAC is the one `hyve -U uuid -s 2,virtio-net -M` prints; else the VMM picks a random one.
  const mac = uuid === undefined ? [] : [`mac=${deriveMac(uuid, { bus: 0, slot: NET_SLOT, func: 0 })}`];
  if (network === 'user') {
    return { slot: NET_SLOT, function: 0, emulation: 'virtio-net', args: [...mac, ...forwards.map((f) => `fwd=tcp:${f.host}:${f.guest}`)].join(',') };
  }
  // bhyve's spelling virtio-net,tapX: the snapshot section is virtio-net either way, so a
  // snapshot restores onto either backend.
  return { slot: NET_SLOT, function: 0, emulation: 'virtio-net', args: [network.tap, ...mac].join(',') };
}
