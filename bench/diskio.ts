/**
 * virtio-blk's I/O path, measured on the host alone (issue 8: "choose the I/O path by
 * measurement"): bench/diskio.c does the worker's one preadv/pwritev per request next to
 * io_uring at queue depth 1 and 32, on a file in the page cache and out of it.
 * Usage: node dist/bench/diskio.js [--runs 3] [--mib 256] [--dir DIR]
 * DIR (default: hyve's cache directory, a disk-backed file system) holds the test file.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { defaultCacheDir } from '../src/index.js';
import { median, note } from './lib.js';

const { values } = parseArgs({ options: { runs: { type: 'string', default: '3' }, mib: { type: 'string', default: '256' }, dir: { type: 'string' } } });
const runs = Number(values.runs);
const mib = Number(values.mib);
if (!Number.isInteger(runs) || runs < 1) throw new Error(`--runs: a whole number of at least 1, not ${values.runs}`);
if (!Number.isInteger(mib) || mib < 1 || mib > 65536) throw new Error(`--mib: a whole number from 1 to 65536, not ${values.mib}`);
const work = mkdtempSync(path.join(values.dir ?? defaultCacheDir(), 'diskio-'));
try {
  const source = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', '..', 'bench', 'diskio.c');
  const program = path.join(work, 'diskio');
  try {
    execFileSync('gcc', ['-O2', '-Wall', '-Wextra', '-Werror', '-o', program, source, '-luring'], { stdio: 'pipe' });
  } catch (error) {
    throw new Error(`building bench/diskio.c needs gcc and Debian's liburing-dev (scripts/setup-debian.sh): ${(error as { stderr?: Buffer }).stderr ?? error}`);
  }
  // figure ("seq-read-128k cached") → path ("preadv") → MiB/s and IOPS samples
  const samples = new Map<string, Map<string, { mibps: number[]; iops: number[] }>>();
  const paths = new Set<string>();
  for (let run = 0; run < runs; run++) {
    note(`diskio run ${run + 1} of ${runs}, ${mib} MiB`);
    // A disk that stops answering should not hold the benchmark forever: 30 min per run.
    const out = execFileSync(program, [path.join(work, 'image'), String(mib)], { encoding: 'utf8', timeout: 30 * 60_000 });
    for (const line of out.split('\n')) {
      if (line.startsWith('diskio io_uring unavailable')) note(line);
      const m = /^diskio (\S+) (\S+) (\S+) ([\d.]+) (\d+)$/.exec(line);
      if (!m) continue;
      const [, ioPath, workload, cache, rate, iops] = m;
      paths.add(ioPath!);
      const figure = `${workload} ${cache}`;
      if (!samples.has(figure)) samples.set(figure, new Map());
      const byPath = samples.get(figure)!;
      if (!byPath.has(ioPath!)) byPath.set(ioPath!, { mibps: [], iops: [] });
      byPath.get(ioPath!)!.mibps.push(Number(rate));
      byPath.get(ioPath!)!.iops.push(Number(iops));
    }
  }
  const columns = [...paths];
  console.log(`\nvirtio-blk I/O paths on the host, ${mib} MiB file in ${values.dir ?? defaultCacheDir()} (medians of ${runs}; MiB/s, IOPS)`);
  console.log(`| workload | ${columns.join(' | ')} |`);
  console.log(`|:--|${columns.map(() => '--:').join('|')}|`);
  for (const [figure, byPath] of samples) {
    const cells = columns.map((c) => {
      const s = byPath.get(c);
      return s ? `${median(s.mibps).toFixed(0)} MiB/s, ${median(s.iops).toFixed(0)}` : '—';
    });
    console.log(`| ${figure} | ${cells.join(' | ')} |`);
  }
} finally {
  rmSync(work, { recursive: true, force: true });
}
