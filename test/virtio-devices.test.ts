/**
 * virtio-blk and virtio-rng on the default guest (one boot for the file): ext4 images made
 * on the host with mke2fs -d, read and written by the guest, read back with debugfs; a
 * read-only disk; an ephemeral disk whose file never changes; entropy from /dev/hwrng;
 * restored copies of a snapshot of that guest (disks and virtio-rng state restored).
 */
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { bootGuest, type Guest } from 'hyve';
import { runCommand } from './helpers/console.js';

const work = mkdtempSync(path.join(os.tmpdir(), 'hyve-virtio-'));
const tree = path.join(work, 'tree');
mkdirSync(path.join(tree, 'sub'), { recursive: true });
writeFileSync(path.join(tree, 'hello.txt'), 'made on the host\n');
writeFileSync(path.join(tree, 'sub', 'numbers.txt'), Array.from({ length: 2000 }, (_, i) => `${i}\n`).join(''));
const image = (name: string) => {
  const file = path.join(work, name);
  execFileSync('mke2fs', ['-q', '-F', '-t', 'ext4', '-d', tree, '-L', name, file, '16M']);
  return file;
};
const rw = image('rw.img');
const ro = path.join(work, 'ro.img');
copyFileSync(rw, ro);
const ephemeral = path.join(work, 'ephemeral.img');
copyFileSync(rw, ephemeral);
const hash = (file: string) => createHash('sha256').update(readFileSync(file)).digest('hex');
const roHash = hash(ro);
const ephemeralHash = hash(ephemeral);

let guest: Guest;

beforeAll(async () => {
  // A loaded 2-core PVM host has taken over 5 minutes for this boot.
  guest = await bootGuest({
    timeoutMs: 1_100_000,
    memory: '256M',
    rng: true,
    disks: [
      { path: rw, serial: 'hyve-rw' },
      { path: ro, readOnly: true },
      { path: ephemeral, ephemeral: true },
    ],
  });
  await guest.run('dmesg -n 1'); // kernel messages (EXT4-fs mounted ...) stay off the console
}, 1_200_000);

afterAll(async () => {
  // SIGKILL: the ephemeral disk's copy is an unnamed O_TMPFILE file, so nothing is left
  // to clean up, and the image itself never changed.
  await guest?.kill();
  expect(hash(ephemeral)).toBe(ephemeralHash);
  rmSync(work, { recursive: true, force: true });
});

const sh = async (command: string) => {
  const { output, exitCode } = await runCommand(guest, command, { timeoutMs: 120_000 });
  return { output, exitCode };
};

describe('virtio-blk', () => {
  test('the guest reads an ext4 image made on the host', async () => {
    const { output, exitCode } = await sh('mkdir -p /mnt/rw && mount -t ext4 /dev/vda /mnt/rw && cat /mnt/rw/hello.txt && tail -n 1 /mnt/rw/sub/numbers.txt && cat /sys/block/vda/serial');
    expect(exitCode).toBe(0);
    expect(output).toBe('made on the host\n1999\nhyve-rw'); // sysfs serial has no newline
  }, 180_000);

  test('a file the guest writes and syncs is in the image on the host', async () => {
    const { exitCode } = await sh('echo written by the guest > /mnt/rw/guest.txt && sync && umount /mnt/rw');
    expect(exitCode).toBe(0);
    const read = execFileSync('debugfs', ['-R', 'cat /guest.txt', rw], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
    expect(read).toBe('written by the guest\n');
  }, 180_000);

  test('a read-only disk refuses writes and its file is unchanged', async () => {
    const write = await sh('cat /sys/block/vdb/ro; dd if=/dev/zero of=/dev/vdb bs=4096 count=1 2>/dev/null; echo dd=$?');
    expect(write.output).toMatch(/^1\ndd=[1-9]\d*\n$/);
    const mount = await sh('mkdir -p /mnt/ro && mount -t ext4 -o ro /dev/vdb /mnt/ro && cat /mnt/ro/hello.txt && touch /mnt/ro/x 2>/dev/null; echo touch=$?; umount /mnt/ro');
    expect(mount.output).toMatch(/made on the host\ntouch=[1-9]/);
    expect(hash(ro)).toBe(roHash);
  }, 180_000);

  test('an ephemeral disk takes the guest\'s writes, its file never changes', async () => {
    const { output, exitCode } = await sh(
      'mkdir -p /mnt/eph && mount -t ext4 /dev/vdc /mnt/eph && dd if=/dev/zero of=/mnt/eph/big bs=64k count=4 2>/dev/null && echo mine > /mnt/eph/hello.txt && sync && echo 3 > /proc/sys/vm/drop_caches && cat /mnt/eph/hello.txt && ls -l /mnt/eph/big | awk \'{print $5}\'',
    );
    expect(exitCode).toBe(0);
    expect(output).toBe('mine\n262144\n');
    expect(hash(ephemeral)).toBe(ephemeralHash);
  }, 180_000);

  test('sequential read throughput of the guest (printed)', async () => {
    const started = Date.now();
    const { exitCode } = await sh('dd if=/dev/vda of=/dev/null bs=1M count=16 iflag=direct 2>/dev/null || dd if=/dev/vda of=/dev/null bs=1M count=16');
    const seconds = (Date.now() - started) / 1000;
    expect(exitCode).toBe(0);
    console.log(`virtio-blk: 16 MiB read in ${seconds.toFixed(2)} s including the run() round trip (${(16 / seconds).toFixed(1)} MiB/s)`);
  }, 180_000);
});

describe('virtio-rng', () => {
  test('the guest picks virtio as its hardware RNG, and two reads differ', async () => {
    const current = await sh('cat /sys/class/misc/hw_random/rng_current');
    expect(current.output).toMatch(/^virtio_rng/);
    const a = await sh('head -c 32 /dev/hwrng | od -An -tx1 | tr -d " \\n"');
    const b = await sh('head -c 32 /dev/hwrng | od -An -tx1 | tr -d " \\n"');
    expect(a.output).toMatch(/^[0-9a-f]{64}$/);
    expect(b.output).toMatch(/^[0-9a-f]{64}$/);
    expect(a.output).not.toBe(b.output);
  }, 180_000);
});

describe('snapshots with disks', () => {
  test('two restores of a snapshot start from the same disk, never see each other\'s writes, and keep virtio-rng working', async () => {
    const at = (sector: number) => `echo 3 > /proc/sys/vm/drop_caches; dd if=/dev/vda bs=512 skip=${sector} count=1 2>/dev/null | head -c 6 | tr -d '\\000'; echo`;
    const put = (sector: number, text: string) => `printf ${text} | dd of=/dev/vda bs=512 seek=${sector} conv=notrunc,fsync 2>/dev/null`;
    expect((await sh(put(32000, 'SNAPSH'))).exitCode).toBe(0);
    const dir = path.join(work, 'snapshot');
    await guest.snapshot(dir);
    const copies = [await bootGuest({ snapshot: dir, timeoutMs: 600_000 }), await bootGuest({ snapshot: dir, timeoutMs: 600_000 })];
    try {
      const run = async (g: Guest, command: string) => (await runCommand(g, command, { timeoutMs: 120_000 })).output;
      for (const copy of copies) expect(await run(copy, at(32000))).toBe('SNAPSH\n');
      // virtio-rng's transport and queue state came back too: each copy still reads from it.
      for (const copy of copies) {
        expect((await copy.stats())?.bootPath).toBe('snapshot');
        expect(await run(copy, 'cat /sys/class/misc/hw_random/rng_current; head -c 4096 /dev/hwrng | wc -c')).toMatch(/^virtio_rng.*\n\s*4096\s*$/);
      }
      const draws = await Promise.all(copies.map((copy) => run(copy, 'head -c 32 /dev/hwrng | od -An -tx1 | tr -d " \\n"')));
      expect(draws[0]).toMatch(/^[0-9a-f]{64}$/);
      expect(draws[0]).not.toBe(draws[1]); // the copies do not replay one entropy stream
      expect((await copies[0]!.run(put(32001, 'COPY-A'))).exitCode).toBe(0);
      expect((await copies[1]!.run(put(32001, 'COPY-B'))).exitCode).toBe(0);
      expect(await run(copies[0]!, at(32001))).toBe('COPY-A\n');
      expect(await run(copies[1]!, at(32001))).toBe('COPY-B\n');
      // Neither the original guest nor the image on the host sees either copy's write.
      expect((await sh(at(32001))).output).toBe('\n');
      const image = readFileSync(rw);
      expect(image.subarray(32000 * 512, 32000 * 512 + 6).toString()).toBe('SNAPSH');
      expect(image.subarray(32001 * 512, 32001 * 512 + 6).equals(Buffer.alloc(6))).toBe(true);
    } finally {
      await Promise.all(copies.map((copy) => copy.kill()));
    }
  }, 1_200_000);
});
