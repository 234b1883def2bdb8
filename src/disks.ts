/**
 * bootGuest()'s `disks`, `rng` and `vsock` options as the board's PCI functions (xhyve's
 * `-s`): virtio-rng at slot 3, disks from slot 4 on, in order (virtio disks are the guest's
 * /dev/vda, vdb, ...; each AHCI disk or CD is a controller of its own: /dev/sda, /dev/sr0),
 * virtio-vsock at slot 30, after the last disk slot.
 */
import { statSync } from 'node:fs';
import path from 'node:path';
import { VmStartError } from './vm-process.js';
import type { ChildConfig } from './protocol.js';

/**
 * How the guest sees a disk: a virtio-blk device (the default), an AHCI SATA disk
 * (xhyve's ahci-hd) or an AHCI ATAPI CD-ROM (xhyve's ahci-cd: read-only, 2048-byte
 * sectors) for kernels and installers without virtio drivers.
 */
export type DiskInterface = 'virtio' | 'ahci' | 'ahci-cd';

/** The PCI emulation (board.cc) of each interface. */
export const DISK_EMULATIONS: Record<DiskInterface, string> = { virtio: 'virtio-blk', ahci: 'ahci-hd', 'ahci-cd': 'ahci-cd' };

/** One disk of bootGuest({ disks }). */
export interface DiskOptions {
  /** A raw image file or a host block device. */
  path: string;
  /** 'virtio' (default), 'ahci' (a SATA disk) or 'ahci-cd' (a CD-ROM, always read-only). */
  interface?: DiskInterface;
  /** The guest sees a read-only disk (VIRTIO_BLK_F_RO; for AHCI, writes are aborted); its writes fail. Default false. */
  readOnly?: boolean;
  /**
   * The guest may write, but the file never changes: it writes to a private copy (a
   * reflink where the filesystem can, a sparse copy otherwise) in an unnamed temporary
   * file the kernel frees when the VM process ends, even on SIGKILL. Default false.
   */
  ephemeral?: boolean;
  /** The disk's serial number (virtio GET_ID: /sys/block/vdX/serial; AHCI: IDENTIFY DEVICE), at most 20 bytes. */
  serial?: string;
}

/**
 * A disk's arguments after its emulation in `-s N,EMULATION,ARGS`: `path[,ro][,ephemeral][,serial=ID]`,
 * the spelling the VMM parses (native/vmm/board.cc) and the CLI takes.
 */
export function diskConf(file: string, disk: Pick<DiskOptions, 'readOnly' | 'ephemeral' | 'serial'>): string {
  return [file, disk.readOnly && 'ro', disk.ephemeral && 'ephemeral', disk.serial && `serial=${disk.serial}`].filter(Boolean).join(',');
}

/** diskConf()'s inverse: the file and the options (the VMM refuses unknown ones). */
export function parseDiskConf(conf: string): { file: string } & Pick<DiskOptions, 'readOnly' | 'ephemeral' | 'serial'> {
  const [file = '', ...options] = conf.split(',');
  const serial = options.find((o) => o.startsWith('serial='))?.slice('serial='.length);
  return {
    file,
    ...(options.includes('ro') ? { readOnly: true } : {}),
    ...(options.includes('ephemeral') ? { ephemeral: true } : {}),
    ...(serial ? { serial } : {}),
  };
}

/** Slot of the virtio-console function (console: 'virtio', ports). */
export const CONSOLE_SLOT = 1;
/** Slot of the virtio-rng function and of the first disk. */
export const RNG_SLOT = 3;
export const FIRST_DISK_SLOT = 4;
/** Slots 4-29: vsock holds 30 and the LPC bridge 31. */
export const MAX_DISKS = 26;
/** Slot of the virtio-vsock function (vsock: true): a fixed slot, so a restored copy's socket argument finds it. */
export const VSOCK_SLOT = 30;

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

/** virtio-console's `[console][,name=socket...]` arguments: port 0 as the guest console, named ports on UNIX sockets. */
export interface ConsoleDevice {
  console: boolean;
  ports: { name: string; socket: string }[];
}

/**
 * The PCI functions for `disks`, `rng`, a NIC, a virtio-console and a vsock device
 * listening on `vsockSocket`, with the host bridge and LPC bridge around them; none
 * without any of them.
 */
export function pciDevicesFor(
  disks: readonly DiskOptions[] | undefined,
  rng: boolean | undefined,
  nic?: NonNullable<ChildConfig['pciDevices']>[number],
  console?: ConsoleDevice,
  vsockSocket?: string,
): ChildConfig['pciDevices'] {
  if (!disks?.length && !rng && !nic && !console && !vsockSocket) return undefined;
  if ((disks?.length ?? 0) > MAX_DISKS) throw new VmStartError(`at most ${MAX_DISKS} disks, got ${disks!.length}`, 'HYVE_BAD_CONFIG');
  const devices: NonNullable<ChildConfig['pciDevices']> = [{ slot: 0, function: 0, emulation: 'hostbridge' }];
  if (console) devices.push(consoleFunction(console));
  if (nic) devices.push(nic);
  if (rng) devices.push({ slot: RNG_SLOT, function: 0, emulation: 'virtio-rnd' });
  (disks ?? []).forEach((disk, i) => {
    const serial = disk.serial ?? '';
    if (Buffer.byteLength(serial) > 20 || /[,\0]/.test(serial)) {
      throw new VmStartError(`disk ${disk.path}: serial must be at most 20 bytes without commas, got ${JSON.stringify(serial)}`, 'HYVE_BAD_CONFIG');
    }
    const args = diskConf(checkDiskPath(disk.path), { ...disk, serial });
    devices.push({ slot: FIRST_DISK_SLOT + i, function: 0, emulation: DISK_EMULATIONS[disk.interface ?? 'virtio'], args });
  });
  if (vsockSocket) devices.push(vsockDevice(vsockSocket));
  devices.push({ slot: 31, function: 0, emulation: 'lpc' });
  return devices;
}

/** A virtio-console function (at bootGuest's slot unless given) with `console`'s port 0 role and named ports. */
export function consoleFunction(console: ConsoleDevice, slot = CONSOLE_SLOT, fn = 0): NonNullable<ChildConfig['pciDevices']>[number] {
  const args = [console.console && 'console', ...console.ports.map((p) => `${p.name}=${p.socket}`)].filter(Boolean).join(',');
  return { slot, function: fn, emulation: 'virtio-console', args };
}

/** The virtio-vsock function of bootGuest({ vsock }), listening on `socketPath`. */
export function vsockDevice(socketPath: string): NonNullable<ChildConfig['pciDevices']>[number] {
  return { slot: VSOCK_SLOT, function: 0, emulation: 'virtio-vsock', args: socketPath };
}
