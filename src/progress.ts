/**
 * Progress of long work (building the default guest, fetching a stock kernel): structured
 * events for callers that draw their own, and a renderer for those that don't: one
 * updating line on a terminal, a line every few seconds elsewhere (CI logs).
 */

/** What a long job is doing. */
export type ProgressPhase =
  | 'wait' // another process holds the cache lock and is building
  | 'extract' // unpacking the kernel source tarball
  | 'configure' // tinyconfig + hyve's fragment
  | 'compile' // kbuild: compiling and linking the kernel
  | 'initramfs' // writing the busybox initramfs
  | 'download' // fetching a stock kernel package
  | 'done';

export interface ProgressEvent {
  phase: ProgressPhase;
  /** In 'compile': objects built so far. */
  done?: number;
  /** In 'compile': objects a full build makes (measured by the last full build, else an estimate). */
  total?: number;
  /** The line itself: hyve's notice, or one line of a build tool's output. */
  message: string;
  /** True for a build tool's output line (which also goes to the build log), false for hyve's notices. */
  output: boolean;
}

/**
 * Receives progress. The message comes first, so a `(line: string) => void` callback
 * keeps working; the event carries the structure.
 */
export type ProgressListener = (message: string, event: ProgressEvent) => void;

/** A kbuild line that makes an object file: "  CC      kernel/fork.o", "  AS [M]  x.o". */
const KBUILD_OBJECT = /^ {2}(?:CC|AS)(?: \[M\])? +\S+\.o$/;

/**
 * Counts a kernel build's objects from its output lines, so each line becomes a
 * 'compile' event with `done` and `total`.
 */
export class KbuildCounter {
  private built = 0;

  constructor(readonly total: number) {}

  /** The event for one line of make's output. */
  event(line: string): ProgressEvent {
    if (KBUILD_OBJECT.test(line)) this.built++;
    // An incremental or differently-configured build may make more than the estimate.
    return { phase: 'compile', done: this.built, total: Math.max(this.total, this.built), message: line, output: true };
  }

  get done(): number {
    return this.built;
  }
}

export interface ProgressRendererOptions {
  /** Where to draw. Default process.stderr. */
  stream?: NodeJS.WritableStream & { isTTY?: boolean };
  /** Draw one updating line (terminal) or print a line every `intervalMs` (logs). Default: stream.isTTY. */
  tty?: boolean;
  /** Without a terminal: at most one status line per this many ms. Default 5000. */
  intervalMs?: number;
  /** Clock, for tests. Default Date.now. */
  now?: () => number;
}

const PHASE_TEXT: Record<ProgressPhase, string> = {
  wait: 'waiting for another build',
  extract: 'extracting the kernel source',
  configure: 'configuring the kernel',
  compile: 'compiling the kernel',
  initramfs: 'writing the initramfs',
  download: 'downloading',
  done: 'done',
};

function elapsed(ms: number): string {
  const s = Math.floor(ms / 1000);
  return s >= 60 ? `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s` : `${s}s`;
}

/** The one-line status of an event: "compiling the kernel 812/1200 objects (68%), 2m13s". */
export function formatProgress(event: ProgressEvent, elapsedMs: number): string {
  const counts =
    event.done !== undefined && event.total
      ? ` ${event.done}/${event.total} objects (${Math.floor((100 * event.done) / event.total)}%)`
      : '';
  return `hyve: ${PHASE_TEXT[event.phase]}${counts}, ${elapsed(elapsedMs)}`;
}

/** A listener that draws; `end()` finishes a status line still on screen, before other output. */
export type ProgressRenderer = ProgressListener & { end(): void };

/**
 * A listener that draws progress: hyve's notices as lines of their own, build output as
 * a status line that updates in place on a terminal and is printed every few seconds
 * (and at each change of phase) elsewhere. The raw output is in the build log, not here.
 */
export function progressRenderer(options: ProgressRendererOptions = {}): ProgressRenderer {
  const stream = options.stream ?? process.stderr;
  const tty = options.tty ?? Boolean(stream.isTTY);
  const intervalMs = options.intervalMs ?? 5000;
  const now = options.now ?? Date.now;
  // A terminal can take ten repaints a second; a log wants a line every few seconds.
  const minGapMs = tty ? 100 : intervalMs;
  const started = now();
  let lastDrawn = -Infinity;
  let lastPhase: ProgressPhase | undefined;
  let statusShown = false; // a terminal status line is on screen, without a newline
  let current: ProgressEvent | undefined; // the latest build output, while a step runs
  let ticker: NodeJS.Timeout | undefined;

  const draw = (event: ProgressEvent) => {
    const t = now();
    if (event.phase === lastPhase && t - lastDrawn < minGapMs) return;
    lastDrawn = t;
    lastPhase = event.phase;
    const line = formatProgress(event, t - started);
    if (tty) {
      stream.write(`\r\x1b[K${line}`);
      statusShown = true;
    } else {
      stream.write(`${line}\n`);
    }
  };
  const stop = () => {
    clearInterval(ticker);
    ticker = undefined;
    current = undefined;
  };
  const listener: ProgressListener = (message, event) => {
    if (!event || !event.output) {
      stop();
      if (statusShown) stream.write('\r\x1b[K');
      statusShown = false;
      stream.write(`${message}\n`);
      lastPhase = event?.phase;
      return;
    }
    current = event;
    // Steps that print nothing for a while (linking vmlinux) still move the clock on.
    ticker ??= setInterval(() => current && draw(current), tty ? 1000 : intervalMs).unref();
    draw(event);
  };
  return Object.assign(listener, {
    end() {
      stop();
      if (statusShown) stream.write('\n'); // keep the last status, e.g. above a build error
      statusShown = false;
    },
  });
}
