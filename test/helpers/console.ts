/**
 * run() for tests that compare a command's output exactly. The console is shared with the
 * kernel, and run() says so: a kernel message printed while the command runs is part of
 * its output. On a slow host (PVM, or the nested-KVM VM under TCG) the kernel's timing
 * checks fire at a random moment in each guest's first seconds, restored copies included:
 * the clocksource watchdog marks the TSC unstable, hrtimer reports a long interrupt. Those
 * lines are dropped here; every other line stays, so a real kernel complaint still fails
 * the comparison.
 */
import type { Guest, RunOptions, RunResult } from 'hyve';

const TIMING_NOISE = /^(?:clocksource|tsc|sched_clock|hrtimer): .*(?:\n|$)/gm;

/** `output` without the kernel's timing-check lines. */
export function withoutTimingNoise(output: string): string {
  return output.replace(TIMING_NOISE, '');
}

/** guest.run(), with the kernel's timing-check lines taken out of its output. */
export async function runCommand(guest: Guest, command: string, options?: RunOptions): Promise<RunResult> {
  const result = await guest.run(command, options);
  return { ...result, output: withoutTimingNoise(result.output) };
}
