/** In the VM child, once the VMM has written a profile: names its addresses. */
import { closeSync, existsSync, openSync, readSync } from 'node:fs';
import { symbolizeFile } from './folded.js';
import { loadSymbols } from './symbols.js';
import type { ProfileOptions } from './index.js';

function isElf(file: string): boolean {
  const fd = openSync(file, 'r');
  try {
    const magic = Buffer.alloc(4);
    return readSync(fd, magic, 0, 4, 0) === 4 && magic.equals(Buffer.from([0x7f, 0x45, 0x4c, 0x46]));
  } finally {
    closeSync(fd);
  }
}

/**
 * Symbolizes the profile in place with `profile.symbols`, or the kernel itself when it is
 * an ELF file. Returns a message for the VM's log when something went wrong, else undefined.
 */
export function finishProfile(profile: ProfileOptions, kernel: string | undefined): string | undefined {
  if (!existsSync(profile.file)) return `profile: the VMM wrote no profile to ${profile.file}`;
  try {
    const symbols = profile.symbols ?? (kernel !== undefined && isElf(kernel) ? kernel : undefined);
    if (symbols === undefined) return undefined;  // hex addresses stay; profile-report --symbols names them
    symbolizeFile(profile.file, loadSymbols(symbols));
    return undefined;
  } catch (error) {
    return `profile: cannot name the addresses in ${profile.file}: ${(error as Error).message}`;
  }
}
