/** Locations inside the installed package, independent of the caller's cwd. */
import { fileURLToPath } from 'node:url';
import path from 'node:path';

// This file is compiled to dist/src/paths.js: the package root is two levels up.
export const packageRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
