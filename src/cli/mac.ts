/**
 * MAC addresses of network devices, stable for a given VM UUID.
 *
 * xhyve gets a virtio-net MAC from macOS's vmnet (keyed by the -U UUID); bhyve and
 * hyperkit's tap backend hash the slot and VM name with MD5 under a fixed OUI. hyve has no
 * vmnet, so it derives the address itself, from the UUID and the device's PCI address:
 *
 *   md5("<uuid, lower case>/<bus>:<slot>.<func>")  -> first 6 bytes
 *   byte 0: bit 1 set (locally administered), bit 0 cleared (unicast)
 *
 * The same -U and -s give the same MAC on every run and host; different slots differ.
 * `mac=xx:xx:xx:xx:xx:xx` in the device's conf overrides it, as in bhyve.
 */
import { createHash } from 'node:crypto';
import type { PciSlot } from './args.js';
import { UsageError } from './args.js';

export function deriveMac(uuid: string, where: Pick<PciSlot, 'bus' | 'slot' | 'func'>): string {
  const digest = createHash('md5').update(`${uuid.toLowerCase()}/${where.bus}:${where.slot}.${where.func}`).digest();
  const bytes = [...digest.subarray(0, 6)];
  bytes[0] = (bytes[0]! & 0xfc) | 0x02;
  return bytes.map((b) => b.toString(16).padStart(2, '0')).join(':');
}

const MAC_RE = /^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/i;

/** The MAC of a network slot: its `mac=` conf if given, else derived from the UUID. */
export function slotMac(uuid: string, device: PciSlot): string {
  const given = device.conf
    ?.split(',')
    .find((c) => c.startsWith('mac='))
    ?.slice(4);
  if (given === undefined) return deriveMac(uuid, device);
  if (!MAC_RE.test(given)) throw new UsageError(`invalid mac= '${given}' in -s ${device.text}: expected xx:xx:xx:xx:xx:xx`);
  const first = parseInt(given.slice(0, 2), 16);
  if (first & 1) throw new UsageError(`invalid mac= '${given}' in -s ${device.text}: a multicast address`);
  return given.toLowerCase();
}
