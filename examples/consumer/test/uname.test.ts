// What a user's repository looks like: one guest for the file, shared by its tests.
import { expect } from 'vitest';
import { guestTest } from 'hyve/vitest';

const test = guestTest({ memory: '128M', scope: 'file' });

test('the guest runs a 6.1 kernel', async ({ guest }) => {
  const { output, exitCode } = await guest.run('uname -r');
  expect(exitCode).toBe(0);
  expect(output).toMatch(/^6\.1\.\d+/);
});

test('commands see the guest filesystem', async ({ guest }) => {
  await guest.run('echo persisted > /tmp/note');
  const { output } = await guest.run('cat /tmp/note');
  expect(output).toBe('persisted\n');
});
