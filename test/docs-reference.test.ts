/**
 * The reference stays true to the code: every environment variable src/ reads is in the
 * README's table and hyve.1's ENVIRONMENT section, and every error code src/ and the
 * native layer can produce is in docs/errors.md.
 */
import { readFileSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, test } from 'vitest';

const root = path.join(import.meta.dirname, '..');
const read = (file: string) => readFileSync(path.join(root, file), 'utf8');

function sources(dir: string, ext: RegExp): string[] {
  return readdirSync(path.join(root, dir), { recursive: true, encoding: 'utf8' })
    .filter((f) => ext.test(f))
    .map((f) => read(path.join(dir, f)));
}

const src = sources('src', /\.ts$/);
// Reads only: the kernel build deletes MAKEFLAGS and friends from its own environment.
const envVars = [...new Set(src.flatMap((text) => [...text.matchAll(/(?<!delete )(?:process\.env|\benv)\.([A-Z][A-Z0-9_]+)/g)].map((m) => m[1]!)))];
// Codes: string literals in src/ ('HYVE_X'), and the native code table.
const codes = [
  ...new Set([
    ...src.flatMap((text) => [...text.matchAll(/'(HYVE_[A-Z_]+)'/g)].map((m) => m[1]!)),
    ...[...read('native/util/error.cc').matchAll(/return "(HYVE_[A-Z_]+)"/g)].map((m) => m[1]!),
  ]),
].filter((code) => code !== 'HYVE_KERNEL_ARGS'); // a constant, not an error code

describe('environment variables', () => {
  test('src/ reads the ones this test expects to find (the scan works)', () => {
    expect(envVars).toEqual(expect.arrayContaining(['HYVE_CACHE_DIR', 'HYVE_ADDON', 'HYVE_DEBUG', 'HYVE_TRANSCRIPT_DIR']));
  });

  test.each(envVars)('%s is in the README table and in hyve.1 ENVIRONMENT', (name) => {
    const readme = read('README.md');
    const table = readme.slice(readme.indexOf('### Environment variables'), readme.indexOf('### The cache'));
    expect(table).toContain(`| \`${name}\` |`);
    const man = read('hyve.1');
    expect(man.slice(man.indexOf('.Sh ENVIRONMENT'), man.indexOf('.Sh FILES'))).toContain(`.It Ev ${name}\n`);
  });
});

describe('error codes', () => {
  test('the scan finds the native and TypeScript codes', () => {
    expect(codes).toEqual(expect.arrayContaining(['HYVE_NO_KVM', 'HYVE_BAD_SNAPSHOT', 'HYVE_VM_DIED', 'HYVE_TEST_TIMEOUT']));
  });

  test.each(codes)('%s is in docs/errors.md', (code) => {
    expect(read('docs/errors.md')).toContain(`\`${code}\``);
  });
});
