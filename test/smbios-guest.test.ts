/**
 * The VM's identity as a booted Linux guest sees it: /sys/class/dmi/id and the raw SMBIOS
 * tables the kernel found, in one boot with a given UUID. (UUIDs derived from test names
 * are checked on a bespoke guest in smbios.test.ts, which boots in milliseconds.)
 */
import { expect, test } from 'vitest';
import { bootGuest, type Guest } from 'hyve';
import { loadAddon } from '../dist/src/native.js';
import { mappedRange, parseStructures, systemUuid } from './helpers/smbios.js';

const BOOT_MS = 1_000_000; // a loaded 2-core PVM host has taken over 5 minutes for a boot
const GIVEN = 'C0FFEE00-1234-4ABC-8DEF-0123456789AB'; // upper case: the guest shows it lower case
const MEMORY_MIB = 256;

async function read(guest: Guest, command: string): Promise<string> {
  const { output, exitCode } = await guest.run(command);
  expect(exitCode, `${command}: ${output}`).toBe(0);
  return output.trim();
}

/** A sysfs binary file's bytes, via od (hex text survives the console). */
async function readBinary(guest: Guest, file: string): Promise<Buffer> {
  return Buffer.from((await read(guest, `od -An -tx1 -v ${file}`)).replace(/\s+/g, ''), 'hex');
}

test(
  "the default guest finds hyve's SMBIOS: the given UUID, hyve as vendor and product, its memory in type 19",
  async () => {
    const guest = await bootGuest({ uuid: GIVEN, memory: MEMORY_MIB, timeoutMs: 900_000 });
    try {
      expect(await read(guest, 'cat /sys/class/dmi/id/product_uuid')).toBe(GIVEN.toLowerCase());
      expect(await read(guest, 'cat /sys/class/dmi/id/sys_vendor')).toBe('hyve');
      expect(await read(guest, 'cat /sys/class/dmi/id/product_name')).toBe('hyve virtual machine');
      expect(await read(guest, 'cat /sys/class/dmi/id/bios_vendor')).toBe('hyve');

      // Linux prefers the 64-bit entry point; it exports the one it used and the table.
      const entryPoint = await readBinary(guest, '/sys/firmware/dmi/tables/smbios_entry_point');
      expect(entryPoint.subarray(0, 5).toString('latin1')).toBe('_SM3_');
      const table = await readBinary(guest, '/sys/firmware/dmi/tables/DMI');
      const structures = parseStructures(table);
      const ranges = structures.filter((s) => s.type === 19).map(mappedRange);
      expect(ranges.reduce((sum, [start, end]) => sum + (end - start), 0n)).toBe(BigInt(MEMORY_MIB) << 20n);
      expect(systemUuid(structures.find((s) => s.type === 1)!)).toBe(GIVEN.toLowerCase());
      // Byte for byte what the builder makes for this configuration, which is the same
      // on every call: another boot with this UUID sees the same tables.
      const built = loadAddon().smbiosTables({ memoryMiB: MEMORY_MIB, cpus: 1, uuid: GIVEN });
      expect(table.equals(built.table)).toBe(true);
    } finally {
      await guest[Symbol.asyncDispose]();
    }
  },
  BOOT_MS,
);
