/** Bad input to the loader and the VMM: each a clear error with a stable code, never a crash. */
import { readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { beforeAll, describe, expect, test } from 'vitest';
import { ensureDefaultGuest, requireHypervisor, startVm, VmProcess, VmStartError, type DefaultGuest } from 'hyve';
import { hostIsPvm } from '../src/host.js';
import { buildGuest } from './helpers/guests.js';

let defaults: DefaultGuest;
beforeAll(async () => {
  defaults = await ensureDefaultGuest();
}, 900_000);

function tempFile(name: string, data: Buffer): string {
  const file = path.join(os.tmpdir(), `hyve-${process.pid}-${name}`);
  writeFileSync(file, data);
  return file;
}

async function startError(options: Parameters<typeof startVm>[0]): Promise<VmStartError> {
  const vm = startVm(options);
  const error = await vm.started.then(
    () => undefined,
    (e: unknown) => e,
  );
  const exit = await vm.exited;
  expect(exit.code).toBe(1);
  expect(exit.signal ?? null).toBeNull(); // the VM process exited on its own, no crash
  expect(error).toBeInstanceOf(VmStartError);
  return error as VmStartError;
}

describe('the loader refuses bad kernels and initrds', () => {
  test('missing kernel file', async () => {
    const error = await startError({ kernel: '/nonexistent/vmlinuz' });
    expect(error.code).toBe('HYVE_BAD_KERNEL');
    expect(error.message).toContain('/nonexistent/vmlinuz');
  });

  test('random bytes', async () => {
    const junk = Buffer.alloc(1 << 20);
    for (let i = 0; i < junk.length; i++) junk[i] = (i * 7919 + (i >> 8)) & 0xff;
    const error = await startError({ kernel: tempFile('junk', junk) });
    expect(error.code).toBe('HYVE_BAD_KERNEL');
    expect(error.message).toMatch(/not a Linux kernel image/);
  });

  test('a bzImage cut in half', async () => {
    const image = readFileSync(defaults.kernel);
    const error = await startError({ kernel: tempFile('half-bzImage', image.subarray(0, image.length >> 1)) });
    expect(error.code).toBe('HYVE_BAD_KERNEL');
    expect(error.message).toMatch(/truncated|beyond the end|corrupt/i);
  });

  test('a relocatable bzImage whose pref_address wraps around the address space', async () => {
    const image = Buffer.from(readFileSync(defaults.kernel));
    // No compression magic: the host leaves the payload to the kernel's own decompressor,
    // the path that places the image at pref_address.
    const payload = (image[0x1f1]! + 1) * 512 + image.readUInt32LE(0x248);
    image[payload] = 0;
    image[0x234] = 1; // relocatable_kernel
    image.writeBigUInt64LE(0xffff_ffff_ffe0_0000n, 0x258); // pref_address
    const error = await startError({ kernel: tempFile('wrapping-bzImage', image), memoryMiB: 64 });
    // Before: aligning it wrapped to 0 and the kernel was loaded over the boot area.
    expect(error.code).toBe('HYVE_BAD_KERNEL');
    expect(error.message).toMatch(/pref_address 0xffffffffffe00000 .* wraps around the address space/);
  });

  test('a corrupt compressed initrd', async () => {
    const gzipHeaderThenJunk = Buffer.concat([Buffer.from([0x1f, 0x8b, 0x08, 0x00]), Buffer.alloc(4096, 0x5a)]);
    const error = await startError({ kernel: buildGuest('pci'), initrd: tempFile('bad-initrd.gz', gzipHeaderThenJunk) });
    expect(error.code).toBe('HYVE_BAD_INITRD');
  });

  test('a command line longer than the kernel accepts', async () => {
    const error = await startError({ kernel: defaults.kernel, cmdline: 'x'.repeat(5000) });
    expect(error.code).toBe('HYVE_BAD_CONFIG');
    expect(error.message).toMatch(/command line/i);
  });
});

describe('the VMM refuses machines the host cannot give', () => {
  test('more memory than the host has', async () => {
    const hostMiB = Math.floor(os.totalmem() / 2 ** 20);
    const error = await startError({ kernel: buildGuest('pci'), memoryMiB: (hostMiB * 4) & ~1 });
    expect(error.code).toBe('HYVE_MEMORY');
    expect(error.message).toMatch(/more than this host/);
  });

  test('zero vCPUs: startVm refuses them at once, and the VMM on its own too', async () => {
    expect(() => startVm({ kernel: buildGuest('pci'), cpus: 0 })).toThrow(/option 'cpus' must be a whole number from 1 to 64/);
    // The VMM's own check, reached through the unchecked VmProcess.
    const vm = new VmProcess({ kernel: buildGuest('pci'), cpus: 0 });
    const error = await vm.started.catch((e: unknown) => e);
    expect(error).toBeInstanceOf(VmStartError);
    expect((error as VmStartError).code).toBe('HYVE_BAD_CONFIG');
    expect((await vm.exited).signal ?? null).toBeNull();
  });
});

describe('the board refuses PCI devices it cannot build', () => {
  test('an unknown PCI emulation is refused by name', async () => {
    const error = await startError({ kernel: buildGuest('pci'), memoryMiB: 64, pciDevices: [{ slot: 3, emulation: 'virtio-tpm' }] });
    expect(error.code).toBe('HYVE_BAD_CONFIG');
    expect(error.message).toContain("unknown PCI emulation 'virtio-tpm'");
    expect(error.message).toContain('hostbridge, lpc');
  });

  test('two functions at one address', async () => {
    const error = await startError({
      kernel: buildGuest('pci'),
      memoryMiB: 64,
      pciDevices: [
        { slot: 0, emulation: 'hostbridge' },
        { slot: 0, emulation: 'lpc' },
      ],
    });
    expect(error.code).toBe('HYVE_BAD_CONFIG');
  });

  test('arguments to an emulation that takes none', async () => {
    const error = await startError({ kernel: buildGuest('pci'), memoryMiB: 64, pciDevices: [{ slot: 0, emulation: 'hostbridge', args: 'x' }] });
    expect(error.code).toBe('HYVE_BAD_CONFIG');
    expect(error.message).toContain('takes no arguments');
  });
});

test('requireHypervisor() names the hypervisor the VMs here run on, as the VM itself reports it', async () => {
  const info = requireHypervisor();
  expect(info.name).toBe(hostIsPvm() ? 'kvm-pvm' : 'kvm');
  expect(info.emulatesGuestKernel).toBe(hostIsPvm());
  const vm = startVm({ kernel: buildGuest('power'), memoryMiB: 16 });
  const stats = await vm.started;
  await vm.exited;
  expect(stats?.hypervisor).toBe(info.name);
});
