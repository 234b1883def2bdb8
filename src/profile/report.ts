/**
 * `hyve profile-report`: the functions a folded profile spends its samples in, by self
 * time (the sampled instruction was in it) and total time (it was anywhere on the stack).
 */
import type { FoldedStack } from './folded.js';

export interface FunctionCost {
  name: string;
  /** Samples whose leaf is this function. */
  self: number;
  /** Samples with this function anywhere on the stack (counted once per sample). */
  total: number;
}

export interface ProfileSummary {
  samples: number;
  stacks: number;
  functions: FunctionCost[];
  /**
   * Functions called directly by `do_one_initcall` (a Linux boot's initcalls), by total
   * samples; empty when the profile has none.
   */
  initcalls: FunctionCost[];
}

function byCost(a: FunctionCost, b: FunctionCost): number {
  return b.self - a.self || b.total - a.total || (a.name < b.name ? -1 : 1);
}

export function summarize(stacks: readonly FoldedStack[]): ProfileSummary {
  const costs = new Map<string, FunctionCost>();
  const initcalls = new Map<string, FunctionCost>();
  const cost = (map: Map<string, FunctionCost>, name: string) => {
    let c = map.get(name);
    if (!c) map.set(name, (c = { name, self: 0, total: 0 }));
    return c;
  };
  let samples = 0;
  for (const { frames, count } of stacks) {
    samples += count;
    const leaf = frames[frames.length - 1];
    if (leaf !== undefined) cost(costs, leaf).self += count;
    for (const name of new Set(frames)) cost(costs, name).total += count;
    const at = frames.indexOf('do_one_initcall');
    const initcall = at >= 0 ? frames[at + 1] : undefined;
    if (initcall !== undefined) {
      const c = cost(initcalls, initcall);
      c.total += count;
      if (at + 1 === frames.length - 1) c.self += count;
    }
  }
  return {
    samples,
    stacks: stacks.length,
    functions: [...costs.values()].sort(byCost),
    initcalls: [...initcalls.values()].sort((a, b) => b.total - a.total || (a.name < b.name ? -1 : 1)),
  };
}

function percent(part: number, whole: number): string {
  return whole === 0 ? '-' : `${((100 * part) / whole).toFixed(1)}%`;
}

function table(rows: FunctionCost[], samples: number): string[] {
  const lines = [`${'self'.padStart(7)} ${'total'.padStart(7)} ${'samples'.padStart(8)} ${'total#'.padStart(8)}  function`];
  for (const r of rows) {
    lines.push(`${percent(r.self, samples).padStart(7)} ${percent(r.total, samples).padStart(7)} ${String(r.self).padStart(8)} ${String(r.total).padStart(8)}  ${r.name}`);
  }
  return lines;
}

/** The report as text: totals, the top `top` functions by self samples, and the top initcalls. */
export function formatReport(summary: ProfileSummary, top = 25): string {
  const lines = [`${summary.samples} samples in ${summary.stacks} distinct stacks`, '', ...table(summary.functions.slice(0, top), summary.samples)];
  if (summary.initcalls.length > 0) {
    lines.push('', 'initcalls (called by do_one_initcall), by total samples:', ...table(summary.initcalls.slice(0, top), summary.samples));
  }
  return `${lines.join('\n')}\n`;
}
