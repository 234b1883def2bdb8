/**
 * Guest symbols for the profiler: function addresses from an ELF file's symbol table (a
 * vmlinux, a bespoke guest) or from a System.map. Resolving an address gives the name of
 * the function that contains it.
 */
import { readFileSync } from 'node:fs';

export interface SymbolTable {
  /** The function containing `address`, or undefined. */
  resolve(address: bigint): string | undefined;
  readonly size: number;
}

interface Sym {
  address: bigint;
  size: bigint; // 0n: unknown (System.map, assembler labels)
  name: string;
}

const STT_NOTYPE = 0;
const STT_FUNC = 2;
const SHT_SYMTAB = 2;
// A symbol of unknown size covers addresses up to the next symbol, but never further than this.
const MAX_UNSIZED_SPAN = 1n << 20n;

/** Reads the symbols of an ELF64 file or a System.map (`address type name` lines). */
export function loadSymbols(file: string): SymbolTable {
  const data = readFileSync(file);
  const syms = data.subarray(0, 4).equals(Buffer.from([0x7f, 0x45, 0x4c, 0x46])) ? elfSymbols(data, file) : systemMap(data.toString('utf8'));
  return makeTable(syms);
}

function elfSymbols(data: Buffer, file: string): Sym[] {
  if (data[4] !== 2 || data[5] !== 1) throw new Error(`${file}: only little-endian ELF64 symbol tables are read`);
  const shoff = Number(data.readBigUInt64LE(0x28));
  const shentsize = data.readUInt16LE(0x3a);
  const shnum = data.readUInt16LE(0x3c);
  const section = (i: number) => {
    const at = shoff + i * shentsize;
    if (at + 64 > data.length) throw new Error(`${file}: section header ${i} is outside the file`);
    return {
      type: data.readUInt32LE(at + 4),
      offset: Number(data.readBigUInt64LE(at + 0x18)),
      size: Number(data.readBigUInt64LE(at + 0x20)),
      link: data.readUInt32LE(at + 0x28),
      entsize: Number(data.readBigUInt64LE(at + 0x38)),
    };
  };
  const out: Sym[] = [];
  for (let i = 0; i < shnum; i++) {
    const symtab = section(i);
    if (symtab.type !== SHT_SYMTAB) continue;
    const strtab = section(symtab.link);
    const entsize = symtab.entsize || 24;
    const end = Math.min(symtab.offset + symtab.size, data.length);
    for (let at = symtab.offset; at + 24 <= end; at += entsize) {
      const type = data[at + 4]! & 0xf;
      const shndx = data.readUInt16LE(at + 6);
      if ((type !== STT_FUNC && type !== STT_NOTYPE) || shndx === 0 || shndx >= 0xff00) continue;
      const address = data.readBigUInt64LE(at + 8);
      if (address === 0n) continue;
      const nameAt = strtab.offset + data.readUInt32LE(at);
      const nameEnd = data.indexOf(0, nameAt);
      if (nameAt >= data.length || nameEnd < 0) continue;
      const name = data.toString('utf8', nameAt, nameEnd);
      if (name === '' || name.startsWith('.L') || name.startsWith('$')) continue;
      out.push({ address, size: type === STT_FUNC ? data.readBigUInt64LE(at + 16) : 0n, name });
    }
  }
  return out;
}

function systemMap(text: string): Sym[] {
  const out: Sym[] = [];
  for (const line of text.split('\n')) {
    const m = /^([0-9a-fA-F]+)\s+([TtWw])\s+(\S+)/.exec(line);
    if (m) out.push({ address: BigInt(`0x${m[1]}`), size: 0n, name: m[3]! });
  }
  return out;
}

function makeTable(syms: Sym[]): SymbolTable {
  // By address; at one address a sized function wins over a label.
  syms.sort((a, b) => (a.address < b.address ? -1 : a.address > b.address ? 1 : Number(b.size - a.size)));
  const unique = syms.filter((s, i) => i === 0 || s.address !== syms[i - 1]!.address);
  return {
    size: unique.length,
    resolve(address: bigint): string | undefined {
      let lo = 0;
      let hi = unique.length - 1;
      let found = -1;
      while (lo <= hi) {
        const mid = (lo + hi) >> 1;
        if (unique[mid]!.address <= address) {
          found = mid;
          lo = mid + 1;
        } else hi = mid - 1;
      }
      if (found < 0) return undefined;
      const sym = unique[found]!;
      const span = sym.size > 0n ? sym.size : MAX_UNSIZED_SPAN;
      return address - sym.address < span ? sym.name : undefined;
    },
  };
}
