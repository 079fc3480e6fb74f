// npm run stress:consistency -- [--runs 30] [--configs eager,default] [--seed 1] [--no-contention]
//                                [--keep DIR] [--out FILE]
// Consecutive MariaDB consistency runs (test/mariadb-consistency-run.ts): each one backs up a
// loaded server beside a disk-heavy process, compares the image with the reference copied at
// the cut, restores it and checks every state as a prefix at the cut. Configurations alternate
// (eager flushing first); seeds count up from --seed. A passing run's directory is removed; a
// failing one is kept under --keep (backup, reference, both servers' error logs) and named in
// the summary. Nothing is retried: the summary says how many of how many passed. Exit 0 only
// when every run passed. --out writes the summary as JSON (runs, seeds, configs, bytes
// mirrored and compared).
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { findMariadb } from '../src/mariadb/server.js';
import { CONFIGS, consistencyRun } from '../test/mariadb-consistency-run.js';

const { values } = parseArgs({
  options: {
    runs: { type: 'string', default: '30' },
    configs: { type: 'string', default: 'eager,default' },
    seed: { type: 'string', default: '1' },
    'no-contention': { type: 'boolean', default: false },
    keep: { type: 'string', default: 'stress-runs' },
    out: { type: 'string' },
  },
});
const runs = Number(values.runs);
const firstSeed = Number(values.seed);
const configs = values.configs!.split(',').map((name) => {
  const c = CONFIGS[name];
  if (!c) throw new Error(`unknown configuration ${name} (known: ${Object.keys(CONFIGS).join(', ')})`);
  return { key: name, ...c };
});
if (!Number.isInteger(runs) || runs < 1) throw new Error(`--runs must be a positive integer, not ${values.runs}`);
const install = findMariadb();
if (!install) {
  console.error('stress:consistency: mariadbd not found (apt-get install mariadb-server mariadb-client sysbench)');
  process.exit(2);
}
const keep = resolve(values.keep!);
mkdirSync(keep, { recursive: true });

interface Row { run: number; seed: number; config: string; ok: boolean; seconds: number; bytesMirrored: number; bytesCompared: number;
  problems: string[]; diagnostics: string[]; kept: string | null }
const rows: Row[] = [];
for (let i = 0; i < runs; i++) {
  const seed = firstSeed + i;
  const config = configs[i % configs.length];
  const dir = mkdtempSync(join(keep, `run-${seed}-${config.key}-`));
  const t0 = Date.now();
  let row: Row;
  try {
    const r = await consistencyRun({ install, dir, seed, config, slowSeconds: 3 + (seed % 4) * 2, accounts: 20 + (seed % 5) * 20,
      clients: 2 + (seed % 2), contention: !values['no-contention'] });
    row = { run: i + 1, seed, config: config.key, ok: r.problems.length === 0, seconds: (Date.now() - t0) / 1000,
      bytesMirrored: r.bytesMirrored, bytesCompared: r.bytesCompared, problems: r.problems, diagnostics: r.diagnostics, kept: null };
  } catch (e) {
    row = { run: i + 1, seed, config: config.key, ok: false, seconds: (Date.now() - t0) / 1000, bytesMirrored: 0, bytesCompared: 0,
      problems: [`the run itself failed: ${(e as Error).stack ?? e}`], diagnostics: [], kept: null };
  }
  if (row.ok) rmSync(dir, { recursive: true, force: true });
  else row.kept = dir;
  rows.push(row);
  console.log(`run ${row.run}/${runs} seed ${seed} ${config.key}: ${row.ok ? 'pass' : 'FAIL'} (${row.seconds.toFixed(0)} s, ` +
    `mirrored ${(row.bytesMirrored / 1e6).toFixed(1)} MB, compared ${(row.bytesCompared / 1e6).toFixed(1)} MB)`);
  for (const d of row.diagnostics) console.log(`  ${d}`);
  for (const p of row.problems) console.log(`  PROBLEM: ${p}`);
  if (row.kept) console.log(`  evidence kept in ${row.kept}`);
}
const passed = rows.filter((r) => r.ok).length;
console.log(`${passed} passed, ${rows.length - passed} failed`);
if (values.out) {
  writeFileSync(values.out, JSON.stringify({ when: new Date().toISOString(), contention: !values['no-contention'], runs: rows.length,
    passed, rows }, null, 2) + '\n');
}
process.exit(passed === rows.length ? 0 : 1);
