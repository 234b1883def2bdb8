/**
 * `hyve profile-report file [--symbols file] [--top n]`: the top functions of a profile
 * written by `hyve --profile` or bootGuest({ profile }), by self and total samples, and
 * the initcalls of a Linux boot, and the boot's phases when the VM recorded them.
 */
import { readFileSync } from 'node:fs';
import { parseFolded, symbolize } from '../profile/folded.js';
import { formatPhases, phasesFileFor, readPhases } from '../profile/phases.js';
import { formatReport, summarize } from '../profile/report.js';
import { loadSymbols } from '../profile/symbols.js';

export const profileReportUsage = `usage: hyve profile-report file [--symbols file] [--top n]
  file             folded stacks written by hyve --profile or bootGuest({ profile })
  --symbols file   a vmlinux (ELF) or System.map to name addresses the profile left in hex
  --top n          how many functions to list (default 25)`;

export function profileReport(argv: string[]): number {
  let file: string | undefined;
  let symbols: string | undefined;
  let top = 25;
  for (let i = 0; i < argv.length; i++) {
    const word = argv[i]!;
    if (word === '--symbols' || word === '--top') {
      const value = argv[++i];
      if (value === undefined) return usage(`${word} needs an argument`);
      if (word === '--symbols') symbols = value;
      else if (!/^\d+$/.test(value) || Number(value) < 1) return usage(`--top must be a whole number of at least 1, got '${value}'`);
      else top = Number(value);
    } else if (word === '-h' || word === '--help') {
      process.stdout.write(`${profileReportUsage}\n`);
      return 0;
    } else if (word.startsWith('-') || file !== undefined) {
      return usage(`unexpected argument '${word}'`);
    } else file = word;
  }
  if (file === undefined) return usage('the profile file is missing');
  try {
    let stacks = parseFolded(readFileSync(file, 'utf8'));
    if (symbols !== undefined) stacks = symbolize(stacks, loadSymbols(symbols));
    process.stdout.write(formatReport(summarize(stacks), top));
    const phases = readPhases(file);
    if (phases) process.stdout.write(`\nboot phases (from ${phasesFileFor(file)}):\n${formatPhases(phases)}`);
    return 0;
  } catch (error) {
    process.stderr.write(`hyve profile-report: ${(error as Error).message}\n`);
    return 1;
  }
}

function usage(problem: string): number {
  process.stderr.write(`hyve profile-report: ${problem}\n${profileReportUsage}\n`);
  return 1;
}
