/**
 * Debian's stock kernel, which nobody here configured, boots to the default initramfs's
 * /init and runs a command, on the console and over SSH: the initrd also carries the
 * kernel's own virtio-pci and vsock modules and hyve's SSH overlay (as `hyve initramfs
 * --with-ssh` appends it), which is how a user's foreign kernel gets guest.exec(). On hosts without hardware virtualization this takes many
 * minutes (its kernel mode runs under an instruction emulator), so it lives apart from
 * the fast tests: `npm run test:fast` skips it, `npm test` (CI) runs it once.
 */
import { expect, test } from 'vitest';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { bootGuest, defaultCacheDir, ensureDefaultGuest, ensureSshOverlay, fetchDebianKernel } from 'hyve';
import { concatInitrds, CpioWriter } from '../../dist/src/fixtures/cpio.js';

/** Debian builds these as modules; in dependency order (the package ships no modules.dep). */
const VSOCK_MODULES = [
  'drivers/virtio/virtio_ring.ko',
  'drivers/virtio/virtio.ko',
  'drivers/virtio/virtio_pci_legacy_dev.ko',
  'drivers/virtio/virtio_pci_modern_dev.ko',
  'drivers/virtio/virtio_pci.ko',
  'net/vmw_vsock/vsock.ko',
  'net/vmw_vsock/vmw_vsock_virtio_transport_common.ko',
  'net/vmw_vsock/vmw_vsock_virtio_transport.ko',
];

/**
 * `initrd` with the SSH overlay (what `hyve initramfs --with-ssh` appends) and, after it,
 * an archive whose /load-modules (run as rdinit) loads VSOCK_MODULES and then execs the
 * overlay's init (SSH_KERNEL_ARGS), which starts the SSH server and execs the initrd's
 * own /init.
 */
async function withModulesAndSsh(initrd: string, modules: string, dir: string): Promise<string> {
  const cpio = new CpioWriter();
  cpio.dir('hyve-modules', 0o755);
  for (const module of VSOCK_MODULES) cpio.file(`hyve-modules/${path.basename(module)}`, readFileSync(path.join(modules, 'kernel', module)), 0o644);
  const load = VSOCK_MODULES.map((module) => `/bin/busybox insmod /hyve-modules/${path.basename(module)}`).join('\n');
  cpio.file('load-modules', `#!/bin/sh\n${load}\nexec /hyve/init "$@"\n`, 0o755);
  const overlay = await ensureSshOverlay({ cacheDir: defaultCacheDir() });
  const output = path.join(dir, 'initrd.cpio');
  writeFileSync(output, concatInitrds([readFileSync(initrd), readFileSync(overlay.path), cpio.toBuffer()]));
  return output;
}

test(
  "Debian's linux-image-amd64 kernel boots to /init and runs busybox",
  async () => {
    const debian = await fetchDebianKernel({ cacheDir: defaultCacheDir() });
    const work = mkdtempSync(path.join(os.tmpdir(), 'hyve-debian-'));
    const initrd = await withModulesAndSsh((await ensureDefaultGuest()).initrd, debian.modules, work);
    const started = performance.now();
    // Kernel arguments that change nothing the test checks and save time where the guest
    // kernel is emulated (profiled on a PVM host at 20 Hz, shares of all samples):
    // - rodata=off skips the W+X page-table walk after mark_rodata_ro (CONFIG_DEBUG_WX,
    //   about 14%); init_on_alloc=0 skips zeroing every allocation (about 1%).
    // - initcall_blacklist= skips initcalls whose work nothing here uses:
    //   ftrace_check_for_weak_functions: a kallsyms lookup for each of the 40,521 ftrace
    //     records (get_symbol_offset & co. were 16.7%, 0.6% without it);
    //   cubictcp_register, tcp_congestion_default (falls back to reno without asking
    //     modprobe for cubic) and the five built-in kfunc registrations (bpf_tcp_ca_kfunc_init,
    //     bpf_key_sig_kfuncs_init, bpf_rstat_kfunc_init, kfunc_init, bpf_prog_test_run_init):
    //     the first of them parses the kernel's whole BTF (btf_* functions 5.9%, 0% without);
    //   and, by their share of an initcall_debug boot's time: trace_eval_init and
    //     tracer_init_tracefs (trace events' enum rewriting and tracefs files, 3.5% for
    //     the first alone), slab_sysfs_init (/sys/kernel/slab, 1.7%),
    //     load_system_certificate_list (module signing keys, 1.0%), blake2s_mod_init (a
    //     self-test, 0.9%); and by their time in a later initcall_debug boot:
    //     crypto_kdf108_init (a self-test whose hmac(sha256) lookup asks for a module and
    //     so waits for the initramfs and runs /sbin/modprobe, 74 s of an 828 s boot),
    //     init_encrypted (the "encrypted" key type, 12 s) and inet6_init (IPv6, 18 s).
    //   Each initcall's name then goes through kallsyms once (671 lookups, within the 0.6%).
    // - psi=0 and cgroup_disable=memory: no pressure-stall or memory-cgroup accounting on
    //   each switch, fault and allocation (psi_* 0.7%, memcg_* 0.5%).
    const blacklist = [
      'ftrace_check_for_weak_functions',
      'cubictcp_register',
      'tcp_congestion_default',
      'bpf_tcp_ca_kfunc_init',
      'bpf_key_sig_kfuncs_init',
      'bpf_rstat_kfunc_init',
      'kfunc_init',
      'bpf_prog_test_run_init',
      'trace_eval_init',
      'tracer_init_tracefs',
      'slab_sysfs_init',
      'load_system_certificate_list',
      'blake2s_mod_init',
      'crypto_kdf108_init',
      'init_encrypted',
      'inet6_init',
    ];
    const guest = await bootGuest({
      kernel: debian.vmlinuz,
      initrd,
      cmdline: `rdinit=/load-modules rodata=off init_on_alloc=0 psi=0 cgroup_disable=memory initcall_blacklist=${blacklist.join(',')}`,
      vsock: true,
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
      // The same kernel answers over SSH, through its own vsock driver.
      const exec = await guest.exec('uname -r; lsmod | grep -c vsock');
      expect(exec.stdout.split('\n')[0]).toBe(debian.version);
      expect(Number(exec.stdout.split('\n')[1])).toBeGreaterThanOrEqual(3);
      expect(exec.exitCode).toBe(0);
    } finally {
      await guest[Symbol.asyncDispose]();
      rmSync(work, { recursive: true, force: true });
    }
  },
  70 * 60_000,
);
