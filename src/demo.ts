/**
 * The README's main job: boot the default guest, run two commands through its console,
 * print what they said with timings, and power it off.
 */
import { bootGuest } from './guest.js';
import { hostIsPvm } from './host.js';

function seconds(ms: number): string {
  return `${(ms / 1000).toFixed(2)} s`;
}

async function main(): Promise<void> {
  const t0 = performance.now();
  if (hostIsPvm()) {
    console.log('note: /dev/kvm here is PVM (no hardware virtualization): the guest kernel runs under');
    console.log('      an instruction emulator, so booting takes about a minute instead of well under a second.');
  }
  console.log('booting the default guest (the first run builds its kernel: ~5 minutes)...');
  // Without onProgress, a build shows as one status line (a line every few seconds
  // without a terminal); the compiler's output goes to the build log in the cache.
  const guest = await bootGuest();
  const booted = performance.now();
  console.log(`guest ready after ${seconds(booted - t0)} (vm pid ${guest.pid})`);
  try {
    for (const command of ['uname -a', 'cat /proc/cpuinfo | head -5']) {
      const start = performance.now();
      const { output, exitCode } = await guest.run(command);
      console.log(`\n$ ${command}    # exit ${exitCode}, ${seconds(performance.now() - start)}`);
      process.stdout.write(output);
    }
    const start = performance.now();
    const exit = await guest.shutdown();
    console.log(`\nshutdown: ${exit.outcome} (exit code ${exit.code}) in ${seconds(performance.now() - start)}`);
  } finally {
    await guest[Symbol.asyncDispose]();
  }
}

main().catch((error: Error) => {
  console.error(`hyve demo failed: ${error.message}`);
  process.exit(1);
});
