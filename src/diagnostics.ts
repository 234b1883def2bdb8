/** Errors that say what happened to a guest, how far it got, and where its transcript is. */
import { mkdirSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { tailLines } from './serial.js';
import type { VmExit } from './vm-process.js';

/** How far a boot got, judged from the console. */
export type BootPhase = 'not started' | 'kernel started' | 'console up' | '/init reached' | 'ready';

/** The kernel's last messages before it starts /init. */
export const INIT_REACHED = /Run \S+ as init process|Freeing unused kernel image/;

/** Reads the boot phase off a transcript. */
export function bootPhase(started: boolean, transcript: string, ready: boolean): BootPhase {
  if (ready) return 'ready';
  if (INIT_REACHED.test(transcript)) return '/init reached';
  if (transcript.length > 0) return 'console up';
  return started ? 'kernel started' : 'not started';
}

/**
 * Where a kernel console message starts: at the start of a line, or after its printk
 * timestamp (`[    1.234567] `, optionally with the caller id `[    T1]`), which may follow
 * other output on the same line (a shell prompt the kernel interrupted). Failure patterns
 * are anchored there, so a program printing `DEBUG: x` or `no BUG: here` is not
 * mistaken for the kernel.
 */
const PRINTK_PREFIX = String.raw`(?:^|\[\s*\d+\.\d+\](?:\[\s*[CT]\d+\])? ?)`;

/**
 * Console lines that mean the guest kernel is broken (bootGuest's default `failOn`): a
 * panic, a BUG() report, an Oops, each as the kernel formats it at the start of a line.
 */
export const KERNEL_FAILURE_PATTERNS: readonly RegExp[] = Object.freeze([
  new RegExp(`${PRINTK_PREFIX}Kernel panic - not syncing`),
  new RegExp(`${PRINTK_PREFIX}BUG: `),
  new RegExp(`${PRINTK_PREFIX}Oops: `),
]);

/**
 * Lines the kernel prints when a user program crashes (`prog[42]: segfault at ...`,
 * `traps: prog[42] general protection fault ...`): recorded as warnings, not failures.
 */
export const USER_CRASH_PATTERNS: readonly RegExp[] = Object.freeze([
  new RegExp(`${PRINTK_PREFIX}\\S.*\\[\\d+\\]: segfault at `),
  new RegExp(`${PRINTK_PREFIX}traps: \\S.*\\[\\d+\\] `),
]);

/** How many warning lines a guest keeps (a crash loop must not grow memory without bound). */
export const MAX_WARNINGS = 100;

/** Directory for failure transcripts: HYVE_TRANSCRIPT_DIR, else <tmp>/hyve-transcripts. */
export function transcriptDir(): string {
  return process.env.HYVE_TRANSCRIPT_DIR ?? path.join(os.tmpdir(), 'hyve-transcripts');
}

/** How many transcripts the directory keeps: saving one more removes the oldest beyond this. */
export const MAX_TRANSCRIPTS = 100;

/** Saves a transcript for a failure report; returns its path (or undefined if it can't be written). */
export function saveTranscript(name: string, transcript: string): string | undefined {
  try {
    const file = newTranscriptPath(name);
    writeFileSync(file, transcript);
    return file;
  } catch {
    return undefined;
  }
}

/**
 * A new transcript file's path in the transcript directory (made if needed), after the
 * oldest transcripts beyond MAX_TRANSCRIPTS have been removed. Throws if the directory
 * cannot be made.
 */
export function newTranscriptPath(name: string): string {
  const dir = transcriptDir();
  mkdirSync(dir, { recursive: true });
  pruneTranscripts(dir, MAX_TRANSCRIPTS - 1);
  const stamp = new Date().toISOString().replace(/[:.]/g, '-');
  return path.join(dir, `${name}-${stamp}-${process.pid}-${Math.random().toString(36).slice(2, 8)}.log`);
}

/** Removes the oldest transcripts (*.log) beyond the newest `keep`. Best effort. */
function pruneTranscripts(dir: string, keep: number): void {
  const logs: { file: string; mtimeMs: number }[] = [];
  for (const entry of readdirSync(dir)) {
    if (!entry.endsWith('.log')) continue;
    const file = path.join(dir, entry);
    try {
      const st = statSync(file);
      if (st.isFile()) logs.push({ file, mtimeMs: st.mtimeMs });
    } catch {
      // removed meanwhile by another process
    }
  }
  if (logs.length <= keep) return;
  logs.sort((a, b) => b.mtimeMs - a.mtimeMs);
  for (const { file } of logs.slice(keep)) rmSync(file, { force: true });
}

export interface GuestErrorDetails {
  /** What went wrong, in a few words: 'timeout', 'kernel panic', 'exited', 'killed', ... */
  reason: string;
  phase: BootPhase;
  exit?: VmExit;
  transcript: string;
  transcriptPath?: string;
  /** Console lines worth knowing about that did not end the guest (user-space crashes). */
  warnings?: readonly string[];
}

/**
 * A guest failed: it timed out, panicked, or its VM ended early. The message carries the
 * boot phase, the last console lines and the path of the full transcript.
 */
export class GuestError extends Error {
  readonly reason: string;
  readonly phase: BootPhase;
  readonly exit: VmExit | undefined;
  readonly transcriptPath: string | undefined;
  /** The last ~30 console lines. */
  readonly lastLines: string;
  /** User-space crash lines the kernel printed before the failure (see Guest.warnings). */
  readonly warnings: readonly string[];

  constructor(summary: string, details: GuestErrorDetails) {
    const lastLines = tailLines(details.transcript, 30);
    const parts = [
      summary,
      `boot phase reached: ${details.phase}`,
      details.exit ? `VM outcome: ${details.exit.outcome} (exit code ${details.exit.code})${details.exit.message ? `: ${details.exit.message}` : ''}` : undefined,
      details.warnings?.length ? `warnings (user-space crashes the kernel reported):\n${details.warnings.join('\n')}` : undefined,
      details.transcriptPath ? `full console transcript: ${details.transcriptPath}` : undefined,
      lastLines.trim() ? `last console lines:\n${lastLines}` : 'the guest printed nothing on its console',
    ];
    super(parts.filter(Boolean).join('\n'));
    this.name = 'GuestError';
    this.reason = details.reason;
    this.phase = details.phase;
    this.exit = details.exit;
    this.transcriptPath = details.transcriptPath;
    this.lastLines = lastLines;
    this.warnings = details.warnings ?? [];
  }
}
