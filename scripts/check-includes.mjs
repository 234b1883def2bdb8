#!/usr/bin/env node
// Fails when a native source includes against the layering: a folder may include itself
// and any folder ranked lower, never one ranked higher or a sibling of the same rank
// (devices, boot, firmware and pvm know nothing of each other). Run by `npm test`.
import { readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';

const RANK = {
  util: 0,
  snapshot: 1,
  core: 2,
  hv: 3,
  devices: 4,
  boot: 4,
  firmware: 4,
  pvm: 4,
  block: 4,
  net: 4,
  virtio: 5,
  ahci: 5,
  vmm: 6,
  binding: 7,
};

const root = new URL('../native/', import.meta.url).pathname;
const problems = [];
for (const entry of readdirSync(root, { recursive: true })) {
  if (!/\.(h|cc)$/.test(entry)) continue;
  const file = join(root, entry);
  const from = entry.split('/')[0];
  if (!(from in RANK)) {
    problems.push(`native/${entry}: folder '${from}' has no rank in scripts/check-includes.mjs`);
    continue;
  }
  readFileSync(file, 'utf8').split('\n').forEach((line, i) => {
    const m = /^\s*#\s*include\s+"([^"]+)"/.exec(line);
    if (!m) return;
    const to = m[1].split('/')[0];
    const where = `native/${relative(root, file)}:${i + 1}`;
    if (!m[1].includes('/')) problems.push(`${where}: include "${m[1]}" must name its folder`);
    else if (!(to in RANK)) problems.push(`${where}: "${m[1]}" is in folder '${to}', which has no rank`);
    else if (to !== from && RANK[to] >= RANK[from]) {
      problems.push(`${where}: ${from}/ (rank ${RANK[from]}) may not include "${m[1]}" (${to}/, rank ${RANK[to]})`);
    }
  });
}

if (problems.length) {
  console.error(`include order violated (util → snapshot → core → hv → {devices, boot, firmware, pvm, block, net} → {virtio, ahci} → vmm → binding):`);
  for (const p of problems) console.error('  ' + p);
  process.exit(1);
}
console.log('include order ok');
