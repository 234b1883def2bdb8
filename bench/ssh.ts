/**
 * SSH benchmark: prints figures, asserts nothing.
 *
 * - median and p95 latency of exec('true') over SSH (vsock) next to run('true') over the
 *   console, on a booted default guest and on a guest freshly restored from its snapshot;
 * - the wall time of 50 concurrent exec('true') calls on the pool's open connections;
 * - SFTP upload and download MiB/s of a 32 MiB file.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { bootGuest, type Guest } from '../src/index.js';

const ROUNDS = 30;
const CONCURRENT = 50;

function quantile(sorted: number[], q: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!;
}

async function latency(what: string, call: () => Promise<unknown>): Promise<void> {
  await call(); // the first one opens the SSH connection
  const times: number[] = [];
  for (let i = 0; i < ROUNDS; i++) {
    const start = performance.now();
    await call();
    times.push(performance.now() - start);
  }
  times.sort((a, b) => a - b);
  console.log(`${what.padEnd(34)} median ${quantile(times, 0.5).toFixed(1)} ms, p95 ${quantile(times, 0.95).toFixed(1)} ms (${ROUNDS} rounds)`);
}

async function execVersusRun(guest: Guest, label: string): Promise<void> {
  await latency(`${label}: exec('true') over SSH`, () => guest.exec('true'));
  await latency(`${label}: run('true') on the console`, () => guest.run('true'));
  const concurrently = () => Promise.all(Array.from({ length: CONCURRENT }, () => guest.exec('true')));
  await concurrently(); // opens the pool's connections
  const start = performance.now();
  await concurrently();
  const ms = performance.now() - start;
  console.log(`${label}: ${CONCURRENT} concurrent exec('true')`.padEnd(34) + ` ${ms.toFixed(0)} ms in all, ${(ms / CONCURRENT).toFixed(1)} ms each`);
}

const work = mkdtempSync(path.join(os.tmpdir(), 'hyve-bench-ssh-'));
try {
  const booted = await bootGuest({ ready: 'ssh', timeoutMs: 900_000 });
  try {
    await execVersusRun(booted, 'booted');
    const mib = 32;
    const file = path.join(work, 'payload');
    writeFileSync(file, randomBytes(mib * 1024 * 1024));
    let start = performance.now();
    await booted.upload(file, '/tmp/payload');
    console.log(`SFTP upload   ${(mib / ((performance.now() - start) / 1000)).toFixed(1)} MiB/s`);
    start = performance.now();
    await booted.download('/tmp/payload', `${file}.back`);
    console.log(`SFTP download ${(mib / ((performance.now() - start) / 1000)).toFixed(1)} MiB/s`);
    await booted.exec('rm /tmp/payload');
    const snapshot = path.join(work, 'snapshot');
    await booted.snapshot(snapshot);
    const restored = await bootGuest({ snapshot, timeoutMs: 300_000 });
    try {
      await execVersusRun(restored, 'restored');
    } finally {
      await restored.kill();
    }
  } finally {
    await booted.kill();
  }
} finally {
  rmSync(work, { recursive: true, force: true });
}
