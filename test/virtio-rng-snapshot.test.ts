/**
 * virtio-rng through a snapshot: one boot of the default guest with `rng: true` makes the
 * cached snapshot ('auto'), and each test gets a restored copy whose virtio transport and
 * queue state came back from it, field by field, and still serves requests.
 */
import { beforeAll, expect } from 'vitest';
import { guestTest } from 'hyve/vitest';

const test = guestTest({ snapshot: 'auto', rng: true, memory: '256M', timeoutMs: 1_100_000 });

// A loaded 2-core PVM host has taken over 5 minutes for the boot behind the snapshot.
beforeAll(() => test.prepareSnapshot(), 1_200_000);

test('a restored guest still reads /dev/hwrng from virtio, and two reads differ', async ({ guest }) => {
  expect((await guest.stats())?.bootPath).toBe('snapshot');
  const current = await guest.run('cat /sys/class/misc/hw_random/rng_current');
  expect(current.output).toMatch(/^virtio_rng/);
  const a = await guest.run('head -c 32 /dev/hwrng | od -An -tx1 | tr -d " \\n"');
  const b = await guest.run('head -c 32 /dev/hwrng | od -An -tx1 | tr -d " \\n"');
  expect(a.output).toMatch(/^[0-9a-f]{64}$/);
  expect(b.output).toMatch(/^[0-9a-f]{64}$/);
  expect(a.output).not.toBe(b.output);
}, 300_000);

test('and a second restored copy of the same snapshot too', async ({ guest }) => {
  const { output, exitCode } = await guest.run('head -c 4096 /dev/hwrng | wc -c');
  expect(exitCode).toBe(0);
  expect(output.trim()).toBe('4096');
}, 300_000);
