/**
 * AHCI (xhyve's ahci-hd and ahci-cd). One default-guest boot holds an AHCI disk with an
 * ext4 image made on the host (mke2fs -d), an AHCI CD-ROM with an ISO made on the host
 * (xorriso), and a virtio-blk disk beside them; the guest's writes are read back on the
 * host with debugfs after it powers off; a restored copy of a snapshot of that guest reads
 * both AHCI drives from the snapshot's copies. A bespoke guest drives the HBA with hostile
 * command lists: the VMM stays up and the port's registers report each error.
 */
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { execFileSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { bootGuest, startVm, type Guest } from 'hyve';
import { buildGuest } from './helpers/guests.js';
import { runCommand } from './helpers/console.js';

const work = mkdtempSync(path.join(os.tmpdir(), 'hyve-ahci-'));
const tree = path.join(work, 'tree');
mkdirSync(tree, { recursive: true });
writeFileSync(path.join(tree, 'hello.txt'), 'made on the host for ahci\n');
const ext4 = (name: string) => {
  const file = path.join(work, name);
  execFileSync('mke2fs', ['-q', '-F', '-t', 'ext4', '-d', tree, '-L', name, file, '16M']);
  return file;
};
const hd = ext4('hd.img');
const vd = ext4('vd.img');
// 300 KiB of random bytes on the CD: more than one 2048-byte block, a partial last one.
const cdTree = path.join(work, 'cd');
mkdirSync(cdTree);
const payload = randomBytes(300 * 1024 + 123);
writeFileSync(path.join(cdTree, 'payload.bin'), payload);
const iso = path.join(work, 'cd.iso');
execFileSync('xorriso', ['-as', 'mkisofs', '-quiet', '-R', '-V', 'HYVECD', '-o', iso, cdTree], { stdio: 'pipe' });
const sha256 = (data: Buffer) => createHash('sha256').update(data).digest('hex');
const isoHash = sha256(readFileSync(iso));

let guest: Guest;

beforeAll(async () => {
  // A loaded 2-core PVM host has taken over 5 minutes for a boot.
  guest = await bootGuest({
    timeoutMs: 1_100_000,
    memory: '256M',
    disks: [
      { path: hd, interface: 'ahci', serial: 'hyve-ahci-1' },
      { path: iso, interface: 'ahci-cd' },
      { path: vd },
    ],
  });
  await guest.run('dmesg -n 1');
}, 1_200_000);

afterAll(async () => {
  await guest?.kill();
  rmSync(work, { recursive: true, force: true });
});

const sh = async (command: string) => runCommand(guest, command, { timeoutMs: 180_000 });

describe('ahci on the default guest', () => {
  test('Linux binds ahci to the ICH8 controllers and finds a disk, a CD-ROM and the virtio disk', async () => {
    const { output, exitCode } = await sh(
      'for d in sda sr0 vda; do test -b /dev/$d && echo $d; done; cat /sys/block/sda/device/model /sys/block/sr0/device/model /sys/block/sda/size; ls /sys/bus/pci/drivers/ahci | grep 0000:',
    );
    const dmesg = (await sh('dmesg | grep -iE "ata[0-9]|ahci|scsi|sr0|sda" | tail -n 60')).output;
    expect(exitCode, dmesg).toBe(0);
    expect(output, dmesg).toMatch(/^sda\nsr0\nvda\nHYVE AHCI DISK *\nAHCI CD-ROM *\n32768\n0000:00:04\.0\n0000:00:05\.0\n$/);
  }, 300_000);

  test('the guest reads the ext4 image on the AHCI disk and writes a file the host reads back', async () => {
    const read = await sh('mkdir -p /mnt/hd && mount -t ext4 /dev/sda /mnt/hd && cat /mnt/hd/hello.txt');
    expect(read).toMatchObject({ exitCode: 0, output: 'made on the host for ahci\n' });
    const write = await sh('echo written over ahci > /mnt/hd/guest.txt && sync && fstrim -v /mnt/hd >/dev/null 2>&1; umount /mnt/hd && echo ok');
    expect(write.output).toBe('ok\n');
    const back = execFileSync('debugfs', ['-R', 'cat /guest.txt', hd], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
    expect(back).toBe('written over ahci\n');
  }, 300_000);

  test('the guest mounts the ISO on /dev/sr0, reads a file byte-exact, and cannot write to it', async () => {
    const { output, exitCode } = await sh(
      'mkdir -p /mnt/cd && mount -t iso9660 -o ro /dev/sr0 /mnt/cd && sha256sum /mnt/cd/payload.bin | cut -d" " -f1 && cat /sys/block/sr0/queue/logical_block_size',
    );
    expect(exitCode).toBe(0);
    expect(output).toBe(`${sha256(payload)}\n2048\n`);
    const write = await sh('dd if=/dev/zero of=/dev/sr0 bs=2048 count=1 2>/dev/null; echo dd=$?; touch /mnt/cd/x 2>/dev/null; echo touch=$?');
    expect(write.output).toMatch(/^dd=[1-9]\d*\ntouch=[1-9]\d*\n$/);
    expect(sha256(readFileSync(iso))).toBe(isoHash);
  }, 300_000);

  test('the virtio-blk disk beside them still works', async () => {
    const { output, exitCode } = await sh('mkdir -p /mnt/vd && mount -t ext4 /dev/vda /mnt/vd && cat /mnt/vd/hello.txt && umount /mnt/vd');
    expect(exitCode).toBe(0);
    expect(output).toBe('made on the host for ahci\n');
  }, 300_000);

  test('a restored copy of a snapshot reads the CD byte-exact and writes to its own copy of the AHCI disk', async () => {
    // The CD is still mounted (from the test above); the page cache is dropped in the copy,
    // so its reads reach the restored controller and the snapshot's copy of the ISO.
    const dir = path.join(work, 'snapshot');
    await guest.snapshot(dir);
    const copy = await bootGuest({ snapshot: dir, timeoutMs: 600_000 });
    try {
      const run = (command: string) => copy.run(command, { timeoutMs: 180_000 });
      const cd = await run('echo 3 > /proc/sys/vm/drop_caches; sha256sum /mnt/cd/payload.bin | cut -d" " -f1');
      expect(cd).toMatchObject({ exitCode: 0, output: `${sha256(payload)}\n` });
      const disk = await run(
        'mount -t ext4 /dev/sda /mnt/hd && echo from the copy > /mnt/hd/copy.txt && sync && umount /mnt/hd && mount -t ext4 /dev/sda /mnt/hd && cat /mnt/hd/copy.txt /mnt/hd/guest.txt && umount /mnt/hd',
      );
      expect(disk).toMatchObject({ exitCode: 0, output: 'from the copy\nwritten over ahci\n' });
    } finally {
      await copy.kill();
    }
    // The copy wrote to its own copy of the disk: neither the image nor the snapshot's file has it.
    const ls = (image: string) => execFileSync('debugfs', ['-R', 'ls /', image], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
    expect(ls(hd)).toContain('guest.txt');
    expect(ls(hd)).not.toContain('copy.txt');
    expect(ls(path.join(dir, 'device-pci-00-04.0-ahci-hd.port0.disk'))).not.toContain('copy.txt');
  }, 900_000);

  test('a write synced before power-off is in the image', async () => {
    const { exitCode } = await sh('mount -t ext4 /dev/sda /mnt/hd && echo second > /mnt/hd/second.txt && sync');
    expect(exitCode).toBe(0);
    await guest.kill();
    const back = execFileSync('debugfs', ['-R', 'cat /second.txt', hd], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
    expect(back).toBe('second\n');
  }, 300_000);
});

describe('ahci with a hostile driver', () => {
  test('bad addresses, lengths and FIS fields end in the port error registers; the VMM stays up', async () => {
    const vm = startVm({
      kernel: buildGuest('ahci_hostile'),
      memoryMiB: 64,
      pciDevices: [
        { slot: 0, emulation: 'hostbridge' },
        { slot: 4, emulation: 'ahci-hd', args: hd },
        { slot: 31, emulation: 'lpc' },
      ],
    });
    let output = '';
    vm.on('console', (port, data) => {
      if (port === 0) output += data.toString('latin1');
    });
    const exit = await vm.exited;
    expect(exit, output).toMatchObject({ outcome: 'poweroff', code: 0 });
    const line = (name: string) => {
      const m = new RegExp(`ahci ${name} is 0x([0-9a-f]+) serr 0x([0-9a-f]+) tfd 0x([0-9a-f]+) ci 0x([0-9a-f]+) prdbc (\\d+)`).exec(output);
      expect(m, `${name} in:\n${output}`).not.toBeNull();
      const [is, serr, tfd, ci] = m!.slice(1, 5).map((h) => parseInt(h!, 16)) as [number, number, number, number];
      return { is, serr, tfd, ci, prdbc: Number(m![5]) };
    };
    expect(output).toMatch(/ahci cap 0x0*81241f00 sig 0x0*101 ssts 0x0*123/); // S64A, SCLO, SAM, Gen2, 32 slots, no NCQ
    expect(line('identify')).toMatchObject({ is: 0x3, serr: 0, tfd: 0x50, ci: 0, prdbc: 512 });
    const hbfs = 1 << 29, ofs = 1 << 24, ifs = 1 << 27, tfes = 1 << 30;
    for (const name of ['prd-beyond-ram', 'prd-in-pci-hole', 'prd-straddles-end', 'table-outside-ram', 'all-slots']) {
      const r = line(name);
      expect(r.is & hbfs, name).toBe(hbfs);
      expect(r.serr & (1 << 11), name).toBe(1 << 11); // SERR.E: internal error
      expect(r.tfd, name).toBe(0x451); // ERR, with ABRT
      expect(r.ci & 1, name).toBe(1); // the failed slot stays issued until ST is cleared
    }
    expect(line('no-prdt').is & ofs).toBe(ofs);
    expect(line('oversized-count').is & ofs).toBe(ofs);
    expect(line('lba-past-end')).toMatchObject({ tfd: 0x1451 }); // IDNF | ABRT
    expect(line('lba-past-end').is & tfes).toBe(tfes);
    expect(line('fis-length-0').is & ifs).toBe(ifs);
    expect(line('fis-length-0').serr & (1 << 10)).toBe(1 << 10); // SERR.P: protocol error
    expect(output).toMatch(/ahci stopped-port ci 0x0+\n/);
    expect(line('recovered')).toMatchObject({ serr: 0, tfd: 0x50, ci: 0, prdbc: 512 });
    expect(output).toContain('ahci done');
  }, 300_000);
});
