/** Checks for KVM, then builds the default guest once before any test file runs (about 5 minutes the first time). */
import { ensureDefaultGuest, requireHypervisor } from 'hyve';

export default async function setup(): Promise<void> {
  // Every test file boots guests: a machine without /dev/kvm fails here in milliseconds,
  // with the reason, instead of after the kernel build.
  requireHypervisor();
  // Progress: one status line on a terminal, else a line every few seconds; the kernel
  // build's own output goes to kernel-build.log in the cache.
  await ensureDefaultGuest();
}
