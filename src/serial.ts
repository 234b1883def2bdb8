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

export class SerialConsole {
  private text = '';
  private readonly decoder = new StringDecoder('utf8');
  private readonly waiters = new Set<Waiter>();
  private readonly bytes = new PassThrough();
  private closedWith: Error | undefined;

  constructor(private readonly send: (data: Buffer) => void) {}

  /** Everything the guest has printed so far (UTF-8 decoded, line endings as sent). */
  get output(): string {
    return this.text;
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
                tailLines(this.text, 30),
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

  /** Feeds bytes from the guest. */
  push(data: Buffer): void {
    if (this.closedWith) {
      // Output that trails a failure (the rest of a panic message) still belongs in the
      // transcript, but the stream has ended and no wait is pending any more.
      this.text += data.toString('utf8');
      return;
    }
    this.bytes.write(data);
    this.text += this.decoder.write(data);
    for (const waiter of [...this.waiters]) {
      const match = this.match(waiter.pattern, waiter.scanFrom);
      if (match) {
        waiter.cleanup();
        waiter.resolve(match);
      } else {
        waiter.scanFrom = this.rescanFrom(waiter.since);
      }
    }
  }

  /**
   * Where a pending wait resumes after a failed attempt. Searching the whole transcript
   * again on every chunk would cost O(n²) over a long boot log; a match may instead
   * start at most `matchWindow` characters before the newest output.
   */
  private rescanFrom(since: number): number {
    return Math.max(since, this.text.length - SerialConsole.matchWindow);
  }

  /** How far back (in characters) a match may begin before the newest output. */
  static readonly matchWindow = 8192;

  /** The guest is gone: pending and future waits reject with `error`. */
  close(error: Error): void {
    if (this.closedWith) return;
    this.text += this.decoder.end();
    this.closedWith = error;
    for (const waiter of [...this.waiters]) {
      waiter.cleanup();
      waiter.reject(error);
    }
    this.bytes.end();
  }

  private match(pattern: RegExp, since: number): RegExpExecArray | null {
    const flags = pattern.flags.replace('g', '').replace('y', '');
    const regexp = new RegExp(pattern.source, flags);
    const match = regexp.exec(this.text.slice(since));
    if (match) match.index += since;
    return match;
  }
}
