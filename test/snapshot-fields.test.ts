/**
 * Snapshot state is read field by field and validated: a damaged field (a bool that is
 * not 0/1, an enum or integer out of range, a field where another belongs) or an
 * impossible machine in the header is refused with HYVE_BAD_SNAPSHOT, never applied.
 * A bespoke guest (milliseconds to boot) is snapshotted once; each test damages a copy
 * of its state.bin, with checksums fixed up so that only the field check can catch it.
 */
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { closeSync, copyFileSync, linkSync, mkdtempSync, openSync, readFileSync, rmSync, statSync, truncateSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { crc32 } from 'node:zlib';
import { startVm, VmProcess, VmStartError } from 'hyve';
import { buildGuest, snapshotUartGuest } from './helpers/guests.js';

const work = mkdtempSync(path.join(os.tmpdir(), 'hyve-snapshot-fields-'));
const snapshotDir = path.join(work, 'uart');

beforeAll(async () => {
  await snapshotUartGuest(snapshotDir);
}, 120_000);

afterAll(() => rmSync(work, { recursive: true, force: true }));

/** state.bin (docs/snapshot-format.md) as header bytes and named sections. */
interface StateFile {
  prefix: Buffer; // magic and format version
  header: Buffer;
  sections: { name: string; data: Buffer }[];
}

function readState(dir: string): StateFile {
  const bytes = readFileSync(path.join(dir, 'state.bin'));
  let at = 12;
  const blob = () => {
    const length = Number(bytes.readBigUInt64LE(at));
    const data = Buffer.from(bytes.subarray(at + 8, at + 8 + length));
    at += 8 + length + 4; // and its CRC
    return data;
  };
  const prefix = bytes.subarray(0, 12);
  const header = blob();
  const sections: StateFile['sections'] = [];
  while (at < bytes.length) {
    const nameLength = bytes.readUInt32LE(at);
    const name = bytes.subarray(at + 4, at + 4 + nameLength).toString();
    at += 4 + nameLength;
    sections.push({ name, data: blob() });
  }
  return { prefix, header, sections };
}

function writeState(dir: string, file: StateFile): void {
  const blob = (data: Buffer) => {
    const length = Buffer.alloc(8);
    length.writeBigUInt64LE(BigInt(data.length));
    const crc = Buffer.alloc(4);
    crc.writeUInt32LE(crc32(data));
    return [length, data, crc];
  };
  const parts: Buffer[] = [file.prefix, ...blob(file.header)];
  for (const { name, data } of file.sections) {
    const nameLength = Buffer.alloc(4);
    nameLength.writeUInt32LE(Buffer.byteLength(name));
    parts.push(nameLength, Buffer.from(name), ...blob(data));
  }
  writeFileSync(path.join(dir, 'state.bin'), Buffer.concat(parts));
}

/** A copy of the snapshot with `damage` applied to its state file. */
function damaged(damage: (file: StateFile) => void): string {
  const dir = mkdtempSync(path.join(work, 'damaged-'));
  copyFileSync(path.join(snapshotDir, 'state.bin'), path.join(dir, 'state.bin'));
  linkSync(path.join(snapshotDir, 'memory.bin'), path.join(dir, 'memory.bin'));
  const file = readState(dir);
  damage(file);
  writeState(dir, file);
  return dir;
}

/** Offset of the value of field `field` in section `section` (a field is a length byte and its name). */
function fieldValue(file: StateFile, section: string, field: string, nth = 0): { data: Buffer; at: number } {
  const data = file.sections.find((s) => s.name === section)?.data;
  if (!data) throw new Error(`no section ${section} in [${file.sections.map((s) => s.name).join(', ')}]`);
  const tag = Buffer.concat([Buffer.from([field.length]), Buffer.from(field)]);
  let at = -1;
  for (let i = 0; i <= nth; i++) {
    at = data.indexOf(tag, at + 1);
    if (at < 0) throw new Error(`no field ${field} in ${section}`);
  }
  return { data, at: at + tag.length };
}

async function expectRefused(dir: string, pattern: RegExp): Promise<void> {
  const vm = new VmProcess({ snapshot: dir });
  const error = await vm.started.then(
    () => undefined,
    (e: unknown) => e,
  );
  await vm.exited;
  expect(error).toBeInstanceOf(VmStartError);
  expect((error as VmStartError).code).toBe('HYVE_BAD_SNAPSHOT');
  expect((error as VmStartError).message).toMatch(pattern);
}

describe('the memory file of a running restored copy', () => {
  test('truncated under it: the VM ends with HYVE_BAD_SNAPSHOT saying so, not a SIGBUS death', async () => {
    // The echo guest runs forever (this file's uart guest ends after one line).
    const dir = mkdtempSync(path.join(work, 'truncated-under-'));
    const original = startVm({ kernel: buildGuest('echo'), memoryMiB: 64 });
    let text = '';
    const until = async (marker: string) => {
      while (!text.includes(marker)) await new Promise((resolve) => setTimeout(resolve, 20));
    };
    original.on('console', (_port, data) => (text += data.toString('latin1')));
    await until('echo ready');
    await original.snapshot(dir);
    original.kill();
    await original.exited;
    const vm = new VmProcess({ snapshot: dir });
    text = '';
    vm.on('console', (_port, data) => (text += data.toString('latin1')));
    vm.write('before\n');
    await until('before\n');
    truncateSync(path.join(dir, 'memory.bin'), 4096);
    const exit = await vm.exited;
    expect(exit.signal ?? null).toBeNull();
    expect(exit).toMatchObject({ outcome: 'error', errorCode: 'HYVE_BAD_SNAPSHOT' });
    expect(exit.message).toMatch(/memory\.bin is 4096 bytes now, shorter than the 67108864 bytes of guest memory mapped from it/);
  }, 120_000);
});

describe('device state fields are validated on restore', () => {
  test('the intact snapshot restores and the guest carries on', async () => {
    const vm = new VmProcess({ snapshot: snapshotDir });
    let text = '';
    vm.on('console', (_port, data) => {
      text += data.toString('latin1');
    });
    await vm.started;
    vm.write('after restore\n');
    const exit = await vm.exited;
    expect(text).toContain('echo [after restore]');
    expect(exit.code).toBe(0);
  });

  test.each([
    ['device:com1', 'thrEmptyPending'],
    ['device:hpet', 'armed'],
    ['device:pci-00:00.0:hostbridge', 'intxRequested'],
    ['device:rtc', 'nmiMasked'],
  ])('a bool that is neither 0 nor 1 (%s %s)', async (section, field) => {
    const dir = damaged((file) => {
      const { data, at } = fieldValue(file, section, field);
      data[at] = 2;
    });
    await expectRefused(dir, new RegExp(`field '${field}' is not a boolean \\(2\\)`));
  });

  test('an enum past its last value (a PCI BAR kind)', async () => {
    const dir = damaged((file) => {
      const { data, at } = fieldValue(file, 'device:pci-00:1f.0:lpc', 'barKind');
      data.writeUInt32LE(5, at);
    });
    await expectRefused(dir, /field 'barKind' is out of range \(5 > 4\)/);
  });

  test('a BAR layout that is not the device’s', async () => {
    const dir = damaged((file) => {
      const { data, at } = fieldValue(file, 'device:pci-00:1f.0:lpc', 'barKind');
      data.writeUInt32LE(1, at); // an I/O BAR where the LPC bridge has none
    });
    await expectRefused(dir, /BAR layout/);
  });

  test('an index past its FIFO (UART rxHead)', async () => {
    const dir = damaged((file) => {
      const { data, at } = fieldValue(file, 'device:com1', 'rxHead');
      data[at] = 16;
    });
    await expectRefused(dir, /field 'rxHead' is out of range \(16 > 15\)/);
  });

  test('an RTC clock offset that would overflow the guest clock', async () => {
    const dir = damaged((file) => {
      const { data, at } = fieldValue(file, 'device:rtc', 'clockOffsetSeconds');
      data.writeBigInt64LE(0x7fffffffffffffffn, at);
    });
    await expectRefused(dir, /field 'clockOffsetSeconds' is out of range/);
  });

  test('a field where another belongs (reordered or renamed)', async () => {
    const dir = damaged((file) => {
      const { data, at } = fieldValue(file, 'device:com1', 'dll');
      data.write('dlm', at - 3); // the name of the next field
    });
    await expectRefused(dir, /has field 'dlm' where 'dll' belongs/);
  });
});

describe('an impossible machine in the header is a bad snapshot, not a bad config', () => {
  /** Offset of the u32 vCPU count: after the version and backend strings and the u64 memory size. */
  function cpusAt(header: Buffer): number {
    let at = 0;
    for (let i = 0; i < 2; i++) at += 4 + header.readUInt32LE(at);
    return at + 8;
  }

  test.each([0, 65])('%i vCPUs', async (cpus) => {
    const dir = damaged((file) => file.header.writeUInt32LE(cpus, cpusAt(file.header)));
    await expectRefused(dir, /cpus must be between 1 and/);
  });

  test('a guest memory size that does not match the memory file', async () => {
    const dir = damaged((file) => {
      const at = cpusAt(file.header) - 8;
      file.header.writeBigUInt64LE(file.header.readBigUInt64LE(at) + 4096n, at);
    });
    await expectRefused(dir, /describes 67112960 bytes of guest memory but a memory file of 67108864 bytes/);
  });

  test('a memory size that is not a multiple of 2 MiB, file and all', async () => {
    const dir = mkdtempSync(path.join(work, 'odd-memory-'));
    const memory = path.join(dir, 'memory.bin');
    const size = 64 * 1024 * 1024 + 4096;
    closeSync(openSync(memory, 'w'));
    truncateSync(memory, size);
    const file = readState(snapshotDir);
    // Walk the header to memoryFileBytes and memoryMtimeNs (docs/snapshot-format.md).
    const h = file.header;
    const string = (at: number) => at + 4 + h.readUInt32LE(at);
    const memoryAt = string(string(0));
    h.writeBigUInt64LE(BigInt(size), memoryAt);
    let at = memoryAt + 8 + 4; // memory size, cpus
    for (let i = 0; i < 2; i++) at = string(at) + 16; // kernel, initrd: path, size, mtime
    at = string(at) + 4 + 8; // cmdline, machine flags, saved realtime
    h.writeBigUInt64LE(BigInt(size), at);
    h.writeBigInt64LE(statSync(memory, { bigint: true }).mtimeNs, at + 8);
    writeState(dir, file);
    await expectRefused(dir, /does not describe a valid machine: guest memory must be a multiple of 2 MiB/);
  });
});

describe('state.bin is read with a cap that follows from what it can hold', () => {
  test('a sparse 3 GiB state.bin is refused before anything is read or allocated', async () => {
    const dir = damaged(() => {});
    truncateSync(path.join(dir, 'state.bin'), 3 * 2 ** 30);
    // Before: read whole (3 GiB of memory) and only then found corrupt.
    await expectRefused(dir, /snapshot state file .*state\.bin is 3072 MiB, more than the 26 MiB accepted/);
  });
});
