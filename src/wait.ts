/**
 * Readiness as objects (testcontainers-node's wait strategies): `bootGuest({ ready })`
 * takes a string or RegExp (the short form of `Wait.forSerial`) or a WaitStrategy.
 * Each wait may have its own timeout; the boot's `timeoutMs` bounds them all. A wait
 * that gives up throws a WaitError naming itself and how long it waited, and bootGuest
 * turns that into a GuestError with the transcript and tears the VM down.
 *
 * A strategy is anything with `describe()` and `waitUntilReady(context)`; Wait.forSsh()
 * will be one more implementation of the same interface once the guest has a network.
 */
import type { SerialConsole } from './serial.js';
import { badConfig, validatePattern, validateWaitOptions } from './validate.js';

/** What a wait strategy gets to look at. */
export interface WaitContext {
  /** The guest's console (COM1). */
  readonly serial: SerialConsole;
  /** Transcript offset the wait starts from (0 for a boot). */
  readonly since: number;
  /** Epoch ms by which the whole boot must be ready (the boot's `timeoutMs`). */
  readonly deadline: number;
  /** What set `deadline`, for error messages: "the boot's timeoutMs", ... */
  readonly deadlineSource: string;
  /** Aborted when the boot gives up (caller's signal, the guest ended, another wait failed). */
  readonly signal: AbortSignal;
}

/** A readiness check: resolves once the guest is ready, rejects with a WaitError if it never is. */
export interface WaitStrategy {
  /** How it reads in an error message, e.g. `Wait.forSerial(/login:/)`. */
  describe(): string;
  waitUntilReady(context: WaitContext): Promise<void>;
}

/** A wait gave up. `wait` is the failed wait's description; `elapsedMs` how long it waited. */
export class WaitError extends Error {
  constructor(
    readonly wait: string,
    readonly elapsedMs: number,
    /** Why, without the wait's name. */
    readonly reason: string,
  ) {
    super(`wait ${wait} failed after ${elapsedMs} ms: ${reason}`);
    this.name = 'WaitError';
  }
}

/** True for objects that implement WaitStrategy. */
export function isWaitStrategy(value: unknown): value is WaitStrategy {
  const candidate = value as Partial<WaitStrategy> | null;
  return typeof candidate === 'object' && candidate !== null && typeof candidate.describe === 'function' && typeof candidate.waitUntilReady === 'function';
}

export interface ForSerialOptions {
  /** This wait's own limit (the boot's `timeoutMs` applies as well). */
  timeoutMs?: number;
}

class SerialWait implements WaitStrategy {
  constructor(
    private readonly pattern: string | RegExp,
    private readonly timeoutMs: number | undefined,
  ) {}

  describe(): string {
    const shown = typeof this.pattern === 'string' ? JSON.stringify(this.pattern) : String(this.pattern);
    return `Wait.forSerial(${shown}${this.timeoutMs === undefined ? '' : `, { timeoutMs: ${this.timeoutMs} }`})`;
  }

  async waitUntilReady(context: WaitContext): Promise<void> {
    const started = Date.now();
    const bootLeft = Math.max(0, context.deadline - started);
    const own = this.timeoutMs !== undefined && this.timeoutMs <= bootLeft;
    const timeoutMs = own ? this.timeoutMs! : bootLeft;
    try {
      // At least 1 ms: waitFor takes no 0, and a boot that reached this point with its
      // deadline already past (a slow host) still gets its one look at the console and
      // then this wait's own failure, not an option error.
      await context.serial.waitFor(this.pattern, { since: context.since, timeoutMs: Math.max(1, timeoutMs), signal: context.signal });
    } catch (error) {
      if ((error as Error).name !== 'SerialTimeoutError') throw error;
      const limit = own ? `its own timeout (${timeoutMs} ms)` : `${context.deadlineSource} (${timeoutMs} ms left of it)`;
      throw new WaitError(this.describe(), Date.now() - started, `the console did not show ${this.pattern} within ${limit}`);
    }
  }
}

class AllWait implements WaitStrategy {
  constructor(
    private readonly waits: readonly WaitStrategy[],
    private readonly timeoutMs: number | undefined,
  ) {}

  describe(): string {
    return `Wait.forAll([${this.waits.map((w) => w.describe()).join(', ')}])`;
  }

  async waitUntilReady(context: WaitContext): Promise<void> {
    const started = Date.now();
    // Every wait runs at once; the first to fail stops the others.
    const controller = new AbortController();
    const stop = () => controller.abort(context.signal.reason);
    if (context.signal.aborted) stop();
    context.signal.addEventListener('abort', stop, { once: true });
    const own = this.timeoutMs !== undefined && started + this.timeoutMs < context.deadline;
    const child: WaitContext = {
      ...context,
      deadline: own ? started + this.timeoutMs! : context.deadline,
      deadlineSource: own ? `Wait.forAll's timeoutMs` : context.deadlineSource,
      signal: controller.signal,
    };
    try {
      await Promise.all(
        this.waits.map((wait) =>
          wait.waitUntilReady(child).catch((error: unknown) => {
            controller.abort(error);
            throw error;
          }),
        ),
      );
    } catch (error) {
      if (error instanceof WaitError) {
        throw new WaitError(error.wait, error.elapsedMs, `${error.reason} (in ${this.describe()})`);
      }
      throw error;
    } finally {
      context.signal.removeEventListener('abort', stop);
    }
  }
}

/** Wait strategies for `bootGuest({ ready })`. */
export const Wait = {
  /** Ready once `pattern` appears on the console (a string matches literally). */
  forSerial(pattern: string | RegExp, options: ForSerialOptions = {}): WaitStrategy {
    validatePattern(pattern, 'Wait.forSerial');
    validateWaitOptions(options, 'Wait.forSerial');
    if ('since' in options || 'signal' in options) throw badConfig('Wait.forSerial', "only the option 'timeoutMs' applies here");
    return new SerialWait(pattern, options.timeoutMs);
  },
  /** Ready once every one of `waits` is; they run at the same time. `timeoutMs` bounds them together. */
  forAll(waits: readonly WaitStrategy[], options: { timeoutMs?: number } = {}): WaitStrategy {
    if (!Array.isArray(waits) || waits.length === 0 || !waits.every(isWaitStrategy)) {
      throw badConfig('Wait.forAll', 'takes a non-empty array of wait strategies (Wait.forSerial(...), ...)');
    }
    validateWaitOptions(options, 'Wait.forAll');
    if ('since' in options || 'signal' in options) throw badConfig('Wait.forAll', "only the option 'timeoutMs' applies here");
    return new AllWait(waits, options.timeoutMs);
  },
};

/** `ready` as a strategy: strings and RegExps are the short form of Wait.forSerial. */
export function toWaitStrategy(ready: string | RegExp | WaitStrategy): WaitStrategy {
  return typeof ready === 'string' || ready instanceof RegExp ? new SerialWait(ready, undefined) : ready;
}
