/** Reading SMBIOS tables in tests, independently of hyve's C++ builder. */

export interface SmbiosStructure {
  type: number;
  length: number;
  handle: number;
  /** The formatted area, header included. */
  formatted: Buffer;
  strings: string[];
  /** Bytes of the whole structure (formatted area and string set). */
  size: number;
}

/** Walks a structure table; throws at the first malformed structure. */
export function parseStructures(table: Buffer): SmbiosStructure[] {
  const structures: SmbiosStructure[] = [];
  let at = 0;
  while (at < table.length) {
    if (at + 4 > table.length) throw new Error(`structure header at ${at} runs past the table`);
    const type = table[at]!;
    const length = table[at + 1]!;
    if (length < 4 || at + length > table.length) throw new Error(`type ${type} at ${at}: bad length ${length}`);
    const formatted = table.subarray(at, at + length);
    const strings: string[] = [];
    let p = at + length;
    if (table[p] === 0 && table[p + 1] === 0) {
      p += 2; // no strings
    } else {
      for (;;) {
        const end = table.indexOf(0, p);
        if (end < 0) throw new Error(`type ${type} at ${at}: unterminated string set`);
        if (end === p) throw new Error(`type ${type} at ${at}: empty string in the string set`);
        strings.push(table.subarray(p, end).toString('latin1'));
        p = end + 1;
        if (table[p] === 0) {
          p += 1;
          break;
        }
      }
    }
    structures.push({ type, length, handle: formatted.readUInt16LE(2), formatted, strings, size: p - at });
    at = p;
    if (type === 127) break;
  }
  if (at !== table.length) throw new Error(`the table has ${table.length - at} bytes after the end-of-table structure`);
  return structures;
}

/** The string a formatted-area byte refers to ('' for string 0). */
export function stringAt(s: SmbiosStructure, offset: number): string {
  const n = s.formatted[offset]!;
  if (n === 0) return '';
  const text = s.strings[n - 1];
  if (text === undefined) throw new Error(`type ${s.type}: string ${n} at 0x${offset.toString(16)} does not exist`);
  return text;
}

/** The system UUID of type 1, decoded from SMBIOS byte order (first three fields little-endian). */
export function systemUuid(s: SmbiosStructure): string {
  const b = s.formatted.subarray(8, 24);
  const hex = (bytes: Iterable<number>) => [...bytes].map((x) => x.toString(16).padStart(2, '0')).join('');
  return [
    hex([b[3]!, b[2]!, b[1]!, b[0]!]),
    hex([b[5]!, b[4]!]),
    hex([b[7]!, b[6]!]),
    hex(b.subarray(8, 10)),
    hex(b.subarray(10, 16)),
  ].join('-');
}

/** Guest RAM a type 19 structure maps, as [start, end) in bytes. */
export function mappedRange(s: SmbiosStructure): [bigint, bigint] {
  const startKiB = s.formatted.readUInt32LE(4);
  const endKiB = s.formatted.readUInt32LE(8);
  if (startKiB === 0xffffffff) return [s.formatted.readBigUInt64LE(0x0f), s.formatted.readBigUInt64LE(0x17) + 1n];
  return [BigInt(startKiB) * 1024n, (BigInt(endKiB) + 1n) * 1024n];
}

/** Sum of bytes mod 256. */
export function byteSum(bytes: Uint8Array): number {
  return bytes.reduce((sum, b) => (sum + b) & 0xff, 0);
}
