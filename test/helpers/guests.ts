/**
 * Bespoke test guests: freestanding C programs in test/guests/, compiled with the
 * system gcc into a cache (never committed) and booted through hyve's normal loader.
 * The cache is in hyve's cache directory, not /tmp: `npm test` builds everything here
 * first (buildAllTestGuests), outside the nested-KVM VM on hosts without /dev/kvm,
 * where gcc runs ten times slower and the VM's /tmp is its own.
 */
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, readdirSync, renameSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { defaultCacheDir, ensureSshOverlay, startVm } from 'hyve';

// Found from the package root, so this works from test/helpers and from its compiled copy.
function packageRoot(): string {
  let dir = path.dirname(fileURLToPath(import.meta.url));
  while (!existsSync(path.join(dir, 'package.json'))) {
    const parent = path.dirname(dir);
    if (parent === dir) throw new Error('cannot find the hyve package root');
    dir = parent;
  }
  return dir;
}
const guestsDir = path.join(packageRoot(), 'test', 'guests');
const runtimeDir = path.join(guestsDir, 'runtime');
const runtimeFiles = ['start.S', 'lib.c', 'guest.h', 'virtio.h', 'guest.ld'].map((f) => path.join(runtimeDir, f));

const cacheDir = path.join(defaultCacheDir(), 'test-guests');

const cflags = [
  '-ffreestanding', '-fno-pic', '-no-pie', '-nostdlib', '-static', '-mno-red-zone', '-mgeneral-regs-only',
  '-fno-stack-protector', '-O2', '-Wall', '-Wextra', '-Werror', '-Wl,--build-id=none,--no-warn-rwx-segments',
];

/** Names of the available test guests (test/guests/NAME.c). */
export function guestNames(): string[] {
  return readdirSync(guestsDir).filter((f) => f.endsWith('.c')).map((f) => f.slice(0, -2));
}

/** Compiles test/guests/NAME.c (cached by content) and returns the ELF path. */
export function buildGuest(name: string): string {
  const source = path.join(guestsDir, `${name}.c`);
  if (!existsSync(source)) throw new Error(`no test guest ${source}`);
  const hash = createHash('sha256');
  for (const file of [...runtimeFiles, source]) hash.update(readFileSync(file));
  hash.update(cflags.join(' '));
  mkdirSync(cacheDir, { recursive: true });
  const output = path.join(cacheDir, `${name}-${hash.digest('hex').slice(0, 16)}.elf`);
  if (!existsSync(output)) {
    const partial = `${output}.${process.pid}.tmp`;
    execFileSync('gcc', [...cflags, `-I${guestsDir}`, '-T', path.join(runtimeDir, 'guest.ld'), '-o', partial,
      path.join(runtimeDir, 'start.S'), path.join(runtimeDir, 'lib.c'), source], { stdio: 'pipe' });
    renameSync(partial, output);
  }
  return output;
}

const programsDir = path.join(packageRoot(), 'test', 'guest-programs');

/**
 * Compiles a static Linux program from test/guest-programs/ (NAME.c plus every .S there)
 * for the default guest, cached by content like the test guests, and returns its path.
 */
export function buildGuestProgram(name: string): string {
  const sources = [path.join(programsDir, `${name}.c`), ...readdirSync(programsDir).filter((f) => f.endsWith('.S')).map((f) => path.join(programsDir, f))];
  const flags = ['-static', '-O2', '-pthread', '-Wall', '-Wextra', '-Werror'];
  const hash = createHash('sha256');
  for (const file of sources) hash.update(readFileSync(file));
  hash.update(flags.join(' '));
  mkdirSync(cacheDir, { recursive: true });
  const output = path.join(cacheDir, `${name}-${hash.digest('hex').slice(0, 16)}`);
  if (!existsSync(output)) {
    const partial = `${output}.${process.pid}.tmp`;
    execFileSync('gcc', [...flags, '-o', partial, ...sources], { stdio: 'pipe' });
    renameSync(partial, output);
  }
  return output;
}

/** The programs in test/guest-programs/ (NAME.c). */
function guestProgramNames(): string[] {
  return readdirSync(programsDir).filter((f) => f.endsWith('.c')).map((f) => f.slice(0, -2));
}

/**
 * Builds every test guest, every guest program and the SSH overlay into the cache: what
 * the tests would otherwise compile on first use.
 */
export async function buildAllTestGuests(): Promise<void> {
  for (const name of guestNames()) buildGuest(name);
  for (const name of guestProgramNames()) buildGuestProgram(name);
  await ensureSshOverlay({ cacheDir: defaultCacheDir() });
}

/**
 * Boots the 'uart' test guest, snapshots it into `dir` while it waits for a line of input
 * (a quiet point), and ends it: a real snapshot in well under a second.
 */
export async function snapshotUartGuest(dir: string): Promise<void> {
  const vm = startVm({ kernel: buildGuest('uart'), memoryMiB: 64 });
  let text = '';
  await new Promise<void>((resolve) => {
    vm.on('console', (_port, data) => {
      text += data.toString('latin1');
      if (text.includes('type a line')) resolve();
    });
  });
  await vm.snapshot(dir);
  vm.kill();
  await vm.exited;
}
