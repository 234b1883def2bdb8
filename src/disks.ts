/**
 * bootGuest()'s `disks`, `rng` and `vsock` options as the board's PCI functions (xhyve's
 * `-s`): virtio-vsock at slot 2, virtio-rng at slot 3, disks from slot 4 on, in order (the
 * guest's /dev/vda, vdb, ...).
 */
import { statSync } from 'node:fs';
import path from 'node:path';
import { VmStartError } from './vm-process.js';
import type { ChildConfig } from './protocol.js';
import { VSOCK_SLOT } from './vsock.js';

/** One disk of bootGuest({ disks }). */
export interface DiskOptions {
  /** A raw image file or a host block device. */
  path: string;
  /** The guest sees a read-only disk (VIRTIO_BLK_F_RO); its writes fail. Default false. */
  readOnly?: boolean;
  /**
   * The guest may write, but the file never changes: it writes to a private copy (a
   * reflink where the filesystem can, a sparse copy otherwise) in an unnamed temporary
   * file the kernel frees when the VM process ends, even on SIGKILL. Default false.
   */
  ephemeral?: boolean;
  /** What the guest reads from /sys/block/vdX/serial (virtio GET_ID), at most 20 bytes. */
  serial?: string;
}

/** Slot of the virtio-rng function and of the first disk. */
export const RNG_SLOT = 3;
export const FIRST_DISK_SLOT = 4;
/** Slots 4-30: the LPC bridge holds 31. */
export const MAX_DISKS = 27;

/**
 * Checks a disk path without opening it (a FIFO would block an open): it must exist and be
 * a regular file or a block device. Throws VmStartError HYVE_BAD_DISK naming the path.
 */
export function checkDiskPath(file: string): string {
  const resolved = path.resolve(file);
  let kind;
  try {
    kind = statSync(resolved);
  } catch (error) {
    throw new VmStartError(`disk ${resolved}: ${(error as NodeJS.ErrnoException).code === 'ENOENT' ? 'does not exist' : (error as Error).message}`, 'HYVE_BAD_DISK');
  }
  if (!kind.isFile() && !kind.isBlockDevice()) throw new VmStartError(`disk ${resolved}: is not a regular file or a block device`, 'HYVE_BAD_DISK');
  if (resolved.includes(',')) throw new VmStartError(`disk ${resolved}: a path with a comma cannot be passed to the VMM`, 'HYVE_BAD_DISK');
  return resolved;
}

/**
 * The PCI functions for `disks`, `rng` and a vsock device listening on `vsockSocket`, with
 * the host bridge and LPC bridge around them; none without any.
 */
export function pciDevicesFor(disks: readonly DiskOptions[] | undefined, rng: boolean | undefined, vsockSocket?: string): ChildConfig['pciDevices'] {
  if (!disks?.length && !rng && !vsockSocket) return undefined;
  if ((disks?.length ?? 0) > MAX_DISKS) throw new VmStartError(`at most ${MAX_DISKS} disks, got ${disks!.length}`, 'HYVE_BAD_CONFIG');
  const devices: NonNullable<ChildConfig['pciDevices']> = [{ slot: 0, function: 0, emulation: 'hostbridge' }];
  if (vsockSocket) devices.push(vsockDevice(vsockSocket));
  if (rng) devices.push({ slot: RNG_SLOT, function: 0, emulation: 'virtio-rnd' });
  (disks ?? []).forEach((disk, i) => {
    const serial = disk.serial ?? '';
    if (Buffer.byteLength(serial) > 20 || /[,\0]/.test(serial)) {
      throw new VmStartError(`disk ${disk.path}: serial must be at most 20 bytes without commas, got ${JSON.stringify(serial)}`, 'HYVE_BAD_CONFIG');
    }
    const args = [checkDiskPath(disk.path), disk.readOnly && 'ro', disk.ephemeral && 'ephemeral', serial && `serial=${serial}`].filter(Boolean).join(',');
    devices.push({ slot: FIRST_DISK_SLOT + i, function: 0, emulation: 'virtio-blk', args });
  });
  devices.push({ slot: 31, function: 0, emulation: 'lpc' });
  return devices;
}

/** The virtio-vsock function of bootGuest({ vsock }), listening on `socketPath`. */
export function vsockDevice(socketPath: string): NonNullable<ChildConfig['pciDevices']>[number] {
  return { slot: VSOCK_SLOT, function: 0, emulation: 'virtio-vsock', args: socketPath };
}
