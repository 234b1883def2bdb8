/**
 * A cache of booted-guest snapshots: boot once, restore many times. Entries live in
 * `<cache>/snapshots/<key>/`, where the key covers everything that shapes the booted
 * guest (hyve version, kernel and initrd identity, cmdline, memory, cpus, machine options,
 * ready marker). A changed kernel or option makes a new key; a stale entry is simply
 * never used again.
 *
 * Concurrent workers: one builds under a lock while the others wait, and an entry is
 * written to a temporary directory and renamed into place, so it is complete or absent.
 */
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, readFileSync, statSync } from 'node:fs';
import * as fsp from 'node:fs/promises';
import path from 'node:path';
import { dir as tmpDir, setGracefulCleanup } from 'tmp-promise';
import { defaultCacheDir, withCacheLock, DEFAULT_READY_MARKER } from './fixtures/index.js';
import { bootFiles, bootGuest, type BootGuestOptions } from './guest.js';
import { packageRoot } from './paths.js';
import { parseMemoryMiB } from './size.js';
import { validateEnsureSnapshotOptions } from './validate.js';

setGracefulCleanup();

export interface EnsureSnapshotOptions extends Omit<BootGuestOptions, 'snapshot' | 'verifySnapshot'> {
  /** Default: defaultCacheDir() (HYVE_CACHE_DIR, XDG_CACHE_HOME/hyve or ~/.cache/hyve). */
  cacheDir?: string;
}

export interface CachedSnapshot {
  /** The snapshot directory, for bootGuest({ snapshot }). */
  dir: string;
  key: string;
  /** False when this call booted the guest and wrote the snapshot. */
  cached: boolean;
}

/** native/snapshot/snapshot_file.h's kFormatVersion: a build with another format cannot restore the entry. */
const SNAPSHOT_FORMAT = 4;

function hyveVersion(): string {
  return (JSON.parse(readFileSync(path.join(packageRoot, 'package.json'), 'utf8')) as { version: string }).version;
}

function fileIdentity(file: string | undefined): string | null {
  if (file === undefined) return null;
  const resolved = path.resolve(file);
  const st = statSync(resolved);
  return `${resolved}:${st.size}:${st.mtimeMs}`;
}

/** The cache key of a boot configuration: identical keys boot identical guests. */
export async function snapshotKey(options: EnsureSnapshotOptions = {}): Promise<string> {
  const { kernel, initrd, cmdline } = await bootFiles(options);
  const ready = options.ready ?? DEFAULT_READY_MARKER;
  const identity = {
    hyve: hyveVersion(),
    format: SNAPSHOT_FORMAT,
    kernel: fileIdentity(kernel),
    initrd: fileIdentity(initrd),
    cmdline,
    memoryMiB: parseMemoryMiB(options.memory ?? 256),
    cpus: options.cpus ?? 1,
    machine: options.machine ?? {},
    uuid: options.uuid?.toLowerCase(),
    ...(options.rng ? { rng: true } : {}),
    ...(options.network ? { network: options.network } : {}),
    ...(options.vsock ? { vsock: true } : {}),
    ready: typeof ready === 'string' ? ready : ready instanceof RegExp ? `/${ready.source}/${ready.flags}` : ready.describe(),
  };
  return createHash('sha256').update(JSON.stringify(identity)).digest('hex').slice(0, 20);
}

/**
 * A snapshot of the guest `options` boot, from the cache or made now: boots the guest,
 * waits for it to be ready and its shell to answer, snapshots it, and shuts it down.
 */
export async function ensureSnapshot(options: EnsureSnapshotOptions = {}): Promise<CachedSnapshot> {
  validateEnsureSnapshotOptions(options);
  const { cacheDir = defaultCacheDir(), ...bootOptions } = options;
  const key = await snapshotKey(bootOptions);
  const root = path.join(path.resolve(cacheDir), 'snapshots');
  const dir = path.join(root, key);
  const complete = () => existsSync(path.join(dir, 'state.bin'));
  if (complete()) return { dir, key, cached: true };

  await fsp.mkdir(root, { recursive: true });
  return withCacheLock(
    path.join(root, `${key}.lock`),
    async () => {
      if (complete()) return { dir, key, cached: true };
      // Temporaries of this key left by a holder of this lock that was killed outright
      // (SIGKILL skips tmp-promise's exit hook): the lock is ours, so none is in use.
      for (const entry of await fsp.readdir(root)) {
        if (entry.startsWith(`${key}.tmp-`)) await fsp.rm(path.join(root, entry), { recursive: true, force: true });
      }
      // Beside the entry (rename needs the same filesystem); tmp-promise removes it when
      // this process exits, even in the middle of a boot.
      const temporaryDir = await tmpDir({ tmpdir: root, prefix: `${key}.tmp-`, unsafeCleanup: true });
      const temporary = temporaryDir.path;
      try {
        const guest = await bootGuest(bootOptions);
        try {
          // Round trips through the shell: the snapshot then holds a guest idle at its
          // prompt, with its clock right (restores move it on from there).
          await guest.syncClock();
          await guest.snapshot(temporary);
        } finally {
          await guest.kill();
        }
        await fsp.rm(dir, { recursive: true, force: true }); // a partial leftover, if any
        await fsp.rename(temporary, dir);
      } finally {
        // Gone already once renamed into place.
        await temporaryDir.cleanup().catch((error: NodeJS.ErrnoException) => {
          if (error.code !== 'ENOENT') throw error;
        });
      }
      return { dir, key, cached: false };
    },
    { onProgress: bootOptions.onProgress, signal: bootOptions.signal },
  );
}

/** Removes a cache entry (e.g. one a restore refused), so the next ensureSnapshot() rebuilds it. */
export async function discardSnapshot(snapshot: CachedSnapshot, cacheDir = defaultCacheDir()): Promise<void> {
  const root = path.join(path.resolve(cacheDir), 'snapshots');
  await withCacheLock(path.join(root, `${snapshot.key}.lock`), async () => {
    const aside = `${snapshot.dir}.discard-${randomBytes(4).toString('hex')}`;
    await fsp.rename(snapshot.dir, aside).catch(() => {});
    await fsp.rm(aside, { recursive: true, force: true });
  });
}
