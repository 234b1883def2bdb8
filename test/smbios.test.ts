/**
 * SMBIOS without booting: the addon's tables (smbiosTables(), the bytes a VM gets) checked
 * structure by structure here and by Debian's dmidecode, and the UUID plumbing from
 * bootGuest(), startVm(), the CLI and the vitest fixture, with its errors.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, test } from 'vitest';
import { bootGuest, fromCommandLine, startVm, toCommandLine, uuidFromName, VmStartError } from 'hyve';
import { guestTest } from 'hyve/vitest';
import { loadAddon, type SmbiosTables } from '../dist/src/native.js';
import { runCli } from './helpers/cli.js';
import { buildGuest } from './helpers/guests.js';
import { byteSum, mappedRange, parseStructures, stringAt, systemUuid, type SmbiosStructure } from './helpers/smbios.js';

const GiB = 1024n ** 3n;
const UUID = 'a3c1f2e4-5b6d-4e7f-8091-a2b3c4d5e6f7';

// Formatted-area lengths for SMBIOS 3.0 (DSP0134 3.0.0, section 7), and where each
// structure keeps its string numbers.
const SPEC: Record<number, { length: number; strings: number[] }> = {
  0: { length: 0x18, strings: [0x04, 0x05, 0x08] },
  1: { length: 0x1b, strings: [0x04, 0x05, 0x06, 0x07, 0x19, 0x1a] },
  3: { length: 0x16, strings: [0x04, 0x06, 0x07, 0x08, 0x15] }, // no contained elements
  4: { length: 0x30, strings: [0x04, 0x07, 0x10, 0x20, 0x21, 0x22] },
  16: { length: 0x17, strings: [] },
  17: { length: 0x28, strings: [0x10, 0x11, 0x17, 0x18, 0x19, 0x1a] },
  19: { length: 0x1f, strings: [] },
  32: { length: 0x0b, strings: [] },
  127: { length: 0x04, strings: [] },
};

const tablesFor = (memoryMiB: number, cpus: number, uuid = UUID): SmbiosTables =>
  loadAddon().smbiosTables({ memoryMiB, cpus, uuid });

const ofType = (structures: SmbiosStructure[], type: number) => structures.filter((s) => s.type === type);

describe.each([
  { memoryMiB: 256, cpus: 1 },
  { memoryMiB: 4096, cpus: 4 }, // RAM on both sides of the PCI hole
  { memoryMiB: 40 * 1024, cpus: 64 }, // memory device size past the 16-bit field
])('SMBIOS tables of a $memoryMiB MiB, $cpus-CPU VM', ({ memoryMiB, cpus }) => {
  const tables = tablesFor(memoryMiB, cpus);
  const structures = parseStructures(tables.table);

  test('every structure has its spec length, a unique handle, and exactly the strings it refers to', () => {
    expect(structures.map((s) => s.type)).toEqual([0, 1, 3, ...Array(cpus).fill(4), 16, 17, ...ofType(structures, 19).map(() => 19), 32, 127]);
    expect(structures.map((s) => s.handle)).toEqual(structures.map((_, i) => i));
    for (const s of structures) {
      const spec = SPEC[s.type]!;
      expect(s.length, `type ${s.type} length`).toBe(spec.length);
      const used = spec.strings.map((offset) => s.formatted[offset]!).filter((n) => n !== 0);
      expect(used.sort((a, b) => a - b), `type ${s.type} string numbers`).toEqual(s.strings.map((_, i) => i + 1));
    }
    expect(structures.slice(0, 2).map((s) => stringAt(s, 4))).toEqual(['hyve', 'hyve']); // BIOS vendor, manufacturer
    expect(stringAt(structures[1]!, 5)).toBe('hyve virtual machine');
    expect(ofType(structures, 4).map((s) => stringAt(s, 4))).toEqual(Array.from({ length: cpus }, (_, i) => `CPU ${i}`));
  });

  test('the 64-bit entry point: checksum, length, version, table size and address', () => {
    const ep = tables.entryPoint64;
    expect(ep.subarray(0, 5).toString('latin1')).toBe('_SM3_');
    expect(ep[6]).toBe(0x18);
    expect(ep.length).toBe(0x18);
    expect(byteSum(ep)).toBe(0);
    expect([ep[7], ep[8], ep[10]]).toEqual([3, 0, 1]);
    expect(ep.readUInt32LE(0x0c)).toBe(tables.table.length);
    expect(Number(ep.readBigUInt64LE(0x10))).toBe(tables.tableAddress);
    expect(tables.entryPoint64Address).toBeGreaterThanOrEqual(0xf0000); // where Linux scans
    expect(tables.entryPoint64Address % 16).toBe(0);
  });

  test('the 32-bit entry point: both checksums, table length, address, count and largest structure', () => {
    const ep = tables.entryPoint32;
    expect(ep.subarray(0, 4).toString('latin1')).toBe('_SM_');
    expect(ep[5]).toBe(0x1f);
    expect(ep.length).toBe(0x1f);
    expect(byteSum(ep)).toBe(0);
    expect(ep.subarray(0x10, 0x15).toString('latin1')).toBe('_DMI_');
    expect(byteSum(ep.subarray(0x10, 0x1f))).toBe(0);
    expect([ep[6], ep[7], ep[0x1e]]).toEqual([3, 0, 0x30]);
    expect(ep.readUInt16LE(8)).toBe(Math.max(...structures.map((s) => s.size)));
    expect(ep.readUInt16LE(0x16)).toBe(tables.table.length);
    expect(ep.readUInt32LE(0x18)).toBe(tables.tableAddress);
    expect(ep.readUInt16LE(0x1c)).toBe(structures.length);
    expect(tables.structureCount).toBe(structures.length);
    expect(tables.entryPoint32Address % 16).toBe(0);
    expect(tables.entryPoint32Address).toBeGreaterThanOrEqual(tables.entryPoint64Address + 0x18);
    expect(tables.tableAddress).toBeGreaterThanOrEqual(tables.entryPoint32Address + 0x1f);
    expect(tables.tableAddress + tables.table.length).toBeLessThanOrEqual(0x100000);
  });

  test('memory: the mapped ranges are the guest RAM regions, adding up to its size', () => {
    const bytes = BigInt(memoryMiB) << 20n;
    const low = bytes < 3n * GiB ? bytes : 3n * GiB; // RAM stops at the 32-bit PCI hole...
    const expected: [bigint, bigint][] = [[0n, low]];
    if (bytes > low) expected.push([4n * GiB, 4n * GiB + bytes - low]); // ...and resumes at 4 GiB
    expect(ofType(structures, 19).map(mappedRange)).toEqual(expected);
    const [array] = ofType(structures, 16);
    expect(BigInt(array!.formatted.readUInt32LE(7)) * 1024n).toBe(bytes);
    const [device] = ofType(structures, 17);
    const size = device!.formatted.readUInt16LE(0x0c);
    expect(BigInt(size === 0x7fff ? device!.formatted.readUInt32LE(0x1c) : size) << 20n).toBe(bytes);
    expect(device!.formatted.readUInt16LE(4)).toBe(array!.handle);
  });

  test("Debian's dmidecode reads it through either entry point without a warning", () => {
    for (const [entryPoint, kind] of [
      [tables.entryPoint64, '64'],
      [tables.entryPoint32, '32'],
    ] as const) {
      const out = dmidecode(dumpFile(entryPoint, tables.table));
      expect(out.stderr, `dmidecode (${kind}-bit entry point) stderr`).toBe('');
      expect(out.stdout).toMatch(kind === '64' ? /^SMBIOS 3\.0\.0 present\.$/m : /^SMBIOS 3\.0 present\.$/m);
      expect(out.stdout.match(/^Handle 0x/gm)).toHaveLength(structures.length);
      expect(out.stdout).not.toMatch(/OUT OF SPEC|Invalid|Wrong|truncated|Unknown Type|<BAD INDEX>/i);
      expect(out.stdout).toContain(`UUID: ${UUID}`);
      expect(out.stdout).toContain('Product Name: hyve virtual machine');
      expect(out.stdout.match(/^Processor Information$/gm)).toHaveLength(cpus);
      if (kind === '32') expect(out.stdout).toContain(`${structures.length} structures occupying ${tables.table.length} bytes.`);
    }
  });
});

test('the UUID is stored in SMBIOS byte order: first three fields little-endian', () => {
  const [, system] = parseStructures(tablesFor(256, 1, '00112233-4455-6677-8899-AABBCCDDEEFF').table);
  expect(system!.formatted.subarray(8, 24).toString('hex')).toBe('33221100554477668899aabbccddeeff');
  expect(systemUuid(system!)).toBe('00112233-4455-6677-8899-aabbccddeeff');
  expect(stringAt(system!, 7)).toBe('00112233-4455-6677-8899-aabbccddeeff'); // serial number
});

test('the same configuration gives the same bytes; another UUID changes only the system structure', () => {
  const a = tablesFor(512, 2);
  const b = tablesFor(512, 2);
  const c = tablesFor(512, 2, 'ffffffff-0000-4000-8000-000000000001');
  expect(b.table.equals(a.table)).toBe(true);
  expect(c.table.equals(a.table)).toBe(false);
  const [sa, sc] = [parseStructures(a.table), parseStructures(c.table)];
  expect(sa.map((s, i) => s.formatted.equals(sc[i]!.formatted) || s.type)).toEqual(sa.map((s) => (s.type === 1 ? 1 : true)));
});

// --- what a guest finds: a bespoke guest (test/guests/smbios.c) that scans for the
// entry point and prints the system UUID, booting in well under a second

async function guestUuid(uuid?: string): Promise<string> {
  const vm = startVm({ kernel: buildGuest('smbios'), memoryMiB: 64, ...(uuid === undefined ? {} : { uuid }) });
  let output = '';
  vm.on('console', (port, data) => {
    if (port === 0) output += data.toString('latin1');
  });
  const exit = await vm.exited;
  expect(exit.code, output).toBe(0);
  const match = /hyve-guest: smbios uuid ([0-9a-f-]{36})\n/.exec(output);
  expect(match, output).not.toBeNull();
  return match![1]!;
}

describe('the UUID a guest finds by scanning the BIOS area', () => {
  test('two boots with the same UUID agree; another UUID differs', async () => {
    const [a, b, c] = await Promise.all([guestUuid(UUID.toUpperCase()), guestUuid(UUID), guestUuid(uuidFromName('other'))]);
    expect(a).toBe(UUID);
    expect(b).toBe(UUID);
    expect(c).toBe(uuidFromName('other'));
  });

  test('without a UUID, a random (version 4) one on every boot', async () => {
    const [a, b] = await Promise.all([guestUuid(), guestUuid()]);
    expect(a).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    expect(b).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    expect(a).not.toBe(b);
  });
});

const fileScoped = guestTest({ scope: 'file', uuid: 'from-test-name', kernel: buildGuest('smbios'), ready: /smbios uuid \S+\n/ });

fileScoped("guestTest({ scope: 'file', uuid: 'from-test-name' }): the UUID comes from the test file's path", ({ guest }) => {
  expect(guest.serial.output).toContain(`smbios uuid ${uuidFromName('test/smbios.test.ts')}\n`);
});

const perTest = guestTest({ uuid: 'from-test-name', kernel: buildGuest('smbios'), ready: /smbios uuid \S+\n/ });

perTest("guestTest({ uuid: 'from-test-name' }): the UUID comes from the test's full name", ({ guest, task }) => {
  const uuid = uuidFromName(task.fullName);
  expect(guest.serial.output).toContain(`smbios uuid ${uuid}\n`);
  expect(uuid).not.toBe(uuidFromName('test/smbios.test.ts')); // not the file-scoped one
});

// --- dmidecode over a dump -------------------------------------------------------

const tmp = mkdtempSync(path.join(os.tmpdir(), 'hyve-smbios-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));
let dumps = 0;

/**
 * A file in the layout `dmidecode --dump-bin` writes and `--from-dump` reads: the entry
 * point at offset 0, its table address rewritten to 32 (checksums fixed), the table at 32.
 */
function dumpFile(entryPoint: Buffer, table: Buffer): string {
  const head = Buffer.alloc(32);
  entryPoint.copy(head);
  if (head.subarray(0, 5).toString('latin1') === '_SM3_') {
    head.writeBigUInt64LE(32n, 0x10);
    head[5] = 0;
    head[5] = (0x100 - byteSum(head.subarray(0, head[6]!))) & 0xff;
  } else {
    head.writeUInt32LE(32, 0x18);
    head[0x15] = 0;
    head[0x15] = (0x100 - byteSum(head.subarray(0x10, 0x1f))) & 0xff;
    head[4] = 0;
    head[4] = (0x100 - byteSum(head.subarray(0, head[5]!))) & 0xff;
  }
  const file = path.join(tmp, `dump-${dumps++}.bin`);
  writeFileSync(file, Buffer.concat([head, table]));
  return file;
}

function dmidecode(file: string): { stdout: string; stderr: string } {
  const result = spawnSync('dmidecode', ['--from-dump', file], { encoding: 'utf8' });
  if (result.error) {
    throw new Error(`cannot run dmidecode (${result.error.message}): install it with scripts/setup-debian.sh (Debian package dmidecode)`);
  }
  expect(result.status, result.stderr).toBe(0);
  return { stdout: result.stdout, stderr: result.stderr };
}

// --- UUIDs: validation and plumbing ------------------------------------------------

describe('a malformed UUID is a clear error (HYVE_BAD_CONFIG), before any VM starts', () => {
  const bad = ['not-a-uuid', 'a3c1f2e4-5b6d-4e7f-8091-a2b3c4d5e6f', 'a3c1f2e45b6d4e7f8091a2b3c4d5e6f7', 'g3c1f2e4-5b6d-4e7f-8091-a2b3c4d5e6f7'];

  test.each(bad)('bootGuest({ uuid: %j })', async (uuid) => {
    // A missing kernel would be HYVE_BAD_KERNEL: the UUID is checked first.
    const error = await bootGuest({ kernel: '/nonexistent/kernel', uuid }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(VmStartError);
    expect((error as VmStartError).code).toBe('HYVE_BAD_CONFIG');
    expect((error as VmStartError).message).toContain("option 'uuid' must be a UUID");
    expect((error as VmStartError).message).toContain(JSON.stringify(uuid));
  });

  test('startVm() refuses it before starting a VM process', () => {
    expect(() => startVm({ kernel: buildGuest('uart'), uuid: 'not-a-uuid' })).toThrow(
      expect.objectContaining({ code: 'HYVE_BAD_CONFIG', message: expect.stringContaining("option 'uuid'") }),
    );
  });

  test('smbiosTables() refuses it too', () => {
    expect(() => tablesFor(256, 1, 'nope')).toThrow(expect.objectContaining({ code: 'HYVE_BAD_CONFIG' }));
  });

  test('the CLI: -U with a bad UUID exits 1 with a message, nothing started', () => {
    const result = runCli(['-U', 'a3c1f2e4-5b6d-4e7f-8091', '-f', 'kexec,/nonexistent/kernel,,']);
    expect(result.status).toBe(1);
    expect(result.stderr).toMatch(/invalid UUID 'a3c1f2e4-5b6d-4e7f-8091'/);
    expect(result.stdout).toBe('');
  });

  test("with a snapshot: refused, since a restored guest keeps the snapshot's UUID", async () => {
    const error = await bootGuest({ snapshot: tmp, uuid: UUID }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(VmStartError);
    expect((error as VmStartError).code).toBe('HYVE_BAD_CONFIG');
    expect((error as VmStartError).message).toMatch(/keeps the snapshot's UUID/);
    expect(() => guestTest({ uuid: 'from-test-name', snapshot: 'auto' })).toThrow(/cannot be combined with snapshot/);
  });

  test('toCommandLine() checks it', () => {
    expect(() => toCommandLine({ kernel: '/k', uuid: 'xyz' })).toThrow(expect.objectContaining({ code: 'HYVE_BAD_CONFIG' }));
  });
});

describe('-U, --print-options and toCommandLine() carry the UUID', () => {
  test('-U becomes bootGuest({ uuid }) in lower case, and back', () => {
    const { options, warnings } = fromCommandLine(['-U', UUID.toUpperCase(), '-f', 'kexec,/k,,console=ttyS0 panic=-1']);
    expect(options.uuid).toBe(UUID);
    expect(warnings.join('\n')).not.toMatch(/-U/);
    const argv = toCommandLine(options);
    expect(argv.slice(argv.indexOf('-U'), argv.indexOf('-U') + 2)).toEqual(['-U', UUID]);
    expect(fromCommandLine(argv).options).toEqual(options);
  });

  test('hyve --print-options prints it', () => {
    const result = runCli(['--print-options', '-U', UUID, '-f', 'kexec,/k,,console=ttyS0 panic=-1']);
    expect(result.status).toBe(0);
    expect(JSON.parse(result.stdout).uuid).toBe(UUID);
  });

  test("uuidFromName(): a version-5 UUID, the same for the same name, another for another", () => {
    const a = uuidFromName('test/x.test.ts > suite > a test');
    expect(a).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-5[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    expect(uuidFromName('test/x.test.ts > suite > a test')).toBe(a);
    expect(uuidFromName('test/x.test.ts > suite > another test')).not.toBe(a);
  });
});
