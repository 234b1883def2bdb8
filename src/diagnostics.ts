/** Errors that say what happened to a guest, how far it got, and where its transcript is. */
import { mkdirSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { tailLines } from './serial.js';
import type { VmExit } from './vm-process.js';

/** How far a boot got, judged from the console. */
export type BootPhase = 'not started' | 'kernel started' | 'console up' | '/init reached' | 'ready';

/** Reads the boot phase off a transcript. */
export function bootPhase(started: boolean, transcript: string, ready: boolean): BootPhase {
  if (ready) return 'ready';
  if (/Run \S+ as init process|Freeing unused kernel image/.test(transcript)) return '/init reached';
  if (transcript.length > 0) return 'console up';
  return started ? 'kernel started' : 'not started';
}

/** Console lines that mean the guest kernel is broken. */
export const KERNEL_FAILURE = /Kernel panic - not syncing[^\n]*|BUG: [^\n]*|Oops: [^\n]*/;

/** Directory for failure transcripts: HYVE_TRANSCRIPT_DIR, else <tmp>/hyve-transcripts. */
export function transcriptDir(): string {
  return process.env.HYVE_TRANSCRIPT_DIR ?? path.join(os.tmpdir(), 'hyve-transcripts');
}

/** Saves a transcript for a failure report; returns its path (or undefined if it can't be written). */
export function saveTranscript(name: string, transcript: string): string | undefined {
  try {
    const dir = transcriptDir();
    mkdirSync(dir, { recursive: true });
    const stamp = new Date().toISOString().replace(/[:.]/g, '-');
    const file = path.join(dir, `${name}-${stamp}-${process.pid}-${Math.random().toString(36).slice(2, 8)}.log`);
    writeFileSync(file, transcript);
    return file;
  } catch {
    return undefined;
  }
}

export interface GuestErrorDetails {
  /** What went wrong, in a few words: 'timeout', 'kernel panic', 'exited', 'killed', ... */
  reason: string;
  phase: BootPhase;
  exit?: VmExit;
  transcript: string;
  transcriptPath?: string;
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

  constructor(summary: string, details: GuestErrorDetails) {
    const lastLines = tailLines(details.transcript, 30);
    const parts = [
      summary,
      `boot phase reached: ${details.phase}`,
      details.exit ? `VM outcome: ${details.exit.outcome} (exit code ${details.exit.code})${details.exit.message ? `: ${details.exit.message}` : ''}` : undefined,
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
  }
}
