/** A guest serial port as the host sees it: a transcript, a byte stream, and waits on patterns. */
import { PassThrough, type Readable } from 'node:stream';
import { StringDecoder } from 'node:string_decoder';
import { validatePattern, validateWaitOptions } from './validate.js';

export interface WaitOptions {
  /** Give up after this long (default: no limit beyond the guest's lifetime). */
  timeoutMs?: number;
  /** Only look at output from this transcript offset on (default 0: the whole transcript). */
  since?: number;
  signal?: AbortSignal;
}

interface Waiter {
  pattern: RegExp;
  since: number;
  /** Where the next attempt starts: output before it has been searched already. */
  scanFrom: number;
  resolve: (match: RegExpExecArray) => void;
  reject: (error: Error) => void;
  cleanup: () => void;
}

/** Thrown when a wait on the console gives up. `transcriptTail` holds the last lines seen. */
export class SerialTimeoutError extends Error {
  constructor(
    message: string,
    readonly transcriptTail: string,
  ) {
    super(message);
    this.name = 'SerialTimeoutError';
  }
}

function toRegExp(pattern: string | RegExp): RegExp {
  if (typeof pattern !== 'string') return pattern;
  return new RegExp(pattern.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'));
}

/** Last `count` lines of `text`, for error messages. */
export function tailLines(text: string, count: number): string {
  const lines = text.replace(/\r\n?/g, '\n').split('\n');
  return lines.slice(-count).join('\n');
}

export interface SerialConsoleOptions {
  /**
   * Characters of output kept in memory (default 16 Mi). Beyond it the oldest are dropped
   * (handed to `spill` first), so `output` holds the newest ones; offsets stay absolute.
   */
  maxRetainedChars?: number;
  /** Receives output as it is dropped from memory, oldest first (e.g. to keep it on disk). */
  spill?: (dropped: string) => void;
}

/**
 * Each chunk of output costs time linear in its size (plus a bounded window for pending
 * waits), and memory holds at most `maxRetainedChars` of it: a chatty guest cannot make
 * the test process do quadratic work or grow without bound.
 */
export class SerialConsole {
  /** Retained output: `chunks` joined; `dropped` characters came before them. */
  private chunks: string[] = [];
  private retained = 0;
  private dropped = 0;
  /** The newest output (matchWindow characters and the last chunk, at least), where pending waits search. */
  private recent = '';
  private readonly maxRetained: number;
  private readonly spill: ((dropped: string) => void) | undefined;
  private readonly decoder = new StringDecoder('utf8');
  private readonly waiters = new Set<Waiter>();
  private readonly bytes = new PassThrough();
  private closedWith: Error | undefined;

  constructor(
    private readonly send: (data: Buffer) => void,
    options: SerialConsoleOptions = {},
  ) {
    this.maxRetained = Math.max(options.maxRetainedChars ?? 16 * 1024 * 1024, 2 * SerialConsole.matchWindow);
    this.spill = options.spill;
  }

  /**
   * What the guest has printed (UTF-8 decoded, line endings as sent): all of it, or the
   * newest `maxRetainedChars` once there was more (see `length` and `droppedChars`).
   */
  get output(): string {
    if (this.chunks.length > 1) this.chunks = [this.chunks.join('')];
    return this.chunks[0] ?? '';
  }

  /** Characters printed so far, including any dropped from memory: the offset of the next one. */
  get length(): number {
    return this.dropped + this.retained;
  }

  /** Characters dropped from memory (the oldest): `output` starts at this offset. */
  get droppedChars(): number {
    return this.dropped;
  }

  /** Output between absolute offsets `start` and `end` (what is still retained of it). */
  slice(start: number, end = this.length): string {
    return this.output.slice(Math.max(0, start - this.dropped), Math.max(0, end - this.dropped));
  }

  /** The console's raw bytes as they arrive. Ends when the guest is gone. */
  get stream(): Readable {
    return this.bytes;
  }

  /** Sends bytes to the guest, as if typed. */
  write(data: string | Uint8Array): void {
    if (this.closedWith) throw this.closedWith;
    this.send(typeof data === 'string' ? Buffer.from(data, 'utf8') : Buffer.from(data));
  }

  /**
   * Resolves with the first match of `pattern` in the transcript (from `since`), waiting
   * for more output as needed. A string pattern matches literally.
   */
  waitFor(pattern: string | RegExp, options: WaitOptions = {}): Promise<RegExpExecArray> {
    try {
      validatePattern(pattern, 'waitFor');
      validateWaitOptions(options, 'waitFor');
    } catch (error) {
      return Promise.reject(error);
    }
    const regexp = toRegExp(pattern);
    const since = options.since ?? 0;
    const immediate = this.match(regexp, since);
    if (immediate) return Promise.resolve(immediate);
    if (this.closedWith) return Promise.reject(this.closedWith);
    return new Promise((resolve, reject) => {
      let timer: NodeJS.Timeout | undefined;
      const onAbort = () => fail(options.signal?.reason instanceof Error ? options.signal.reason : new Error('aborted'));
      const waiter: Waiter = {
        pattern: regexp,
        since,
        scanFrom: this.rescanFrom(since),
        resolve,
        reject,
        cleanup: () => {
          if (timer) clearTimeout(timer);
          options.signal?.removeEventListener('abort', onAbort);
          this.waiters.delete(waiter);
        },
      };
      const fail = (error: Error) => {
        waiter.cleanup();
        reject(error);
      };
      if (options.timeoutMs !== undefined) {
        timer = setTimeout(
          () =>
            fail(
              new SerialTimeoutError(
                `timed out after ${options.timeoutMs} ms waiting for ${regexp} on the console`,
                tailLines(this.recent, 30),
              ),
            ),
          options.timeoutMs,
        );
      }
      if (options.signal?.aborted) return onAbort();
      options.signal?.addEventListener('abort', onAbort, { once: true });
      this.waiters.add(waiter);
    });
  }

  /** Feeds bytes from the guest; returns them decoded (what was appended to the output). */
  push(data: Buffer): string {
    if (this.closedWith) {
      // Output that trails a failure (the rest of a panic message) still belongs in the
      // transcript, but the stream has ended and no wait is pending any more.
      const text = data.toString('utf8');
      this.append(text);
      return text;
    }
    this.bytes.write(data);
    const text = this.decoder.write(data);
    this.append(text);
    for (const waiter of [...this.waiters]) {
      const match = this.match(waiter.pattern, waiter.scanFrom);
      if (match) {
        waiter.cleanup();
        waiter.resolve(match);
      } else {
        waiter.scanFrom = this.rescanFrom(waiter.since);
      }
    }
    return text;
  }

  private append(text: string): void {
    if (text.length === 0) return;
    this.chunks.push(text);
    this.retained += text.length;
    // Keep a window before this chunk for waits resuming there (rescanFrom), trimmed only
    // once it has doubled, so the trimming stays linear too.
    this.recent += text;
    const keep = SerialConsole.matchWindow + text.length;
    if (this.recent.length > keep + SerialConsole.matchWindow) this.recent = this.recent.slice(-keep);
    if (this.retained > this.maxRetained) {
      // Drop down to half the cap at once: each drop then follows at least that much new
      // output, so dropping costs linear time overall.
      const all = this.output;
      const cut = all.length - Math.floor(this.maxRetained / 2);
      this.spill?.(all.slice(0, cut));
      this.chunks = [all.slice(cut)];
      this.retained = all.length - cut;
      this.dropped += cut;
    }
  }

  /**
   * Where a pending wait resumes after a failed attempt. Searching the whole transcript
   * again on every chunk would cost O(n²) over a long boot log; a match may instead
   * start at most `matchWindow` characters before the newest output.
   */
  private rescanFrom(since: number): number {
    return Math.max(since, this.length - SerialConsole.matchWindow);
  }

  /** How far back (in characters) a match may begin before the newest output. */
  static readonly matchWindow = 8192;

  /** The guest is gone: pending and future waits reject with `error`. */
  close(error: Error): void {
    if (this.closedWith) return;
    this.append(this.decoder.end());
    this.closedWith = error;
    for (const waiter of [...this.waiters]) {
      waiter.cleanup();
      waiter.reject(error);
    }
    this.bytes.end();
  }

  /** The first match at or after absolute offset `since` (within retained output). */
  private match(pattern: RegExp, since: number): RegExpExecArray | null {
    const flags = pattern.flags.replace('g', '').replace('y', '');
    const regexp = new RegExp(pattern.source, flags);
    // Pending waits search only the newest output (cheap); a new wait, the whole of it.
    const recentStart = this.length - this.recent.length;
    const from = Math.max(since, this.dropped);
    const text = from >= recentStart ? this.recent.slice(from - recentStart) : this.output.slice(from - this.dropped);
    const match = regexp.exec(text);
    if (match) match.index += from;
    return match;
  }
}
