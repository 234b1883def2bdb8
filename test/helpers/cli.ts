/** Running the built `hyve` executable in tests: as a subprocess, and in a terminal (tmux). */
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';

export const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
export const cliPath = path.join(repoRoot, 'dist', 'src', 'cli.js');

/** Splits a shell command line the way sh does for the simple cases in scripts: quotes, backslash-newline. */
export function shellWords(line: string): string[] {
  const words: string[] = [];
  let word: string | undefined;
  let quote: '"' | "'" | undefined;
  for (let i = 0; i < line.length; i++) {
    const c = line[i]!;
    if (quote) {
      if (c === quote) quote = undefined;
      else word += c;
    } else if (c === '"' || c === "'") {
      quote = c;
      word ??= '';
    } else if (c === '\\' && line[i + 1] === '\n') {
      i++;
    } else if (/\s/.test(c)) {
      if (word !== undefined) words.push(word);
      word = undefined;
    } else {
      word = (word ?? '') + c;
    }
  }
  if (word !== undefined) words.push(word);
  return words;
}

export interface CliResult {
  status: number | null;
  stdout: string;
  stderr: string;
}

/** Runs `hyve ARGS` to completion, without a terminal. */
export function runCli(args: string[], options: { cwd?: string; input?: string; timeoutMs?: number } = {}): CliResult {
  const result = spawnSync(process.execPath, [cliPath, ...args], {
    cwd: options.cwd ?? repoRoot,
    input: options.input ?? '',
    encoding: 'utf8',
    timeout: options.timeoutMs ?? 60_000,
  });
  return { status: result.status, stdout: result.stdout, stderr: result.stderr };
}

/** Quotes for sh. */
export function sh(word: string): string {
  return `'${word.replace(/'/g, `'\\''`)}'`;
}

/**
 * A tmux server of its own (its socket in `dir`), so tests never touch anyone else's
 * sessions and leave nothing behind once `dir` is removed.
 */
export class Tmux {
  readonly socket: string;

  constructor(dir: string) {
    this.socket = path.join(dir, 'tmux.sock');
  }

  private tmux(...args: string[]): string {
    return execFileSync('tmux', ['-S', this.socket, ...args], { encoding: 'utf8' });
  }

  /** Starts `command` (a sh command line) in a new 200x50 session. */
  start(session: string, command: string): void {
    this.tmux('new-session', '-d', '-s', session, '-x', '200', '-y', '50', command);
  }

  send(session: string, ...keys: string[]): void {
    this.tmux('send-keys', '-t', session, ...keys);
  }

  /** Types text literally (no key-name lookup). */
  type(session: string, text: string): void {
    this.tmux('send-keys', '-t', session, '-l', text);
  }

  capture(session: string): string {
    return this.tmux('capture-pane', '-p', '-J', '-S', '-', '-t', session);
  }

  /** Waits until the pane shows `pattern`; throws with the pane's text after timeoutMs. */
  async waitFor(session: string, pattern: RegExp, timeoutMs: number): Promise<string> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const text = this.capture(session);
      if (pattern.test(text)) return text;
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${pattern} in the terminal:\n${text}`);
      await sleep(200);
    }
  }

  kill(): void {
    spawnSync('tmux', ['-S', this.socket, 'kill-server'], { stdio: 'ignore' });
  }
}

/** Waits for a file to exist and returns its contents. */
export async function waitForFile(file: string, timeoutMs: number): Promise<string> {
  const deadline = Date.now() + timeoutMs;
  while (!existsSync(file) || readFileSync(file, 'utf8') === '') {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${file}`);
    await sleep(200);
  }
  await sleep(100);
  return readFileSync(file, 'utf8');
}
