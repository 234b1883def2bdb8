/**
 * Console volume: each chunk of guest output costs the test process time linear in its
 * size, memory holds at most a capped window, and what drops out of memory is handed on
 * (a Guest appends it to its transcript file) so the full transcript survives.
 */
import { describe, expect, test } from 'vitest';
import { SerialConsole } from 'hyve';

const chunk = (i: number, size: number) => Buffer.from(`line ${i} `.padEnd(size - 1, '.') + '\n');

describe('SerialConsole under a chatty guest', () => {
  test('32 MiB in 16 KiB chunks with a wait pending throughout: linear time, memory at the cap', async () => {
    const spilled: number[] = [];
    const serial = new SerialConsole(() => {}, { maxRetainedChars: 4 * 2 ** 20, spill: (text) => spilled.push(text.length) });
    const never = serial.waitFor('never printed');
    never.catch(() => {});
    const total = 32 * 2 ** 20;
    const size = 16 * 1024;
    const started = process.cpuUsage();
    for (let i = 0; i < total / size; i++) serial.push(chunk(i, size));
    const used = process.cpuUsage(started);
    // Each chunk once, plus an 8 KiB match window: well under a second. Rescanning or
    // copying the whole transcript per chunk (before) is about 64 GB of copying: minutes.
    expect((used.user + used.system) / 1e6).toBeLessThan(10);
    expect(serial.length).toBe(total);
    expect(serial.output.length).toBeLessThanOrEqual(4 * 2 ** 20);
    expect(serial.droppedChars + serial.output.length).toBe(total);
    expect(spilled.reduce((a, b) => a + b, 0)).toBe(serial.droppedChars); // nothing lost on the way to disk
    serial.close(new Error('done'));
    await expect(never).rejects.toThrow('done');
  });

  test('offsets stay absolute once output was dropped: waitFor since, slice, length', async () => {
    const serial = new SerialConsole(() => {}, { maxRetainedChars: 64 * 1024 });
    for (let i = 0; i < 64; i++) serial.push(chunk(i, 4096));
    expect(serial.droppedChars).toBeGreaterThan(0);
    const since = serial.length;
    serial.push(Buffer.from('HYVE-END-1:0\n'));
    const match = await serial.waitFor(/HYVE-END-1:(\d+)\n/, { since, timeoutMs: 1000 });
    expect(match.index).toBe(since);
    expect(serial.slice(since, since + 12)).toBe('HYVE-END-1:0');
    expect(serial.output.endsWith('HYVE-END-1:0\n')).toBe(true);
    // A wait from before the dropped part finds what is still retained.
    await expect(serial.waitFor('line 63 ', { since: 0, timeoutMs: 1000 })).resolves.toBeTruthy();
  });

  test('a match split across chunks is found, from a wait registered before either', async () => {
    const serial = new SerialConsole(() => {});
    const waiting = serial.waitFor('login:', { timeoutMs: 1000 });
    serial.push(Buffer.from('x'.repeat(20_000) + 'log'));
    serial.push(Buffer.from('in: '));
    expect((await waiting).index).toBe(20_000);
  });
});
