/**
 * Boot phases of a profiled VM: when the first console output came, when the kernel
 * started /init, when the harness saw the guest ready, and when the VM ended, each by
 * the VM's clock and by the profiler's running sample count. The VM child records them
 * next to the folded stacks (`<file>.phases.json`: the folded format has no room for
 * them), and `hyve profile-report` prints them as a table.
 */
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { INIT_REACHED } from '../diagnostics.js';

export type PhaseMark = 'console' | 'init' | 'ready' | 'end';

export interface PhaseRecord {
  mark: PhaseMark;
  /** Milliseconds since the VM started running. */
  ms: number;
  /** Samples the profiler had taken by then (all vCPUs). */
  samples: number;
}

const LABELS: Record<PhaseMark, string> = {
  console: 'start to first console output',
  init: 'to /init started',
  ready: 'to ready',
  end: 'to the end of the VM',
};

export function phasesFileFor(profileFile: string): string {
  return `${profileFile}.phases.json`;
}

/** Marks phases as console output and events arrive; each mark is kept once, in order. */
export class PhaseRecorder {
  readonly records: PhaseRecord[] = [];
  private tail = '';

  constructor(private readonly now: () => { ms: number; samples: number }) {}

  console(data: Buffer): void {
    if (this.has('init')) return;
    this.mark('console');
    // The marker can straddle chunks: keep the end of the last one.
    const text = this.tail + data.toString('latin1');
    if (INIT_REACHED.test(text)) this.mark('init');
    this.tail = text.slice(-64);
  }

  mark(mark: PhaseMark): void {
    if (!this.has(mark)) this.records.push({ mark, ...this.now() });
  }

  write(profileFile: string): void {
    writeFileSync(phasesFileFor(profileFile), `${JSON.stringify({ phases: this.records }, null, 2)}\n`);
  }

  private has(mark: PhaseMark): boolean {
    return this.records.some((r) => r.mark === mark);
  }
}

/** The phases written next to a profile, or undefined when there are none. */
export function readPhases(profileFile: string): PhaseRecord[] | undefined {
  const file = phasesFileFor(profileFile);
  if (!existsSync(file)) return undefined;
  const parsed = JSON.parse(readFileSync(file, 'utf8')) as { phases?: unknown };
  if (!Array.isArray(parsed.phases)) throw new Error(`${file} has no phases list`);
  return parsed.phases.map((p: Partial<PhaseRecord>, i) => {
    if (!p || !(p.mark! in LABELS) || typeof p.ms !== 'number' || typeof p.samples !== 'number') {
      throw new Error(`${file}: phase ${i + 1} is not { mark, ms, samples }`);
    }
    return { mark: p.mark!, ms: p.ms, samples: p.samples };
  });
}

/** The phases as a table: each phase's end, length and samples since the previous mark. */
export function formatPhases(phases: readonly PhaseRecord[]): string {
  const total = phases.reduce((max, p) => Math.max(max, p.samples), 0);
  const lines = [`${'phase'.padEnd(32)} ${'ends at'.padStart(9)} ${'lasts'.padStart(9)} ${'samples'.padStart(8)} ${'share'.padStart(6)}`];
  let previous = { ms: 0, samples: 0 };
  for (const p of phases) {
    const samples = p.samples - previous.samples;
    const share = total === 0 ? '-' : `${((100 * samples) / total).toFixed(1)}%`;
    lines.push(
      `${LABELS[p.mark].padEnd(32)} ${`${(p.ms / 1000).toFixed(2)} s`.padStart(9)} ${`${((p.ms - previous.ms) / 1000).toFixed(2)} s`.padStart(9)} ${String(samples).padStart(8)} ${share.padStart(6)}`,
    );
    previous = p;
  }
  return `${lines.join('\n')}\n`;
}
