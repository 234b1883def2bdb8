/**
 * Hostile rings from inside a guest: test/guests/virtio_hostile.c drives the virtio-rng
 * function's modern virtio-pci registers with malformed rings (a descriptor loop, a buffer
 * outside RAM, a length near 4 GiB, an available index that jumps, a queue size that is
 * not a power of two, a used index it scribbles over). The VMM stays up, the device
 * reports DEVICE_NEEDS_RESET with a configuration interrupt (virtio 1.x §2.1.2), and after
 * a reset the same device serves a good request again.
 */
import { expect, test } from 'vitest';
import { startVm } from 'hyve';
import { buildGuest } from './helpers/guests.js';

test('malformed rings set NEEDS_RESET; a reset makes the device usable again', async () => {
  const vm = startVm({
    kernel: buildGuest('virtio_hostile'),
    memoryMiB: 64,
    pciDevices: [{ slot: 0, emulation: 'hostbridge' }, { slot: 3, emulation: 'virtio-rnd' }, { slot: 31, emulation: 'lpc' }],
  });
  let output = '';
  vm.on('console', (port, data) => {
    if (port === 0) output += data.toString('latin1');
  });
  const exit = await vm.exited;
  expect(exit.outcome, output).toBe('poweroff');
  const lines = output.split('\n').filter((line) => line.startsWith('hyve-guest: '));
  expect(lines.map((line) => line.slice('hyve-guest: '.length))).toEqual([
    'first request ok',
    'descriptor loop: needs-reset isr-config recovered',
    'address outside RAM: needs-reset isr-config recovered',
    'length near 4 GiB: needs-reset isr-config recovered',
    'available index jump: needs-reset isr-config recovered',
    'queue size 3: needs-reset isr-config recovered',
    'used index jump: device kept its own index recovered',
    'virtio hostile done',
  ]);
}, 120_000);
