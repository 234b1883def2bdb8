/** Builds the default guest once before any test file runs (about 5 minutes the first time). */
import { ensureDefaultGuest } from 'hyve';

export default async function setup(): Promise<void> {
  // Progress: one status line on a terminal, else a line every few seconds; the kernel
  // build's own output goes to kernel-build.log in the cache.
  await ensureDefaultGuest();
}
