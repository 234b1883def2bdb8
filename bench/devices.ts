/**
 * Disk and console figures on a booted guest (the same code for hyve and QEMU TCG), and
 * the host's own figures for the disk image as the limit. The guest has
 * DEVICE_GUEST_DISKS attached and a virtio-console port named 'bench'; benchio does the
 * I/O and times it with the guest's clock, so process start is not part of a figure.
 *
 * - issue 8: sequential read and write MiB/s and 4 KiB random-read IOPS on virtio-blk
 *   (O_DIRECT in the guest: the device, not the guest's page cache); console MiB/s of
 *   the same payload over the UART and over virtio-console (guest → host, timed on the host);
 * - issue 9: sequential read MiB/s of the same image on ahci-hd.
 */
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import type { DiskOptions, Guest } from '../src/index.js';
import { benchioOnHost, parseBenchio, repeat, sh, LONG_MS, type Column, type Results } from './lib.js';

const MIB = 2 ** 20;

export interface DiskFiles {
  /** Random data, read by both interfaces. */
  data: string;
  /** Written by the guest. */
  scratch: string;
  /** Written by the host for its own limit. */
  hostScratch: string;
}

/** Makes the images: `mib` MiB of random data, and a zeroed scratch image of the same size. */
export function makeDiskFiles(dir: string, mib: number): DiskFiles {
  const files = { data: path.join(dir, 'data.img'), scratch: path.join(dir, 'scratch.img'), hostScratch: path.join(dir, 'host-scratch.img') };
  execFileSync('dd', ['if=/dev/urandom', `of=${files.data}`, 'bs=1M', `count=${mib}`], { stdio: 'ignore' });
  execFileSync('dd', ['if=/dev/zero', `of=${files.scratch}`, 'bs=1M', `count=${mib}`], { stdio: 'ignore' });
  readFileSync(files.data); // into the host's page cache, where both VMMs read it from
  return files;
}

/** The device guest's disks: virtio-blk data (read-only), virtio-blk scratch, AHCI data (read-only, /dev/sda). */
export function deviceGuestDisks(files: DiskFiles): DiskOptions[] {
  return [
    { path: files.data, readOnly: true, serial: 'data' },
    { path: files.scratch, serial: 'scratch' },
    { path: files.data, interface: 'ahci', readOnly: true },
  ];
}

export const CONSOLE_PORT = 'bench';

/** The virtio-blk device with this serial (the guest's /dev/vdX). */
async function virtioDisk(guest: Guest, serial: string): Promise<string> {
  const out = await sh(guest, `for d in /sys/block/vd*; do [ "$(cat $d/serial 2>/dev/null)" = ${serial} ] && echo \${d##*/}; done; true`);
  const name = out.trim();
  if (!/^vd[a-z]+$/.test(name)) throw new Error(`no virtio disk with serial ${serial} in the guest: ${out}`);
  return `/dev/${name}`;
}

async function guestBenchio(guest: Guest, args: string): Promise<{ bytes: number; seconds: number }> {
  return parseBenchio(await sh(guest, `/opt/benchio ${args}`));
}

export interface DiskParams {
  runs: number;
  mib: number;
  randomReads: number;
}

/** Disk figures of a booted device guest. */
export async function measureDisks(guest: Guest, column: Column, results: Results, p: DiskParams): Promise<void> {
  const data = await virtioDisk(guest, 'data');
  const scratch = await virtioDisk(guest, 'scratch');
  const mibps = (r: { bytes: number; seconds: number }) => r.bytes / MIB / r.seconds;
  const iops = (r: { bytes: number; seconds: number }) => r.bytes / 4096 / r.seconds;
  results.add(column, 'virtio-blk sequential read', 'MiB/s', true, await repeat(p.runs, async () => mibps(await guestBenchio(guest, `read ${data} ${p.mib} direct`))));
  results.add(column, 'ahci-hd sequential read', 'MiB/s', true, await repeat(p.runs, async () => mibps(await guestBenchio(guest, `read /dev/sda ${p.mib} direct`))));
  results.add(column, 'virtio-blk sequential write', 'MiB/s', true, await repeat(p.runs, async () => mibps(await guestBenchio(guest, `write ${scratch} ${p.mib} direct`))));
  results.add(column, 'virtio-blk 4 KiB random read', 'IOPS', true, await repeat(p.runs, async () => iops(await guestBenchio(guest, `randread ${data} ${p.randomReads} direct`))));
}

/** The host's own figures for the same files (through its page cache, as both VMMs read them). */
export async function measureHostLimit(files: DiskFiles, results: Results, p: DiskParams): Promise<void> {
  const mibps = (r: { bytes: number; seconds: number }) => r.bytes / MIB / r.seconds;
  const read = await repeat(p.runs, async () => mibps(await benchioOnHost(['read', files.data, String(p.mib)])));
  results.add('limit', 'virtio-blk sequential read', 'MiB/s', true, read);
  results.add('limit', 'ahci-hd sequential read', 'MiB/s', true, read);
  results.add('limit', 'virtio-blk sequential write', 'MiB/s', true, await repeat(p.runs, async () => mibps(await benchioOnHost(['write', files.hostScratch, String(p.mib)]))));
  results.add('limit', 'virtio-blk 4 KiB random read', 'IOPS', true, await repeat(p.runs, async () => {
    const r = await benchioOnHost(['randread', files.data, String(p.randomReads)]);
    return r.bytes / 4096 / r.seconds;
  }));
}

/**
 * Console MiB/s, guest → host, of `bytes` of text: over the UART (the guest's console,
 * from the first payload line on the host to the end of the command) and over the
 * virtio-console port (first to last byte on the host).
 */
export async function measureConsoles(guest: Guest, column: Column, results: Results, runs: number, bytes: number): Promise<void> {
  const uart = await repeat(runs, async () => {
    const since = guest.serial.length;
    const started = guest.serial.waitFor('EMIT-START', { since, timeoutMs: LONG_MS }).then(() => performance.now());
    await sh(guest, `/opt/benchio emit ${bytes}`);
    return bytes / MIB / ((performance.now() - (await started)) / 1000);
  });
  results.add(column, `UART console, guest → host (${bytes >> 10} KiB)`, 'MiB/s', true, uart);
  const port = `$(for d in /sys/class/virtio-ports/*; do [ "$(cat $d/name 2>/dev/null)" = ${CONSOLE_PORT} ] && echo \${d##*/}; done)`;
  const virtio = await repeat(runs, async () => {
    const socket = guest.openPort(CONSOLE_PORT);
    const total = bytes + 'EMIT-START\n'.length;
    let got = 0;
    let first = 0;
    const done = new Promise<number>((resolve, reject) => {
      socket.on('data', (chunk: Buffer) => {
        if (got === 0) first = performance.now();
        got += chunk.length;
        if (got >= total) resolve(performance.now());
      });
      socket.on('error', reject);
    });
    await new Promise<void>((resolve, reject) => socket.once('connect', resolve).once('error', reject));
    await sh(guest, `/opt/benchio emit ${bytes} >/dev/${port}`);
    const last = await done;
    socket.destroy();
    return bytes / MIB / ((last - first) / 1000);
  });
  results.add(column, `virtio-console, guest → host (${bytes >> 10} KiB)`, 'MiB/s', true, virtio);
}
