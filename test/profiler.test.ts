/**
 * The guest profiler on bespoke guests: a guest spinning in a known function shows up as
 * that function, with its callers; a guest whose frame pointers point anywhere at all
 * (outside RAM, into loops, through a broken page table) neither crashes nor stalls the
 * sampler. The default guest's boot is profiled in profiler-boot.test.ts.
 */
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, expect, test } from 'vitest';
import { loadSymbols, parseFolded, readPhases, startVm, summarize, VmStartError } from 'hyve';
import { buildGuest } from './helpers/guests.js';
import { runCli } from './helpers/cli.js';


const dir = mkdtempSync(path.join(os.tmpdir(), 'hyve-profile-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function consoleOf(vm: ReturnType<typeof startVm>) {
  let text = '';
  const waiters: { pattern: string; resolve: () => void }[] = [];
  vm.on('console', (_port, data) => {
    text += data.toString('utf8');
    for (const w of waiters.splice(0)) {
      if (text.includes(w.pattern)) w.resolve();
      else waiters.push(w);
    }
  });
  return {
    waitFor: (pattern: string) =>
      new Promise<void>((resolve) => (text.includes(pattern) ? resolve() : waiters.push({ pattern, resolve }))),
    get text() {
      return text;
    },
  };
}

test('a guest spinning in a known function: that function dominates, under its callers', async () => {
  const kernel = buildGuest('profile');
  const file = path.join(dir, 'spin.folded');
  const hz = 200;
  const vm = startVm({ kernel, cmdline: 'spin', memoryMiB: 32, profile: { file, hz } });
  const serial = consoleOf(vm);
  await serial.waitFor('hyve-guest: spinning');
  const spinStart = performance.now();
  await new Promise((r) => setTimeout(r, 1500));
  vm.write('x');
  const exit = await vm.exited;
  const spinSeconds = (performance.now() - spinStart) / 1000;
  expect(exit.outcome, exit.message).toBe('poweroff');

  // The guest ELF is its own symbol file (startVm's default for an ELF kernel).
  const stacks = parseFolded(readFileSync(file, 'utf8'));
  const summary = summarize(stacks);
  const spin = summary.functions.find((f) => f.name === 'profile_spin');
  expect(spin, readFileSync(file, 'utf8')).toBeDefined();
  expect(spin!.self / summary.samples).toBeGreaterThan(0.8);
  expect(summary.functions[0]!.name).toBe('profile_spin');
  // Its callers, by frame pointers, root first.
  const top = stacks.sort((a, b) => b.count - a.count)[0]!;
  expect(top.frames.slice(-3)).toEqual(['profile_outer', 'profile_middle', 'profile_spin']);
  // About rate x time. A sample needs the vCPU thread on a CPU: on a machine shared with
  // other VMs it gets a fraction of the wall time, so the lower bound is loose.
  expect(spin!.self).toBeGreaterThan(0.1 * hz * 1.5);
  expect(summary.samples).toBeLessThan(1.5 * hz * (spinSeconds + 2));

  // Phases beside the profile: the first console output, then the end (no /init, and
  // startVm has no ready marker), the end holding about every sample.
  const phases = readPhases(file)!;
  expect(phases.map((p) => p.mark)).toEqual(['console', 'end']);
  expect(phases[1]!.ms).toBeGreaterThanOrEqual(phases[0]!.ms + 1000);
  expect(phases[1]!.samples).toBeGreaterThan(phases[0]!.samples);
  expect(phases[1]!.samples).toBeLessThanOrEqual(summary.samples);
  expect(phases[1]!.samples).toBeGreaterThan(0.9 * summary.samples);

  // hyve profile-report: the same function on top of its table, then the phases.
  const report = runCli(['profile-report', file, '--top', '5']);
  expect(report.status, report.stderr).toBe(0);
  expect(report.stdout).toMatch(/^\d+ samples in \d+ distinct stacks/);
  const firstRow = report.stdout.split('\n')[3]!;
  expect(firstRow).toMatch(/^\s+\d+\.\d% +\d+\.\d%.* profile_spin$/);
  expect(report.stdout).toMatch(/^start to first console output +\d+\.\d\d s +\d+\.\d\d s +\d+ +\d+\.\d%$/m);
  expect(report.stdout).toMatch(/^to the end of the VM +\d+\.\d\d s/m);
});

test('hyve --profile writes a named profile; --print-options carries it over', () => {
  const kernel = buildGuest('profile');
  const file = path.join(dir, 'cli.folded');
  const result = runCli(['--profile', file, '--profile-hz', '1000', '-l', 'com1,stdio', '-f', `kexec,${kernel},,spin`], { input: 'x' });
  expect(result.status, result.stderr).toBe(0);
  expect(result.stdout).toContain('hyve-guest: spin done');
  expect(() => parseFolded(readFileSync(file, 'utf8'))).not.toThrow();
  expect(readFileSync(file, 'utf8')).not.toMatch(/0x/);  // named with the ELF kernel's symbols

  const printed = runCli(['--print-options', '--profile=p.folded', '--profile-hz', '20', '-f', `kexec,${kernel},,`], { cwd: dir });
  expect(printed.status, printed.stderr).toBe(0);
  expect(JSON.parse(printed.stdout).profile).toEqual({ file: path.join(dir, 'p.folded'), hz: 20 });
  expect(runCli(['--profile-hz', '20', '-f', `kexec,${kernel},,`]).stderr).toMatch(/need --profile file/);
  expect(runCli(['profile-report']).status).toBe(1);
});

test('frame pointers outside RAM, in loops or through a broken page table: the sampler carries on', async () => {
  const kernel = buildGuest('profile');
  const file = path.join(dir, 'hostile.folded');
  const vm = startVm({ kernel, cmdline: 'hostile', memoryMiB: 32, profile: { file, hz: 1000 } });
  const serial = consoleOf(vm);
  const phases = 8;
  for (let n = 1; n <= phases; n++) {
    await serial.waitFor(`hyve-guest: phase ${n}\n`);
    await new Promise((r) => setTimeout(r, 250));
    vm.write('x');
  }
  const exit = await vm.exited;
  expect(exit.outcome, exit.message).toBe('poweroff');
  expect(serial.text).toContain('hyve-guest: hostile done');
  const stacks = parseFolded(readFileSync(file, 'utf8'));
  const waits = stacks.filter((s) => s.frames.at(-1) === 'hostile_wait');
  expect(waits.reduce((n, s) => n + s.count, 0)).toBeGreaterThan(phases * 25);  // 250 each at full speed
  // Every walk stopped: no stack deeper than the walker's cap of 64 addresses.
  expect(Math.max(...stacks.map((s) => s.frames.length))).toBeLessThanOrEqual(64);
  // The deep chain phase reached that cap; the loops stopped after one lap.
  expect(waits.some((s) => s.frames.length === 64)).toBe(true);
}, 60_000);

test('profile options are checked before any process starts', () => {
  const kernel = buildGuest('profile');
  expect(() => startVm({ kernel, profile: { file: '' } })).toThrow(VmStartError);
  expect(() => startVm({ kernel, profile: { file: 'x', hz: 0 } })).toThrow(/hz/);
  expect(() => startVm({ kernel, profile: { file: 'x', rate: 5 } as never })).toThrow(/profile/);
});

test('symbols: an ELF symbol table and a System.map resolve addresses to the containing function', () => {
  const kernel = buildGuest('profile');
  const symbols = loadSymbols(kernel);
  expect(symbols.size).toBeGreaterThan(5);
  expect(existsSync(kernel)).toBe(true);
  const map = path.join(dir, 'System.map');
  writeFileSync(map, 'ffffffff81000000 T _stext\nffffffff81000100 t helper\nffffffff82000000 D some_data\n');
  const table = loadSymbols(map);
  expect(table.resolve(0xffffffff81000010n)).toBe('_stext');
  expect(table.resolve(0xffffffff81000180n)).toBe('helper');
  expect(table.resolve(0xffffffff80000000n)).toBeUndefined();
});

test('summarize: self and total samples, each sample counted once per function, initcalls by total', () => {
  const stacks = parseFolded(
    [
      'kernel_init;do_one_initcall;pci_init;pci_read 6',
      'kernel_init;do_one_initcall;pci_init 2',
      'kernel_init;do_one_initcall;acpi_init;f;f 3',
      '[user] 9',
    ].join('\n'),
  );
  const summary = summarize(stacks);
  expect(summary.samples).toBe(20);
  expect(summary.functions[0]).toEqual({ name: '[user]', self: 9, total: 9 });
  expect(summary.functions.find((f) => f.name === 'f')).toEqual({ name: 'f', self: 3, total: 3 });
  expect(summary.functions.find((f) => f.name === 'do_one_initcall')).toEqual({ name: 'do_one_initcall', self: 0, total: 11 });
  expect(summary.initcalls).toEqual([
    { name: 'pci_init', self: 2, total: 8 },
    { name: 'acpi_init', self: 0, total: 3 },
  ]);
  expect(() => parseFolded('no count here')).toThrow(/line 1/);
});
