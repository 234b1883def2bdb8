/** Locations inside the installed package, independent of the caller's cwd. */
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/**
 * The directory holding hyve's package.json, found by walking up from this module, so it
 * is right both for the compiled dist/src/paths.js and for src/paths.ts run from source.
 */
function findPackageRoot(): string {
  let dir = path.dirname(fileURLToPath(import.meta.url));
  for (;;) {
    const pkg = path.join(dir, 'package.json');
    if (existsSync(pkg)) {
      try {
        if ((JSON.parse(readFileSync(pkg, 'utf8')) as { name?: unknown }).name === 'hyve') return dir;
      } catch {
        // not ours; keep walking up
      }
    }
    const parent = path.dirname(dir);
    if (parent === dir) throw new Error('hyve: cannot locate the package root (a package.json named "hyve")');
    dir = parent;
  }
}

export const packageRoot = findPackageRoot();
