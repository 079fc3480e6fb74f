#!/usr/bin/env node
// node bench/diagnose.mjs [--out FILE] [--work DIR]
//
// Where the time goes when a DESIGN.md target is missed (issue 6): profiles, not benchmarks.
// Tracing slows what it traces, so these runs are separate from bench/run.mjs and only their
// proportions (syscalls per file, per transaction; share of CPU samples) are meant to be read.
//   1. An idle backup of a ~1.5 GB datadir: `strace -c -f -w` on mariadbd (the copier's syscalls,
//      wall time per call) and the same for `cp -a` + sync; the shim's own phase timings.
//   2. `perf record -e cpu-clock -g` on mariadbd during an idle backup: where the CPU goes.
//   3. Under sysbench load, 5 s with no backup vs 5 s of capture only (the copier held before the
//      cut by the test hook): syscalls per transaction (strace -c -f), and perf samples in the shim.
//   4. A backup of a directory of many small tables: syscalls per file.
// Writes every figure to bench/results/diagnose.json (or --out).
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync, copyFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { FULL } from './params.mjs';
import { ROOT, backupViaSocket, pollUntilEnd, request, status } from './lib/hotbackup.mjs';
import { stopAll } from './lib/mariadb.mjs';
import { growTo, newServer, setupBase } from './lib/sections.mjs';
import { startLoad } from './lib/sysbench.mjs';
import { log, mono, rmrf, run, sh, sleep, timed, treeSize, warmTree, which } from './lib/util.mjs';

const argv = process.argv.slice(2);
const opt = (n) => (argv.indexOf(n) >= 0 ? argv[argv.indexOf(n) + 1] : undefined);
const out = resolve(opt('--out') ?? join(ROOT, 'bench', 'results', 'diagnose.json'));
const work = resolve(opt('--work') ?? mkdtempSync(join(tmpdir(), 'hb-diag-')));

function parseStrace(text) {
  const rows = [];
  for (const line of text.split('\n')) {
    const m = /^\s*([\d.]+)\s+([\d.]+)\s+(\d+)\s+(\d+)\s+(\d+)?\s*(\w+)\s*$/.exec(line);
    if (m && m[6] !== 'total') rows.push({ syscall: m[6], pct_time: Number(m[1]), seconds: Number(m[2]), usecs_per_call: Number(m[3]), calls: Number(m[4]), errors: Number(m[5] ?? 0) });
  }
  return rows;
}

/** Attaches a tracer/profiler to pid until stop(); resolves its output. */
function attach(cmd, args) {
  const p = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let text = '';
  p.stdout.on('data', (d) => { text += d; });
  p.stderr.on('data', (d) => { text += d; });
  const done = new Promise((r) => p.on('close', () => r(text)));
  return { async stop() { p.kill('SIGINT'); return done; } };
}

async function straceDuring(pid, file, fn) {
  const t = attach('strace', ['-c', '-f', '-w', '-p', String(pid), '-o', file]);
  await sleep(500);
  const value = await fn();
  await t.stop();
  return { value, rows: parseStrace(readFileSync(file, 'utf8')) };
}

async function perfDuring(pid, file, fn) {
  const t = attach('perf', ['record', '-e', 'cpu-clock', '-g', '-p', String(pid), '-o', file]);
  await sleep(500);
  const value = await fn();
  await t.stop();
  const rep = sh('perf', ['report', '-i', file, '--no-children', '--sort', 'dso,sym', '--stdio', '--percent-limit', '0.7', '-g', 'none'], { allowFail: true }).stdout;
  const top = rep.split('\n').filter((l) => /^\s+[\d.]+%/.test(l)).slice(0, 30).map((l) => l.trim());
  const dso = sh('perf', ['report', '-i', file, '--no-children', '--sort', 'dso', '--stdio', '-g', 'none'], { allowFail: true }).stdout
    .split('\n').filter((l) => /^\s+[\d.]+%/.test(l)).slice(0, 12).map((l) => l.trim());
  return { value, top_symbols: top, by_dso: dso };
}

const pick = (rows, names) => Object.fromEntries(rows.filter((r) => names.includes(r.syscall)).map((r) => [r.syscall, r]));

async function main() {
  if (!which('strace') || !which('perf')) throw new Error('strace and perf are needed');
  const shim = join(work, 'libhotbackup.so');
  copyFileSync(join(ROOT, 'build', 'shim', 'libhotbackup.so'), shim);
  const P = { ...FULL, base: { tables: 8, size: 50_000 }, bufferPool: '1G' };
  const ctx = { P, work, shim, bins: {}, cache: 'warm', cpus: 2 };
  const res = { date: new Date().toISOString(), loadavg_at_start: readFileSync('/proc/loadavg', 'utf8').trim(), work };
  res.setup = await setupBase(ctx);

  // ---- 1, 2: idle backup ----
  const s = newServer(ctx, 'diag', ctx.datadir, true);
  await s.start();
  const grow = await growTo(ctx, s, 1.5e9);
  const sz = treeSize(s.datadir);
  res.idle = { datadir_bytes: sz.bytes, files: sz.files, grow_s: grow };
  const dest = join(work, 'bk');
  const plain = [];
  for (let i = 0; i < 2; i++) {
    rmrf(dest); sh('sync'); warmTree(s.datadir);
    const b = await backupViaSocket(s.control, dest, { pollMs: 100 });
    plain.push({ shim_s: b.shim_s, copy_s: b.copy_s, seal_s: b.shim_s - b.copy_s });
    rmrf(dest); sh('sync'); warmTree(s.datadir);
    const c = await timed(async () => { await run('cp', ['-a', s.datadir, dest]); sh('sync'); });
    plain[i].cp_s = c.seconds;
  }
  res.idle.untraced = plain;
  log('idle untraced', JSON.stringify(plain));
  rmrf(dest); sh('sync'); warmTree(s.datadir);
  const st = await straceDuring(s.pid, join(work, 'strace-backup.txt'), () => backupViaSocket(s.control, dest, { pollMs: 200 }));
  res.idle.strace_backup = { shim_s: st.value.shim_s, copy_s: st.value.copy_s, rows: st.rows.slice(0, 25) };
  rmrf(dest); sh('sync'); warmTree(s.datadir);
  sh('strace', ['-c', '-f', '-w', '-o', join(work, 'strace-cp.txt'), 'cp', '-a', s.datadir, dest]);
  const cpRows = parseStrace(readFileSync(join(work, 'strace-cp.txt'), 'utf8'));
  res.idle.strace_cp = { rows: cpRows.slice(0, 15) };
  rmrf(dest); sh('sync'); warmTree(s.datadir);
  const pf = await perfDuring(s.pid, join(work, 'perf-backup.data'), () => backupViaSocket(s.control, dest, { pollMs: 200 }));
  res.idle.perf_backup = { shim_s: pf.value.shim_s, top_symbols: pf.top_symbols, by_dso: pf.by_dso };
  rmrf(dest);
  log('idle traced done');

  // ---- 4: many small files ----
  await s.query('CREATE DATABASE many');
  for (let i = 1; i <= 1000; i += 100) {
    let sql = '';
    for (let k = i; k < i + 100; k++) sql += `CREATE TABLE many.t${k} (id INT PRIMARY KEY, k INT, c CHAR(120), KEY (k)) ENGINE=InnoDB; INSERT INTO many.t${k} VALUES (1,1,'a');`;
    await s.query(sql);
  }
  await s.checkpoint();
  const mdir = join(s.datadir, 'many');
  const mfiles = treeSize(mdir).files;
  sh('sync'); warmTree(mdir);
  const sm = await straceDuring(s.pid, join(work, 'strace-many.txt'), () => backupViaSocket(s.control, dest, { sources: [mdir], pollMs: 200 }));
  res.many = { files: mfiles, shim_s: sm.value.shim_s, copy_s: sm.value.copy_s,
    per_file: Object.fromEntries(sm.rows.filter((r) => r.calls >= mfiles / 2).map((r) => [r.syscall, { calls_per_file: +(r.calls / mfiles).toFixed(2), ms_per_file: +((r.seconds * 1000) / mfiles).toFixed(3) }])),
    rows: sm.rows.slice(0, 20) };
  rmrf(dest);
  await s.stop();
  log('many files done');

  // ---- 3: under load, baseline vs capture only ----
  const h = newServer(ctx, 'diag-hooks', ctx.datadir, true, [], { HOTBACKUP_TEST_HOOKS: '1' });
  await h.start();
  const load = (tag, seconds) => startLoad({ sock: h.sock, db: 'sbtest', tables: P.base.tables, size: P.base.size, script: 'oltp_write_only',
    threads: 4, seconds, outDir: join(work, 'sb', tag) });
  const phase = async (tag, inCapture) => {
    const l = load(tag, 30);
    await sleep(3000);
    if (inCapture) {
      await request(h.control, { op: 'test_pause', point: 'cut', on: true });
      rmrf(dest);
      await request(h.control, { op: 'start', dest });
      for (;;) {
        const p = await request(h.control, { op: 'test_paused' });
        if (p.paused === 'cut') break;
        await sleep(50);
      }
    }
    const m0 = await status(h.control);
    const t0 = Date.now();
    const sx = await straceDuring(h.pid, join(work, `strace-${tag}.txt`), () => sleep(5000));
    const t1 = Date.now();
    const pf2 = await perfDuring(h.pid, join(work, `perf-${tag}.data`), () => sleep(5000));
    const t2 = Date.now();
    const m1 = await status(h.control);
    if (inCapture) {
      await request(h.control, { op: 'test_pause', point: 'cut', on: false });
      await pollUntilEnd(h.control, 100);
      rmrf(dest);
    }
    const r = await l.done;
    const wS = r.lat.window(t0, t1);
    const wP = r.lat.window(t1, t2);
    const per = (rows, n) => Object.fromEntries(rows.filter((x) => x.calls > 0).slice(0, 20).map((x) => [x.syscall, +(x.calls / Math.max(1, n)).toFixed(2)]));
    return { transactions_under_strace: wS.transactions, tps_under_perf: wP.tps, syscalls_per_txn: per(sx.rows, wS.transactions),
      strace_rows: sx.rows.slice(0, 20), perf_by_dso: pf2.by_dso, perf_top: pf2.top_symbols,
      bytes_mirrored_during: inCapture ? m1.bytes_mirrored - m0.bytes_mirrored : 0 };
  };
  res.load = { baseline: await phase('base', false), capture_only: await phase('capture', true) };
  await h.stop();
  mkdirSync(join(out, '..'), { recursive: true });
  writeFileSync(out, JSON.stringify(res, null, 1) + '\n');
  log(`wrote ${out}`);
  rmrf(work);
}

main().catch(async (e) => {
  console.error(e.stack ?? e);
  await stopAll();
  process.exitCode = 1;
});
