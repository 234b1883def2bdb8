#!/usr/bin/env node
/** The `hyve` command. `hyve fixtures` builds the default guest into the cache. */
import { ensureDefaultGuest, fetchDebianKernel, defaultCacheDir } from './fixtures/index.js';

const usage = `usage: hyve fixtures [--debian-kernel]
  fixtures          build the default guest (kernel + initramfs) into ${defaultCacheDir()}
  --debian-kernel   also fetch Debian's stock kernel (for tests that boot it)`;

async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  if (command === 'fixtures') {
    const unknown = rest.filter((a) => a !== '--debian-kernel');
    if (unknown.length) {
      console.error(`hyve fixtures: unknown option ${unknown[0]}\n${usage}`);
      return 1;
    }
    const onProgress = (line: string) => process.stderr.write(`${line}\n`);
    const guest = await ensureDefaultGuest({ onProgress });
    console.log(`kernel   ${guest.kernel}\nvmlinux  ${guest.vmlinux}\ninitrd   ${guest.initrd}`);
    if (rest.includes('--debian-kernel')) {
      const debian = await fetchDebianKernel({ cacheDir: defaultCacheDir(), onProgress });
      console.log(`debian   ${debian.vmlinuz} (${debian.version})`);
    }
    return 0;
  }
  if (command === '-h' || command === '--help' || command === undefined) {
    console.log(usage);
    return command === undefined ? 1 : 0;
  }
  console.error(`hyve: unknown command ${command}\n${usage}`);
  return 1;
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (error: Error) => {
    console.error(`hyve: ${error.message}`);
    process.exit(1);
  },
);
