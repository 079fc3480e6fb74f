#!/usr/bin/env node
// npm run bench [-- --quick] [--out DIR] [--work DIR] [--keep] [--cache warm|cold] [--budget-min N] | [--report RESULTS.json]
//
// Measures hotbackup against its baselines on this machine, in one run, alternating the sides
// of every comparison over repetitions (issue 6; targets in DESIGN.md):
//   1 idle cost (C micro-benchmark; MariaDB + sysbench with the shim loaded idle vs not)
//   2 copy speed of an idle datadir (hotbackup vs cp -a vs mariabackup --backup + --prepare)
//   3 under load (sysbench throughout, a backup in the middle; hotbackup, throttled, mariabackup)
//   4 throttle accuracy   5 memory   6 restore   7 scaling (size, file count)   8 verify
// Writes every figure to OUT/latest.json (default bench/results/) and regenerates
// docs/benchmarks.md with SVG plots (with --out: OUT/benchmarks.md and OUT/*.svg instead).
// --quick is a smoke run (small data, short runs, warm caches) for `npm test`.
// --report FILE regenerates the document from an existing results file (nothing is measured).
import { copyFileSync, existsSync, mkdirSync, readFileSync, writeFileSync, mkdtempSync, statSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { tmpdir, cpus, totalmem } from 'node:os';
import { join, resolve } from 'node:path';
import { FULL, QUICK } from './params.mjs';
import { mariadbBinaries, stopAll } from './lib/mariadb.mjs';
import { ROOT } from './lib/hotbackup.mjs';
import * as S from './lib/sections.mjs';
import { canDropCaches, log, rmrf, round, sh, which } from './lib/util.mjs';
import { evaluateTargets, writeReport } from './lib/report.mjs';

const argv = process.argv.slice(2);
const opt = (name) => {
  const i = argv.indexOf(name);
  return i >= 0 ? argv[i + 1] : undefined;
};
const quick = argv.includes('--quick');
const P = quick ? QUICK : FULL;
const outDir = resolve(opt('--out') ?? join(ROOT, 'bench', 'results'));
const docsFile = opt('--out') ? join(outDir, 'benchmarks.md') : join(ROOT, 'docs', 'benchmarks.md');
const plotsDir = opt('--out') ? outDir : join(ROOT, 'docs', 'benchmarks');
const work = opt('--report') ? null : resolve(opt('--work') ?? mkdtempSync(join(tmpdir(), 'hb-bench-')));
const keepWork = argv.includes('--keep');

function version(cmd, args = ['--version']) {
  const r = sh(cmd, args, { allowFail: true });
  return (r.stdout || r.stderr || '').split('\n')[0].trim() || null;
}

function machine() {
  const lscpu = sh('lscpu', [], { allowFail: true }).stdout;
  const model = /Model name:\s+(.+)/.exec(lscpu)?.[1] ?? cpus()[0]?.model;
  const hyper = /Hypervisor vendor:\s+(.+)/.exec(lscpu)?.[1] ?? null;
  const fs = sh('findmnt', ['-T', work, '-no', 'SOURCE,FSTYPE,OPTIONS'], { allowFail: true }).stdout.trim();
  const load = readFileSync('/proc/loadavg', 'utf8').trim();
  return { cpu: model, cpus: cpus().length, hypervisor: hyper, memory_bytes: totalmem(), kernel: version('uname', ['-sr']),
    os: /PRETTY_NAME="(.+)"/.exec(readFileSync('/etc/os-release', 'utf8'))?.[1] ?? null, work_fs: fs, loadavg_at_start: load };
}

async function main() {
  const reportOnly = opt('--report');
  if (reportOnly) {
    // Regenerates the document and plots from a results file, measuring nothing.
    const results = JSON.parse(readFileSync(reportOnly, 'utf8'));
    results.targets = evaluateTargets(results);
    writeFileSync(reportOnly, JSON.stringify(results, null, 1) + '\n');
    writeReport(results, docsFile, plotsDir);
    log(`wrote ${docsFile} from ${reportOnly}`);
    return;
  }
  const started = Date.now();
  mkdirSync(outDir, { recursive: true });
  mkdirSync(work, { recursive: true });
  log(`${P.mode} run; work directory ${work}`);

  // The shim under test: built if missing, then copied so that a rebuild during the run
  // (other work in the tree) cannot change it under the benchmark.
  const built = join(ROOT, 'build', 'shim', 'libhotbackup.so');
  if (!existsSync(built)) sh(process.execPath, [join(ROOT, 'scripts', 'build.mjs'), '--shim-only'], { stdio: 'inherit' });
  const shim = join(work, 'libhotbackup.so');
  copyFileSync(built, shim);
  const git = (a) => sh('git', ['-C', ROOT, ...a], { allowFail: true }).stdout.trim();
  const bins = { ...mariadbBinaries(), mariabackup: mariadbBinaries().backup, taskset: which('taskset'), gcc: which('gcc') };
  const haveMaria = !!(bins.mariadbd && bins.installDb && bins.client && bins.sysbench && bins.mariabackup);
  const wantCache = opt('--cache') ?? P.cache; // --cache warm|cold overrides the mode's default
  const cache = wantCache === 'cold' && canDropCaches() ? 'cold' : 'warm';
  const ctx = { P, quick, work, shim, bins, cache, cpus: cpus().length,
    cliEnv: { HOTBACKUP_CATALOG: join(work, 'catalog.db') } };
  process.env.HOTBACKUP_CATALOG = join(work, 'catalog.db');

  const results = {
    schema: 1,
    mode: P.mode,
    started_at: new Date(started).toISOString(),
    machine: machine(),
    versions: {
      node: process.version,
      mariadbd: bins.mariadbd ? version(bins.mariadbd) : null,
      mariabackup: bins.mariabackup ? version(bins.mariabackup) : null,
      sysbench: bins.sysbench ? version('sysbench') : null,
      gcc: version('gcc'),
      cp: version('cp'),
      git_head: git(['rev-parse', 'HEAD']),
      shim_sources_dirty: git(['status', '--porcelain', '--', 'native/shim']) !== '',
      shim_sha256: createHash('sha256').update(readFileSync(shim)).digest('hex'),
      shim_built_at: statSync(built).mtime.toISOString(),
    },
    settings: { ...P, cache_used: cache,
      cache_note: cache === 'cold'
        ? 'before each side of an idle copy/read: sync; echo 3 > /proc/sys/vm/drop_caches (cold page cache)'
        : 'before each side of an idle copy/read: sync, then the source tree is read once (warm page cache)',
      server: `mariadbd --no-defaults --innodb-buffer-pool-size=${P.bufferPool} --innodb-buffer-pool-dump-at-shutdown=0 ` +
        '--innodb-buffer-pool-load-at-startup=0 --max-connections=200 --skip-networking (binlog off, other options default)' },
    sections: {},
  };

  const sec = results.sections;
  // --budget-min N: a section that would start after N minutes is skipped (and says so), so a
  // slow machine still gets its results written in time.
  const budgetMin = Number(opt('--budget-min') ?? 0);
  const attempt = async (name, fn) => {
    const t0 = Date.now();
    if (budgetMin && (t0 - started) / 60000 > budgetMin) {
      log(`${name} SKIPPED: the ${budgetMin} min budget is used up`);
      return { status: 'skipped', reason: `not measured: the run's time budget (--budget-min ${budgetMin}) was used up before this section` };
    }
    try {
      log(`== ${name}`);
      const r = await fn();
      if (r && typeof r === 'object' && !Array.isArray(r)) r.elapsed_s = round((Date.now() - t0) / 1000, 1);
      return r;
    } catch (e) {
      log(`${name} FAILED: ${e.stack ?? e}`);
      await stopAll();
      return { status: 'failed', reason: String(e.message ?? e).slice(0, 3000), elapsed_s: round((Date.now() - t0) / 1000, 1) };
    }
  };

  sec.idle_micro = await attempt('idle_micro', () => S.idleMicro(ctx));

  const mariaSections = ['idle_server', 'copy_speed', 'under_load', 'throttle', 'memory', 'restore', 'scaling', 'verify'];
  if (!haveMaria) {
    const missing = ['mariadbd', 'installDb', 'client', 'sysbench', 'mariabackup'].filter((k) => !bins[k]);
    const reason = `not measured: ${missing.join(', ')} not installed (apt-get install mariadb-server mariadb-backup sysbench)`;
    if (process.env.CI === 'true') throw new Error(`CI=true but ${reason}`);
    log(`SKIPPING every MariaDB section: ${reason}`);
    for (const k of mariaSections) sec[k] = { status: 'skipped', reason };
  } else {
    const setup = await attempt('setup', () => S.setupBase(ctx));
    results.settings.base_data = setup;
    if (setup.status === 'failed') {
      for (const k of mariaSections) sec[k] = { status: 'failed', reason: `setup failed: ${setup.reason}` };
    } else {
      sec.idle_server = await attempt('idle_server', () => S.idleServer(ctx));
      sec.under_load = await attempt('under_load', () => S.underLoad(ctx));
      sec.restore = await attempt('restore', () => S.restore(ctx));
      const copies = await attempt('idle copies (copy speed, scaling, memory)', () => S.idleCopies(ctx));
      if (copies.status === 'failed') {
        for (const k of ['copy_speed', 'scaling', 'memory', 'throttle', 'verify']) sec[k] = { status: 'failed', reason: copies.reason };
      } else {
        sec.copy_speed = copies.copySection;
        sec.memory = copies.memory;
        sec.scaling = copies.scaling;
        sec.throttle = await attempt('throttle', () => S.throttle(ctx));
        sec.verify = await attempt('verify', () => S.verify(ctx));
        sec.scaling.files = await attempt('file count', () => S.fileCount(ctx));
      }
      await stopAll();
    }
  }

  results.finished_at = new Date().toISOString();
  results.duration_s = round((Date.now() - started) / 1000, 1);
  results.targets = evaluateTargets(results);
  const jsonPath = join(outDir, 'latest.json');
  writeFileSync(jsonPath, JSON.stringify(results, null, 1) + '\n');
  writeReport(results, docsFile, plotsDir);
  log(`wrote ${jsonPath}, ${docsFile}`);
  for (const t of results.targets) log(`target ${t.met === true ? 'MET ' : t.met === false ? 'MISSED' : 'n/a '} ${t.name}: ${t.measured_text}`);
  if (!keepWork) rmrf(work);
  const failed = Object.entries(sec).filter(([, v]) => v?.status === 'failed').map(([k]) => k);
  if (failed.length) {
    log(`sections that failed: ${failed.join(', ')}`);
    process.exitCode = 1;
  }
}

main().catch(async (e) => {
  console.error(e.stack ?? e);
  await stopAll();
  process.exitCode = 1;
});
for (const sig of ['SIGINT', 'SIGTERM']) {
  process.on(sig, async () => {
    await stopAll();
    process.exit(130);
  });
}
