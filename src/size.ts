/** Memory sizes as xhyve and users write them: '512M', '2G', '1048576K', or a number of MiB. */

const units: Record<string, number> = { '': 1, B: 1, K: 1024, M: 1024 ** 2, G: 1024 ** 3, T: 1024 ** 4 };

/** Parses a size to bytes. A bare number means MiB (as in bootGuest's `memory: 512`). */
export function parseSize(value: string | number, bareUnit: 'M' | 'B' = 'M'): number {
  if (typeof value === 'number') {
    if (!Number.isFinite(value) || value <= 0) throw new RangeError(`invalid size ${value}: expected a positive number`);
    return Math.round(value * units[bareUnit]!);
  }
  const match = /^\s*(\d+(?:\.\d+)?)\s*([KMGT]?)(?:i?B)?\s*$/i.exec(value);
  if (!match) throw new RangeError(`invalid size '${value}': expected e.g. 512M, 2G or 1048576K`);
  const unit = match[2] ? match[2].toUpperCase() : bareUnit;
  const bytes = Number(match[1]) * units[unit]!;
  if (bytes <= 0) throw new RangeError(`invalid size '${value}': must be positive`);
  return Math.round(bytes);
}

/** Parses a guest memory size and returns whole MiB (guest RAM is sized in 2 MiB steps). */
export function parseMemoryMiB(value: string | number): number {
  const bytes = parseSize(value);
  const mib = bytes / 1024 ** 2;
  if (!Number.isInteger(mib) || mib % 2 !== 0) {
    throw new RangeError(`guest memory must be a multiple of 2 MiB, got ${value}`);
  }
  return mib;
}
