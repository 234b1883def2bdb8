/** Memory sizes as xhyve and users write them: '512M', '2G', '1048576K', or a number of MiB. */
import { VmStartError } from './vm-process.js';

const units: Record<string, number> = { '': 1, B: 1, K: 1024, M: 1024 ** 2, G: 1024 ** 3, T: 1024 ** 4 };

/** Guest RAM when no size is given: bootGuest(), startVm() and the CLI's -m alike. */
export const DEFAULT_MEMORY_MIB = 256;

function badSize(message: string): VmStartError {
  return new VmStartError(message, 'HYVE_BAD_CONFIG');
}

/**
 * Parses a size to bytes. A number, or a string without a unit, is in `bareUnit`
 * (MiB by default, as in bootGuest's `memory: 512`). Bad input: VmStartError HYVE_BAD_CONFIG.
 */
export function parseSize(value: string | number, bareUnit: 'M' | 'B' = 'M'): number {
  if (typeof value === 'number') {
    if (!Number.isFinite(value) || value <= 0) throw badSize(`invalid size ${value}: expected a positive number`);
    return Math.round(value * units[bareUnit]!);
  }
  if (typeof value !== 'string') throw badSize(`invalid size ${String(value)}: expected a string such as '512M' or a number`);
  const match = /^\s*(\d+(?:\.\d+)?)\s*([KMGT]?)(?:i?B)?\s*$/i.exec(value);
  if (!match) throw badSize(`invalid size '${value}': expected e.g. 512M, 2G or 1048576K`);
  const unit = match[2] ? match[2].toUpperCase() : bareUnit;
  const bytes = Number(match[1]) * units[unit]!;
  if (bytes <= 0) throw badSize(`invalid size '${value}': must be positive`);
  return Math.round(bytes);
}

/**
 * Parses a guest memory size and returns whole MiB (guest RAM is sized in 2 MiB steps).
 * A number is MiB. A string without a unit follows xhyve's -m rule, so it means the same
 * in bootGuest() as on the command line: below 1048576 it is MiB ('512'), from there on
 * bytes ('2147483648' is 2 GiB; '1048576' is 1 MiB, and refused as not a multiple of 2 MiB).
 */
export function parseMemoryMiB(value: string | number): number {
  let bytes = parseSize(value);
  if (typeof value === 'string' && /^\s*\d+\s*$/.test(value) && Number(value) >= 2 ** 20) bytes = Number(value);
  const mib = bytes / 1024 ** 2;
  if (!Number.isInteger(mib) || mib % 2 !== 0) {
    throw badSize(`guest memory must be a multiple of 2 MiB, got ${JSON.stringify(value)}`);
  }
  if (mib > 2 ** 24) throw badSize(`guest memory must be at most 16 TiB, got ${JSON.stringify(value)}`);
  return mib;
}
