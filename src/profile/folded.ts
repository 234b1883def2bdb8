/**
 * Folded stacks (`root;caller;leaf count` per line), the format the VMM's profiler writes
 * and flame-graph tools (flamegraph.pl, inferno, speedscope) read.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import type { SymbolTable } from './symbols.js';

export interface FoldedStack {
  /** Root first. */
  frames: string[];
  count: number;
}

/** Parses folded stacks; throws on a line that is not `frames count`. */
export function parseFolded(text: string): FoldedStack[] {
  const stacks: FoldedStack[] = [];
  text.split('\n').forEach((line, i) => {
    if (line.trim() === '') return;
    const m = /^(.*\S)\s+(\d+)$/.exec(line);
    if (!m) throw new Error(`line ${i + 1} is not folded stack data ('frame;frame count'): ${line.slice(0, 80)}`);
    stacks.push({ frames: m[1]!.split(';'), count: Number(m[2]) });
  });
  return stacks;
}

export function formatFolded(stacks: readonly FoldedStack[]): string {
  return stacks.map((s) => `${s.frames.join(';')} ${s.count}\n`).join('');
}

const HEX_FRAME = /^0x[0-9a-f]+$/i;

/** Replaces hex addresses with function names where `symbols` knows them, merging stacks that become equal. */
export function symbolize(stacks: readonly FoldedStack[], symbols: SymbolTable): FoldedStack[] {
  const merged = new Map<string, FoldedStack>();
  for (const stack of stacks) {
    const frames = stack.frames.map((f) => (HEX_FRAME.test(f) ? (symbols.resolve(BigInt(f)) ?? f) : f));
    const key = frames.join(';');
    const entry = merged.get(key);
    if (entry) entry.count += stack.count;
    else merged.set(key, { frames, count: stack.count });
  }
  return [...merged.values()].sort((a, b) => b.count - a.count || (a.frames.join(';') < b.frames.join(';') ? -1 : 1));
}

/** Rewrites a folded file in place with names from `symbols`. */
export function symbolizeFile(file: string, symbols: SymbolTable): void {
  writeFileSync(file, formatFolded(symbolize(parseFolded(readFileSync(file, 'utf8')), symbols)));
}
