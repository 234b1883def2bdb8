import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import * as fsp from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { CpioWriter } from '../src/fixtures/cpio.js';
import { withCacheLock, defaultCacheDir } from '../src/fixtures/index.js';
import {
  DEFAULT_READY_MARKER,
  assertStaticX86_64Elf,
  buildInitramfs,
  createInitramfs,
  busyboxApplets,
} from '../src/fixtures/initramfs.js';
import { checkKernelConfig, defaultKernelFragment } from '../src/fixtures/kernel.js';

const isRoot = process.getuid?.() === 0;
const haveCpio = spawnSync('cpio', ['--version']).status === 0;
const haveBusybox = existsSync('/bin/busybox');

/**
 * What a test needs from the machine's setup. Missing, the test fails and says how to fix
 * it: a CI machine with an incomplete setup must not pass by skipping these silently.
 */
function needs(present: boolean, what: string): void {
  if (!present) throw new Error(`this test needs ${what}; \`npm run setup\` (scripts/setup-debian.sh) installs it`);
}

let tmp: string;
beforeAll(async () => {
  tmp = await fsp.mkdtemp(path.join(os.tmpdir(), 'hyve-fixtures-'));
});
afterAll(async () => {
  await fsp.rm(tmp, { recursive: true, force: true });
});

/** Unpack with GNU cpio into a fresh directory. */
function extract(archive: Buffer, into: string): void {
  const r = spawnSync('cpio', ['-idm', '--no-absolute-filenames', '--quiet'], { cwd: into, input: archive });
  expect(r.stderr.toString()).toBe('');
  expect(r.status).toBe(0);
}

function list(archive: Buffer): string[] {
  const r = spawnSync('cpio', ['-t', '--quiet'], { input: archive });
  expect(r.status).toBe(0);
  return r.stdout.toString().trim().split('\n');
}

// Linux dev_t encoding (glibc gnu_dev_major/minor).
const devMajor = (rdev: number) => Number(((BigInt(rdev) >> 8n) & 0xfffn) | ((BigInt(rdev) >> 32n) & ~0xfffn));
const devMinor = (rdev: number) => Number((BigInt(rdev) & 0xffn) | ((BigInt(rdev) >> 12n) & ~0xffn));

/** Walk our own output as the kernel's unpacker does and return the records. */
function parseNewc(buf: Buffer) {
  const records: { name: string; mode: number; size: number; offset: number }[] = [];
  let off = 0;
  for (;;) {
    expect(off % 4).toBe(0);
    expect(buf.toString('ascii', off, off + 6)).toBe('070701');
    const field = (i: number) => parseInt(buf.toString('ascii', off + 6 + i * 8, off + 14 + i * 8), 16);
    const mode = field(1);
    const size = field(6);
    const namesize = field(11);
    const name = buf.toString('utf8', off + 110, off + 110 + namesize - 1);
    expect(buf[off + 110 + namesize - 1]).toBe(0);
    expect([field(2), field(3), field(5)]).toEqual([0, 0, 0]); // uid, gid, mtime
    const dataStart = off + 110 + namesize + ((4 - ((110 + namesize) % 4)) % 4);
    expect(dataStart % 4).toBe(0);
    // The kernel's unpacker rejects anything but NUL bytes as padding ("broken padding").
    expect(buf.subarray(off + 110 + namesize, dataStart).every((b) => b === 0)).toBe(true);
    records.push({ name, mode, size, offset: dataStart });
    const next = dataStart + size + ((4 - (size % 4)) % 4);
    expect(buf.subarray(dataStart + size, next).every((b) => b === 0)).toBe(true);
    off = next;
    if (name === 'TRAILER!!!') break;
  }
  expect(off).toBe(buf.length);
  return records;
}

describe('CpioWriter', () => {
  function sample(): CpioWriter {
    return new CpioWriter()
      .dir('/etc', 0o750)
      .file('/etc/hello.txt', Buffer.from('hello, world\n'), 0o640)
      .file('etc/empty', Buffer.alloc(0))
      .file('./bin/tool', Buffer.from([0x7f, 0x45, 0x4c, 0x46, 0, 1, 2]), 0o755) // parent added implicitly
      .symlink('/etc/link', 'hello.txt')
      .symlink('/bin/sh', '/bin/busybox')
      .charDevice('/dev/console', 5, 1, 0o600)
      .charDevice('/dev/ttyS1', 4, 65, 0o620);
  }

  it('writes aligned newc records ending in TRAILER!!!, deterministically', () => {
    const a = sample().toBuffer();
    expect(a.equals(sample().toBuffer())).toBe(true);
    const records = parseNewc(a);
    expect(records.map((r) => r.name)).toEqual([
      'etc',
      'etc/hello.txt',
      'etc/empty',
      'bin',
      'bin/tool',
      'etc/link',
      'bin/sh',
      'dev',
      'dev/console',
      'dev/ttyS1',
      'TRAILER!!!',
    ]);
    const hello = records[1]!;
    expect(a.toString('utf8', hello.offset, hello.offset + hello.size)).toBe('hello, world\n');
    expect(hello.mode).toBe(0o100640);
  });

  it('rejects duplicates and paths through non-directories', () => {
    const w = new CpioWriter().file('a', 'x');
    expect(() => w.file('/a', 'y')).toThrow(/duplicate/);
    expect(() => w.file('a/b', 'y')).toThrow(/not a directory/);
    expect(() => w.file('../x', 'y')).toThrow(/\.\./);
  });

  it('is extracted by GNU cpio: files, modes, symlinks', async () => {
    needs(haveCpio, 'GNU cpio (Debian package cpio)');
    const dir = await fsp.mkdtemp(path.join(tmp, 'x-'));
    extract(sample().toBuffer(), dir);
    expect(await fsp.readFile(path.join(dir, 'etc/hello.txt'), 'utf8')).toBe('hello, world\n');
    expect((await fsp.stat(path.join(dir, 'etc/hello.txt'))).mode & 0o7777).toBe(0o640);
    expect((await fsp.stat(path.join(dir, 'etc/empty'))).size).toBe(0);
    expect(await fsp.readFile(path.join(dir, 'bin/tool'))).toEqual(Buffer.from([0x7f, 0x45, 0x4c, 0x46, 0, 1, 2]));
    expect((await fsp.stat(path.join(dir, 'bin/tool'))).mode & 0o777).toBe(0o755);
    expect((await fsp.stat(path.join(dir, 'etc'))).isDirectory()).toBe(true);
    expect(await fsp.readlink(path.join(dir, 'etc/link'))).toBe('hello.txt');
    expect(await fsp.readlink(path.join(dir, 'bin/sh'))).toBe('/bin/busybox');
    expect((await fsp.stat(path.join(dir, 'etc/hello.txt'))).mtimeMs).toBe(0);
  });

  it('is extracted by GNU cpio: device nodes keep major:minor', async () => {
    needs(haveCpio, 'GNU cpio (Debian package cpio)');
    needs(isRoot, 'root, to create device nodes (run the suite as root, as CI does)');
    const dir = await fsp.mkdtemp(path.join(tmp, 'dev-'));
    extract(sample().toBuffer(), dir);
    const con = await fsp.lstat(path.join(dir, 'dev/console'));
    expect(con.isCharacterDevice()).toBe(true);
    expect([devMajor(con.rdev), devMinor(con.rdev)]).toEqual([5, 1]);
    expect(con.mode & 0o7777).toBe(0o600);
    const ttyS1 = await fsp.lstat(path.join(dir, 'dev/ttyS1'));
    expect(ttyS1.isCharacterDevice()).toBe(true);
    expect([devMajor(ttyS1.rdev), devMinor(ttyS1.rdev)]).toEqual([4, 65]);
  });

  it('pads every name and data length correctly', async () => {
    needs(haveCpio, 'GNU cpio (Debian package cpio)');
    // Name lengths 1..8 and data lengths 0..7 cover every padding remainder.
    const w = new CpioWriter();
    for (let n = 1; n <= 8; n++) {
      for (let d = 0; d < 8; d++) w.file(`d${n}/${'n'.repeat(n)}${d}`, Buffer.alloc(d, 0x41 + d));
    }
    const buf = w.toBuffer();
    parseNewc(buf);
    const dir = await fsp.mkdtemp(path.join(tmp, 'pad-'));
    extract(buf, dir);
    for (let n = 1; n <= 8; n++) {
      for (let d = 0; d < 8; d++) {
        expect(await fsp.readFile(path.join(dir, `d${n}/${'n'.repeat(n)}${d}`))).toEqual(Buffer.alloc(d, 0x41 + d));
      }
    }
  });
});

describe('default initramfs', () => {
  it('contains /init, busybox and the console node; is cached', async () => {
    needs(haveCpio, 'GNU cpio (Debian package cpio)');
    needs(haveBusybox, 'a static busybox at /bin/busybox (Debian package busybox-static)');
    const cacheDir = path.join(tmp, 'cache');
    const file = await buildInitramfs({ cacheDir });
    expect(path.basename(file)).toMatch(/^initramfs-[0-9a-f]{16}\.cpio$/);
    const archive = await fsp.readFile(file);
    expect(parseNewc(archive).at(-1)!.name).toBe('TRAILER!!!');
    const names = list(archive);
    for (const n of ['init', 'bin/busybox', 'bin/sh', 'dev/console', 'proc', 'sys', 'dev', 'tmp', 'root', 'etc']) {
      expect(names).toContain(n);
    }
    const stat = await fsp.stat(file);
    expect(await buildInitramfs({ cacheDir })).toBe(file);
    expect((await fsp.stat(file)).mtimeMs).toBe(stat.mtimeMs); // not rebuilt

    const dir = await fsp.mkdtemp(path.join(tmp, 'initramfs-'));
    extract(archive, dir);
    const init = await fsp.readFile(path.join(dir, 'init'), 'utf8');
    expect(init.startsWith('#!/bin/busybox sh\n')).toBe(true);
    expect(init).toContain(`echo ${DEFAULT_READY_MARKER}`);
    expect((await fsp.stat(path.join(dir, 'init'))).mode & 0o111).toBe(0o111);
    expect((await fsp.readFile(path.join(dir, 'bin/busybox'))).equals(readFileSync('/bin/busybox'))).toBe(true);
    // Every applet is linked in the archive, where `busybox --install` would put it.
    expect(await fsp.readlink(path.join(dir, 'bin/sh'))).toBe('/bin/busybox');
    expect(await fsp.readlink(path.join(dir, 'usr/bin/setsid'))).toBe('/bin/busybox');
    expect(await fsp.readlink(path.join(dir, 'bin/stty'))).toBe('/bin/busybox');
    expect(init).not.toContain('--install');
    // The archive is the same bytes createInitramfs() produces (deterministic).
    expect(archive.equals(createInitramfs(readFileSync('/bin/busybox'), busyboxApplets('/bin/busybox')))).toBe(true);
  });

  it('accepts static busybox and rejects dynamically linked binaries', () => {
    needs(haveBusybox, 'a static busybox at /bin/busybox (Debian package busybox-static)');
    expect(() => assertStaticX86_64Elf(readFileSync('/bin/busybox'), '/bin/busybox')).not.toThrow();
    expect(() => assertStaticX86_64Elf(readFileSync('/bin/ls'), '/bin/ls')).toThrow(/dynamically linked/);
    expect(() => assertStaticX86_64Elf(Buffer.from('#!/bin/sh\n'), 'x')).toThrow(/not an ELF/);
  });
});

describe('kernel config fragment', () => {
  it('is well-formed and requests the essentials', () => {
    const text = readFileSync(defaultKernelFragment(), 'utf8');
    for (const line of text.split('\n')) {
      if (line === '' || line.startsWith('#')) continue;
      expect(line).toMatch(/^CONFIG_[A-Z0-9_]+=(y|-?\d+|"[^"]*")$/);
    }
    const problems = checkKernelConfig(
      text,
      'CONFIG_64BIT=y\nCONFIG_SERIAL_8250_CONSOLE=y\n# CONFIG_MODULES is not set\nCONFIG_KALLSYMS=y\n',
    );
    const bad = new Set(problems.map((p) => p.symbol));
    expect(bad.has('CONFIG_64BIT')).toBe(false);
    expect(bad.has('CONFIG_MODULES')).toBe(false);
    expect(bad.has('CONFIG_KALLSYMS')).toBe(true); // requested off, got y
    expect(bad.has('CONFIG_PVH')).toBe(true); // requested y, absent
    expect(bad.has('CONFIG_RANDOMIZE_BASE')).toBe(false); // requested off, absent = off
  });
});

describe('cache dir and lock', () => {
  it('resolves the default cache dir from the environment', () => {
    const keys = ['HYVE_CACHE_DIR', 'XDG_CACHE_HOME'] as const;
    const saved = keys.map((k) => process.env[k]);
    try {
      process.env.HYVE_CACHE_DIR = '/x/hyve-cache';
      expect(defaultCacheDir()).toBe('/x/hyve-cache');
      delete process.env.HYVE_CACHE_DIR;
      process.env.XDG_CACHE_HOME = '/x/xdg';
      expect(defaultCacheDir()).toBe('/x/xdg/hyve');
      delete process.env.XDG_CACHE_HOME;
      expect(defaultCacheDir()).toBe(path.join(os.homedir(), '.cache', 'hyve'));
    } finally {
      keys.forEach((k, i) => {
        if (saved[i] === undefined) delete process.env[k];
        else process.env[k] = saved[i];
      });
    }
  });

  it('serialises holders and breaks locks left by dead processes', async () => {
    const lock = path.join(tmp, 'test.lock');
    const events: string[] = [];
    const holder = (id: string) =>
      withCacheLock(
        lock,
        async () => {
          events.push(`${id}+`);
          await new Promise((r) => setTimeout(r, 30));
          events.push(`${id}-`);
        },
        { pollMs: 5 },
      );
    await Promise.all([holder('a'), holder('b'), holder('c')]);
    expect(events.length).toBe(6);
    for (let i = 0; i < 6; i += 2) expect(events[i]!.slice(0, 1)).toBe(events[i + 1]!.slice(0, 1));
    expect(existsSync(lock)).toBe(false);

    // A lock whose owner pid no longer exists.
    const dead = spawnSync('true').pid!;
    await fsp.mkdir(lock);
    await fsp.writeFile(path.join(lock, 'owner'), `${dead} 1 deadbeef\n`);
    const lines: string[] = [];
    expect(await withCacheLock(lock, async () => 42, { pollMs: 5, onProgress: (l) => lines.push(l) })).toBe(42);
    expect(lines.join('\n')).toMatch(/stale lock/);
  });
});
