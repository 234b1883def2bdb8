/**
 * Debian's stock kernel, which nobody here configured, boots to the default initramfs's
 * /init and runs a command. On hosts without hardware virtualization this takes many
 * minutes (its kernel mode runs under an instruction emulator), so it lives apart from
 * the fast tests: `npm run test:fast` skips it, `npm test` (CI) runs it once.
 */
import { expect, test } from 'vitest';
import { bootGuest, defaultCacheDir, ensureDefaultGuest, fetchDebianKernel } from 'hyve';

test(
  "Debian's linux-image-amd64 kernel boots to /init and runs busybox",
  async () => {
    const debian = await fetchDebianKernel({ cacheDir: defaultCacheDir() });
    const { initrd } = await ensureDefaultGuest();
    const started = performance.now();
    // Kernel arguments that change nothing the test checks and save time where the guest
    // kernel is emulated (profiled on a PVM host): rodata=off skips the W+X page-table
    // walk after mark_rodata_ro (CONFIG_DEBUG_WX, about 14% of the boot there);
    // init_on_alloc=0 skips zeroing every allocation (about 1%).
    const guest = await bootGuest({
      kernel: debian.vmlinuz,
      initrd,
      cmdline: 'rodata=off init_on_alloc=0',
      timeoutMs: 60 * 60_000,
    });
    try {
      const bootSeconds = (performance.now() - started) / 1000;
      const { output } = await guest.run('uname -r', { timeoutMs: 600_000 });
      expect(output.trim()).toBe(debian.version);
      const stats = await guest.stats();
      console.log(
        `Debian ${debian.version}: ready after ${bootSeconds.toFixed(1)} s; ` +
          `bzImage ${stats?.kernelCompression} payload decompressed on the host in ${stats?.decompressMs.toFixed(0)} ms`,
      );
      expect(stats?.bootPath).toBe('host-decompressed');
    } finally {
      await guest[Symbol.asyncDispose]();
    }
  },
  70 * 60_000,
);
