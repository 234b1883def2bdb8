/**
 * `npm run bench`: hyve next to QEMU TCG on the same host, the same guest (the default
 * guest's kernel and initramfs, the same kernel arguments, the same disk images), one VM at
 * a time, figures as medians in tables with hyve's speed relative to QEMU's and the host's
 * own limit where there is one.
 *
 *   boot     process start → ready marker, and one console command (run('true')), on
 *            `runs` fresh boots of the default guest per side (issue 15)
 *   disk     virtio-blk sequential read/write MiB/s and 4 KiB random-read IOPS, ahci-hd
 *            sequential read MiB/s, the host file's own figures (issues 8, 9)
 *   console  the same payload over the UART and over virtio-console (issue 8)
 *   net      user networking (hyve's libslirp, QEMU's slirp): TCP both ways and connect
 *            round trip (issue 10)
 *   tap      the same through a tap in a network namespace made here (root only; hyve only)
 *
 * `--sides hyve,qemu,qemu-passt` adds QEMU with passt (Debian `passt`) as its user-mode
 * stack: net only, guest → host only (see passtPath), as `passt:` rows in the QEMU column,
 * to weigh passt against libslirp.
 *
 * disk, console and net share one boot per side of a guest with every device attached.
 * Usage: node dist/bench/index.js [--runs 3] [--only boot,disk,console,net,tap] [--sides hyve,qemu]
 *   [--disk-mib 16] [--random-reads 500] [--console-kib 16] [--net-kib 1024] [--connects 10]
 */
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { ensureDefaultGuest, type Guest } from '../src/index.js';
import { NO_ECHO_ARG } from '../src/fixtures/index.js';
import { CONSOLE_PORT, deviceGuestDisks, makeDiskFiles, measureConsoles, measureDisks, measureHostLimit } from './devices.js';
import { columnOf, hyve, initrdWithBenchio, median, printHeader, printTable, qemuPasst, qemuTcg, repeat, Results, vmProcessesRunning, type Side, type SideOptions } from './lib.js';
import { HELLO_PORT, SINK_PORT, makeTapNamespace, measureNetwork, passtPath, startGuestServers, userPath } from './network.js';

const SECTIONS = ['boot', 'disk', 'console', 'net', 'tap'] as const;

const { values } = parseArgs({
  options: {
    runs: { type: 'string', default: '3' },
    only: { type: 'string', default: SECTIONS.join(',') },
    sides: { type: 'string', default: 'hyve,qemu' },
    'disk-mib': { type: 'string', default: '16' },
    'random-reads': { type: 'string', default: '500' },
    'console-kib': { type: 'string', default: '16' },
    'net-kib': { type: 'string', default: '1024' },
    connects: { type: 'string', default: '10' },
  },
});
const count = (name: keyof typeof values): number => {
  const n = Number(values[name]);
  if (!Number.isInteger(n) || n < 1) throw new Error(`--${name} must be a positive integer, not ${values[name]}`);
  return n;
};
const runs = count('runs');
const only = new Set(String(values.only).split(','));
for (const name of only) if (!(SECTIONS as readonly string[]).includes(name)) throw new Error(`--only: no section ${name} (${SECTIONS.join(', ')})`);
const sides: Side[] = String(values.sides).split(',').map((name) => {
  if (name === 'hyve') return hyve;
  if (name === 'qemu') return qemuTcg;
  if (name === 'qemu-passt') return qemuPasst;
  throw new Error(`--sides: hyve, qemu or qemu-passt, not ${name}`);
});

async function bootSection(): Promise<void> {
  const results = new Results();
  // Alternating sides, so a change in the host's load touches both alike.
  for (let run = 0; run < runs; run++) {
    for (const side of sides.filter((s) => s !== qemuPasst)) {
      const { guest, readyMs } = await side.boot({});
      try {
        results.add(columnOf(side), 'process start → ready marker', 's', false, [readyMs / 1000]);
        const commands = await repeat(5, async () => {
          const started = performance.now();
          await guest.run('true', { timeoutMs: 600_000 });
          return performance.now() - started;
        });
        results.add(columnOf(side), "run('true') round trip (median of 5 per boot)", 'ms', false, [median(commands)]);
      } finally {
        await guest.kill();
      }
    }
  }
  printTable(`boot: the default guest, ${runs} boots per side`, results.rows);
}

async function deviceSections(work: string): Promise<void> {
  const defaults = await ensureDefaultGuest();
  const diskParams = { runs, mib: count('disk-mib'), randomReads: count('random-reads') };
  const files = makeDiskFiles(work, diskParams.mib);
  const options: SideOptions = {
    kernel: defaults.kernel,
    initrd: initrdWithBenchio(defaults.initrd, work),
    cmdline: NO_ECHO_ARG, // as bootGuest() gives the default guest
    disks: deviceGuestDisks(files),
    ports: [CONSOLE_PORT],
    network: 'user',
    forwardPorts: [{ guest: SINK_PORT }, { guest: HELLO_PORT }],
  };
  const disks = new Results();
  const consoles = new Results();
  const network = new Results();
  for (const side of sides) {
    const { guest } = await side.boot(options);
    try {
      if (side === qemuPasst) {
        // Network only: its rows are passt's own, in the QEMU column next to QEMU's libslirp.
        if (only.has('net')) {
          const net = await passtPath(guest);
          await measureNetwork(guest, net, columnOf(side), network, { runs, bytes: count('net-kib') * 1024, connects: count('connects') });
        }
        continue;
      }
      if (only.has('disk')) await measureDisks(guest, columnOf(side), disks, diskParams);
      if (only.has('console')) await measureConsoles(guest, columnOf(side), consoles, runs, count('console-kib') * 1024);
      if (only.has('net')) {
        const net = userPath(guest);
        await startGuestServers(guest, net);
        await measureNetwork(guest, net, columnOf(side), network, { runs, bytes: count('net-kib') * 1024, connects: count('connects') });
      }
    } finally {
      await guest.kill();
    }
  }
  if (only.has('disk')) {
    await measureHostLimit(files, disks, diskParams);
    printTable(`disk: ${diskParams.mib} MiB image, O_DIRECT in the guest; limit: benchio on the host file (page cache)`, disks.rows);
  }
  if (only.has('console')) printTable('console', consoles.rows);
  if (only.has('net')) printTable(`network: user-mode (libslirp in both${sides.includes(qemuPasst) ? '; passt rows: QEMU with passt' : ''})`, network.rows);
}

async function tapSection(work: string): Promise<void> {
  if (process.getuid?.() !== 0) {
    console.log('\ntap: not measured (needs root for ip netns and ip tuntap)');
    return;
  }
  const defaults = await ensureDefaultGuest();
  const tap = makeTapNamespace();
  let guest: Guest | undefined;
  try {
    ({ guest } = await hyve.boot({ kernel: defaults.kernel, initrd: initrdWithBenchio(defaults.initrd, work), cmdline: NO_ECHO_ARG, network: { tap: tap.tap } }));
    await tap.attach(guest);
    await startGuestServers(guest, tap.net);
    const results = new Results();
    await measureNetwork(guest, tap.net, 'hyve', results, { runs, bytes: count('net-kib') * 1024, connects: count('connects') });
    const mtu = (await guest.run('cat /sys/class/net/eth0/mtu')).output.trim();
    printTable(`network: tap in a namespace made here, MTU ${mtu} (QEMU not measured: its peer figure is user networking)`, results.rows);
  } finally {
    await guest?.kill();
    tap.dispose();
  }
}

async function main(): Promise<void> {
  printHeader('benchmarks beside QEMU TCG', runs);
  const work = mkdtempSync(path.join(os.tmpdir(), 'hyve-bench-'));
  try {
    if (only.has('boot')) await bootSection();
    if (only.has('disk') || only.has('console') || only.has('net')) await deviceSections(work);
    if (only.has('tap')) await tapSection(work);
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
  console.log(`\nload average at the end: ${os.loadavg().map((l) => l.toFixed(2)).join(' ')}; VM processes running: ${vmProcessesRunning()}`);
}

main().catch((error: Error) => {
  console.error(`benchmark failed: ${error.stack ?? error.message}`);
  process.exit(1);
});
