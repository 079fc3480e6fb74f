// The measurements, one function per section of issue 6. Each returns a plain object that
// goes into the results JSON as is; every number in it was measured in this run.
import { existsSync, mkdirSync, readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { backupViaCli, backupViaSocket, cliHasCommand, CLI, pollUntilEnd, request, ROOT, shimTimes, status } from './hotbackup.mjs';
import { installDb, Server, waitAnswering } from './mariadb.mjs';
import { prepare, startLoad } from './sysbench.mjs';
import {
  alternate, cpuSampler, cpuWindow, dropCaches, log, median, mono, procStatus, resetPeakRss, rmrf, round, run, sh, sleep, summary,
  timed, treeSize, warmTree, quantile,
} from './util.mjs';

const ratioSummary = (pairs) => summary(pairs);

// ---- 1a. idle cost, micro-benchmark ------------------------------------------------------

export async function idleMicro(ctx) {
  const { P } = ctx;
  const bin = join(ctx.work, 'idle_cost');
  sh('gcc', ['-O2', '-Wall', '-o', bin, join(ROOT, 'bench', 'micro', 'idle_cost.c'), '-ldl']);
  const dir = join(ctx.work, 'micro');
  mkdirSync(dir, { recursive: true });
  const pin = ctx.bins.taskset ? ['taskset', '-c', String(ctx.cpus - 1)] : [];
  const runs = { plain: [], shim: [] };
  for (let i = 0; i < P.micro.procs; i++) {
    for (const side of alternate(['plain', 'shim'], i)) {
      const env = { ...process.env };
      delete env.LD_PRELOAD;
      if (side === 'shim') {
        env.LD_PRELOAD = ctx.shim;
        env.HOTBACKUP_SERVE = 'idle_cost';
        env.HOTBACKUP_SOCKET = join(ctx.work, 'micro.sock');
      }
      const argv = [...pin, bin, dir, String(P.micro.calls), String(P.micro.batches), String(P.micro.pairs)];
      const r = sh(argv[0], argv.slice(1), { env });
      const j = JSON.parse(r.stdout);
      if (side === 'shim' && j.served !== 1) throw new Error(`the shim did not serve idle_cost (served=${j.served})`);
      if (side === 'plain' && j.shim_loaded) throw new Error('the shim was loaded in the plain run');
      runs[side].push(j);
    }
  }
  const metrics = ['pwrite4k_ns', 'pwrite0_ns', 'write_devnull_ns', 'open_close_ns', 'open_close_w_ns'];
  const across = {};
  for (const m of metrics) {
    const plain = runs.plain.map((r) => r[m]);
    const shim = runs.shim.map((r) => r[m]);
    across[m] = {
      plain: summary(plain),
      shim: summary(shim),
      added_ns: summary(shim.map((s, k) => s - plain[k])),
      ratio: summary(shim.map((s, k) => s / plain[k])),
    };
  }
  const paired = {};
  for (const c of ['pwrite0', 'pwrite4k', 'open_close']) {
    paired[c] = {
      shim_added_ns: summary(runs.shim.map((r) => r.paired[c].added_ns)),
      noise_floor_ns: summary(runs.plain.map((r) => r.paired[c].added_ns)),
      call_ns: summary(runs.shim.map((r) => r.paired[c].call_ns)),
    };
  }
  return {
    status: 'ok',
    method: 'one process per side, sides alternated; in each process every case is the median of ' +
      `${P.micro.batches} batches; "paired" = wrapper vs libc's own function in alternating batches inside one ` +
      `process (${P.micro.pairs} pairs), median difference`,
    pinned_cpu: pin.length ? ctx.cpus - 1 : null,
    processes_per_side: P.micro.procs,
    across_processes: across,
    paired,
    raw: runs,
  };
}

// ---- helpers for servers ---------------------------------------------------------------

export function newServer(ctx, name, datadir, shim, extra = [], env = {}) {
  return new Server({
    env,
    datadir,
    sock: join(ctx.work, `${name}.sock`),
    control: join(ctx.work, `${name}.ctl`),
    runDir: join(ctx.work, 'run', name),
    shim: shim ? ctx.shim : null,
    extra,
    cfg: { bufferPool: ctx.P.bufferPool },
  });
}

/** Installs the datadir and prepares the base data set (sysbench prepare). */
export async function setupBase(ctx) {
  const datadir = join(ctx.work, 'data');
  rmrf(datadir);
  const t0 = mono();
  installDb(datadir, join(ctx.work, 'install-tmp'));
  const s = newServer(ctx, 'setup', datadir, false);
  await s.start();
  await s.query('CREATE DATABASE sbtest');
  await s.query('SET GLOBAL innodb_flush_log_at_trx_commit=0');
  const { tables, size } = ctx.P.base;
  const t = await timed(() => prepare({ sock: s.sock, db: 'sbtest', tables, size, threads: 2 }));
  await s.query('SET GLOBAL innodb_flush_log_at_trx_commit=1');
  await s.checkpoint();
  await s.stop();
  ctx.datadir = datadir;
  const sz = treeSize(datadir);
  log(`base data set: ${tables} tables x ${size} rows, datadir ${(sz.bytes / 1e6).toFixed(0)} MB in ${sz.files} files`);
  return { tables, size, prepare_s: round(t.seconds), setup_s: round(mono() - t0), datadir_bytes: sz.bytes, datadir_files: sz.files };
}

// ---- 1b. idle cost on the server -------------------------------------------------------

export async function idleServer(ctx) {
  const { P } = ctx;
  const sides = ['plain', 'shim', 'plain_noaio'];
  const res = {};
  for (const side of sides) res[side] = Object.fromEntries(P.idle.workloads.map((w) => [w, []]));
  const rss = { plain: [], shim: [], plain_noaio: [] };
  for (let rep = 0; rep < P.idle.reps; rep++) {
    for (const side of alternate(sides, rep)) {
      const s = newServer(ctx, `idle-${side}`, ctx.datadir, side === 'shim', side === 'plain_noaio' ? ['--innodb-use-native-aio=0'] : []);
      await s.start();
      for (const wl of alternate(P.idle.workloads, rep)) {
        const total = P.idle.warmup + P.idle.seconds;
        const l = startLoad({ sock: s.sock, db: 'sbtest', ...ctx.P.base, tables: P.base.tables, size: P.base.size, script: wl,
          threads: P.idle.threads, seconds: total, outDir: join(ctx.work, 'sb', `idle-${side}-${wl}-${rep}`) });
        const r = await l.done;
        const t0 = l.startedAt + P.idle.warmup * 1000;
        const w = r.lat.window(t0, t0 + P.idle.seconds * 1000);
        res[side][wl].push({ ...w, sysbench: r.summary });
        log(`idle ${side} ${wl}: ${w.tps.toFixed(0)} tps, p99 ${w.latency_p99_ms?.toFixed(2)} ms`);
      }
      const st = procStatus(s.pid);
      if (st) rss[side].push(st.VmRSS);
      await s.stop();
    }
  }
  const out = { status: 'ok', sides: {}, ratios: {}, rss_bytes: {} };
  for (const side of sides) {
    out.sides[side] = {};
    for (const wl of P.idle.workloads) {
      const a = res[side][wl];
      out.sides[side][wl] = {
        tps: summary(a.map((x) => x.tps)),
        p99_ms: summary(a.map((x) => x.latency_p99_ms)),
        avg_ms: summary(a.map((x) => x.latency_avg_ms)),
        sysbench_tps: summary(a.map((x) => x.sysbench.tps)),
      };
    }
    out.rss_bytes[side] = summary(rss[side]);
  }
  const ratio = (num, den, wl, f) => summary(res[num][wl].map((x, k) => x[f] / res[den][wl][k][f]));
  for (const wl of P.idle.workloads) {
    out.ratios[wl] = {
      shim_vs_plain_tps: ratio('shim', 'plain', wl, 'tps'),
      shim_vs_plain_p99: ratio('shim', 'plain', wl, 'latency_p99_ms'),
      noaio_vs_plain_tps: ratio('plain_noaio', 'plain', wl, 'tps'),
      shim_vs_noaio_tps: ratio('shim', 'plain_noaio', wl, 'tps'),
      shim_vs_noaio_p99: ratio('shim', 'plain_noaio', wl, 'latency_p99_ms'),
    };
  }
  out.settings = { threads: P.idle.threads, warmup_s: P.idle.warmup, measured_s: P.idle.seconds, reps: P.idle.reps,
    tables: P.base.tables, table_size: P.base.size,
    sides: { plain: 'no shim, stock options (native AIO on; see the error log note)', shim: 'libhotbackup.so preloaded, no backup',
      plain_noaio: 'no shim, --innodb-use-native-aio=0 (the I/O mode the shim forces)' } };
  out.native_aio_note = aioNote(join(ctx.work, 'run', 'idle-plain', 'err.log'));
  return out;
}

function aioNote(errLog) {
  try {
    const t = readFileSync(errLog, 'utf8');
    const lines = t.split('\n').filter((l) => /uring|native AIO|libaio/i.test(l));
    return [...new Set(lines.map((l) => l.replace(/^\S+ \S+ \d+ /, '')))].slice(0, 4);
  } catch {
    return [];
  }
}

// ---- 3. under load ---------------------------------------------------------------------

async function loadRun(ctx, s, o) {
  const { P } = ctx;
  const l = startLoad({ sock: s.sock, db: 'sbtest', tables: P.base.tables, size: P.base.size, script: P.load.script,
    threads: P.load.threads, seconds: P.load.seconds, outDir: join(ctx.work, 'sb', o.tag) });
  const cpu = cpuSampler(s.pid, 250);
  let backup = null;
  if (o.backup) {
    await sleep(P.load.backupAt * 1000);
    backup = await o.backup();
  }
  const r = await l.done;
  return { startedAt: l.startedAt, lat: r.lat, summary: r.summary, backup, cpu: cpu.stop() };
}

function windowFigures(run, rel0, rel1) {
  return run.lat.window(run.startedAt + rel0 * 1000, run.startedAt + rel1 * 1000);
}

function cpuFigures(run, rel0, rel1) {
  const w = cpuWindow(run.cpu, run.startedAt + rel0 * 1000, run.startedAt + rel1 * 1000);
  return w && Object.fromEntries(Object.entries(w).map(([k, v]) => [k, round(v, 3)]));
}

export async function underLoad(ctx) {
  const { P } = ctx;
  const modes = {
    hotbackup: { server: 'shim' },
    hotbackup_throttled: { server: 'shim', throttle: P.load.throttle },
    mariabackup: { server: 'plain' },
    // Diagnostic: the backup copies everything, then the copier is held before the cut (test
    // hook), so capture runs on every file with no copying: the window is that pause alone.
    capture_only: { server: 'hooks', diagnostic: true },
  };
  const out = { status: 'ok', settings: { threads: P.load.threads, seconds: P.load.seconds, backup_at_s: P.load.backupAt,
    script: P.load.script, reps: P.load.reps, throttle_bytes_per_sec: P.load.throttle,
    window: 'from the start request to the end of the backup (hotbackup: state done seen by a 100 ms status poll; ' +
      'mariabackup: process exit); the baseline is the same window of a run with no backup',
    capture_only: 'diagnostic mode: a server with HOTBACKUP_TEST_HOOKS=1; the backup copies everything, then the copier is held ' +
      `before the cut for ${P.load.captureHold} s (test_pause "cut"): the window is that hold, when every write is captured and nothing is copied` },
  modes: {} };
  const keep = {};
  const servers = {
    shim: newServer(ctx, 'load-shim', ctx.datadir, true),
    plain: newServer(ctx, 'load-plain', ctx.datadir, false),
    hooks: newServer(ctx, 'load-hooks', ctx.datadir, true, [], { HOTBACKUP_TEST_HOOKS: '1' }),
  };
  for (const kind of ['shim', 'plain', 'hooks']) {
    const s = servers[kind];
    if (kind === 'hooks' && !P.load.captureReps) continue;
    await s.start();
    for (let rep = 0; rep < P.load.reps; rep++) {
      for (const [mode, m] of Object.entries(modes)) {
        if (m.server !== kind) continue;
        if (m.diagnostic && rep >= P.load.captureReps) continue;
        out.modes[mode] ??= { reps: [] };
        const pair = {};
        for (const side of alternate(['baseline', 'backup'], rep)) {
          const tag = `load-${mode}-${side}-${rep}`;
          let backupFn = null;
          if (side === 'backup') {
            const dest = join(ctx.work, 'bk', tag);
            rmrf(dest);
            mkdirSync(join(ctx.work, 'bk'), { recursive: true });
            backupFn = mode === 'mariabackup'
              ? () => mariabackupRun(ctx, s, dest)
              : mode === 'capture_only' ? () => captureOnlyRun(ctx, s, dest)
              : async () => {
                const r = await backupViaSocket(s.control, dest, { throttle: m.throttle, pollMs: 100 });
                return { ...r, t0: r.requested_at, t1: r.observed_done_at, dest };
              };
          }
          pair[side] = await loadRun(ctx, s, { tag, backup: backupFn });
        }
        const b = pair.backup.backup;
        const rel0 = (b.t0 - pair.backup.startedAt) / 1000;
        const rel1 = (b.t1 - pair.backup.startedAt) / 1000;
        const wb = windowFigures(pair.backup, rel0, rel1);
        const w0 = windowFigures(pair.baseline, rel0, rel1);
        const rec = {
          window_s: round(rel1 - rel0),
          window_start_s: round(rel0),
          backup: wb,
          baseline: w0,
          tps_ratio: wb.tps / w0.tps,
          p99_ratio: wb.latency_p99_ms / w0.latency_p99_ms,
          whole_run: { backup: pair.backup.summary, baseline: pair.baseline.summary },
          // CPU in the window: the server process (CPUs busy on average) and the machine (shares of all CPUs)
          cpu: { backup: cpuFigures(pair.backup, rel0, rel1), baseline: cpuFigures(pair.baseline, rel0, rel1) },
          series: {
            backup: pair.backup.lat.series(pair.backup.startedAt, P.load.seconds, 1000),
            baseline: pair.baseline.lat.series(pair.baseline.startedAt, P.load.seconds, 1000),
          },
        };
        if (mode === 'mariabackup') {
          rec.mariabackup = { backup_s: round(b.seconds), bytes: b.bytes, files: b.files };
        } else {
          const cutRel = b.final.cut_at ? (b.final.cut_at - pair.backup.startedAt) / 1000 : null;
          rec.hotbackup = { wall_s: round(b.wall_s), shim_s: b.shim_s, copy_s: b.copy_s, cut_stall_us: b.cut_stall_us,
            bytes_copied: b.bytes_copied, bytes_mirrored: b.bytes_mirrored, bytes_total: b.bytes_total, cut_at_s: round(cutRel) };
          if (cutRel !== null) {
            const inB = pair.backup.lat.inflight(b.final.cut_at);
            const inA = pair.baseline.lat.inflight(pair.baseline.startedAt + cutRel * 1000);
            // The same measure at 40 instants spread over the backup window: is the cut worse than any other moment?
            const inst = Array.from({ length: 40 }, (_, i) => rel0 + ((i + 0.5) / 40) * (rel1 - rel0));
            const spread = (run) => summary(inst.map((t) => run.lat.inflight(run.startedAt + t * 1000).max_latency_ms ?? 0));
            rec.cut_client = { backup_inflight: inB, baseline_inflight: inA,
              backup_window_inflight_max_ms: spread(pair.backup), baseline_window_inflight_max_ms: spread(pair.baseline),
              backup_max_ms_near_cut: windowFigures(pair.backup, cutRel - 0.5, cutRel + 0.5).latency_max_ms,
              baseline_max_ms_near_cut: windowFigures(pair.baseline, cutRel - 0.5, cutRel + 0.5).latency_max_ms };
          }
        }
        log(`load ${mode} rep ${rep}: window ${rec.window_s}s, tps ${wb.tps?.toFixed(0)} vs ${w0.tps?.toFixed(0)} ` +
          `(${(rec.tps_ratio * 100).toFixed(1)}%), max ${wb.latency_max_ms?.toFixed(1)} vs ${w0.latency_max_ms?.toFixed(1)} ms` +
          (rec.hotbackup ? `, cut stall ${rec.hotbackup.cut_stall_us} us, mirrored ${rec.hotbackup.bytes_mirrored} B` : ''));
        out.modes[mode].reps.push(rec);
        if (rep === P.load.reps - 1 && (mode === 'hotbackup' || mode === 'mariabackup')) keep[mode] = b.dest;
        else rmrf(b.dest);
      }
    }
    await s.stop();
  }
  for (const [mode, m] of Object.entries(out.modes)) {
    const r = m.reps;
    m.tps_ratio = summary(r.map((x) => x.tps_ratio));
    m.p99_ratio = summary(r.map((x) => x.p99_ratio));
    m.window_s = summary(r.map((x) => x.window_s));
    m.backup_max_latency_ms = summary(r.map((x) => x.backup.latency_max_ms));
    m.baseline_max_latency_ms = summary(r.map((x) => x.baseline.latency_max_ms));
    m.backup_p99_ms = summary(r.map((x) => x.backup.latency_p99_ms));
    m.baseline_p99_ms = summary(r.map((x) => x.baseline.latency_p99_ms));
    m.backup_tps = summary(r.map((x) => x.backup.tps));
    m.server_cpus_backup = summary(r.map((x) => x.cpu.backup?.server_cpus));
    m.server_cpus_baseline = summary(r.map((x) => x.cpu.baseline?.server_cpus));
    m.machine_busy_backup = summary(r.map((x) => x.cpu.backup?.machine_busy));
    m.machine_busy_baseline = summary(r.map((x) => x.cpu.baseline?.machine_busy));
    m.machine_iowait_backup = summary(r.map((x) => x.cpu.backup?.machine_iowait));
    m.machine_iowait_baseline = summary(r.map((x) => x.cpu.baseline?.machine_iowait));
    m.baseline_tps = summary(r.map((x) => x.baseline.tps));
    if (mode !== 'mariabackup') {
      m.cut_stall_us = summary(r.map((x) => x.hotbackup.cut_stall_us));
      m.bytes_mirrored = summary(r.map((x) => x.hotbackup.bytes_mirrored));
      m.bytes_copied = summary(r.map((x) => x.hotbackup.bytes_copied));
      m.cut_inflight_max_ms = summary(r.map((x) => x.cut_client?.backup_inflight.max_latency_ms));
      m.baseline_inflight_max_ms = summary(r.map((x) => x.cut_client?.baseline_inflight.max_latency_ms));
      m.window_inflight_max_ms = summary(r.map((x) => x.cut_client?.backup_window_inflight_max_ms.max));
      m.window_inflight_median_ms = summary(r.map((x) => x.cut_client?.backup_window_inflight_max_ms.median));
    } else {
      m.backup_s = summary(r.map((x) => x.mariabackup.backup_s));
    }
  }
  ctx.kept = keep;
  return out;
}

async function captureOnlyRun(ctx, s, dest) {
  const { P } = ctx;
  const arm = await request(s.control, { op: 'test_pause', point: 'cut', on: true });
  if (!arm.ok) throw new Error(`test_pause: ${JSON.stringify(arm.error)}`);
  const loadEnd = Date.now() + (P.load.seconds - P.load.backupAt) * 1000;
  const r = await request(s.control, { op: 'start', dest });
  if (!r.ok) throw new Error(`start: ${JSON.stringify(r.error)}`);
  for (;;) {
    const p = await request(s.control, { op: 'test_paused' });
    if (p.paused === 'cut') break;
    const st = await status(s.control);
    if (st.state !== 'copying') throw new Error(`capture_only: backup ended ${st.state} before the cut pause`);
    await sleep(50);
  }
  const t0 = Date.now();
  const hold = Math.max(1000, Math.min(P.load.captureHold * 1000, loadEnd - t0 - 2000));
  await sleep(hold);
  const t1 = Date.now();
  await request(s.control, { op: 'test_pause', point: 'cut', on: false });
  const { final } = await pollUntilEnd(s.control, 100);
  if (final.state !== 'done') throw new Error(`capture_only backup ended ${final.state}`);
  return { t0, t1, dest, final, ...shimTimes(final), wall_s: (t1 - t0) / 1000 };
}

async function mariabackupRun(ctx, s, dest) {
  const t0 = Date.now();
  const m0 = mono();
  const r = await run(ctx.bins.mariabackup, ['--no-defaults', '--backup', `--target-dir=${dest}`, `--socket=${s.sock}`,
    '--user=root', `--datadir=${s.datadir}`], { allowFail: true });
  const seconds = mono() - m0;
  if (r.status !== 0) throw new Error(`mariabackup --backup failed: ${r.stderr.slice(-1500)}`);
  const sz = treeSize(dest);
  return { t0, t1: Date.now(), seconds, dest, bytes: sz.bytes, files: sz.files };
}

// ---- idle copies: copy speed (2), scaling (7), memory (5) ------------------------------

function cacheTreatment(ctx, src) {
  if (ctx.cache === 'cold') dropCaches();
  else {
    sh('sync');
    warmTree(src);
  }
}

/** Samples the server's memory while fn runs. */
async function withMemory(pid, fn) {
  const before = procStatus(pid);
  const reset = resetPeakRss(pid);
  let peak = before?.VmRSS ?? 0;
  let peakAnon = before?.RssAnon ?? 0;
  let threads = before?.Threads ?? 0;
  const timer = setInterval(() => {
    const st = procStatus(pid);
    if (!st) return;
    peak = Math.max(peak, st.VmRSS);
    peakAnon = Math.max(peakAnon, st.RssAnon);
    threads = Math.max(threads, st.Threads);
  }, 20);
  try {
    const value = await fn();
    const after = procStatus(pid);
    const hwm = reset && after ? after.VmHWM : null;
    return { value, memory: { rss_before: before?.VmRSS, anon_before: before?.RssAnon, rss_peak_sampled: peak,
      anon_peak_sampled: peakAnon, vmhwm_after_reset: hwm, rss_after: after?.VmRSS,
      added_peak: Math.max(peak, hwm ?? 0) - (before?.VmRSS ?? 0), added_anon_peak: peakAnon - (before?.RssAnon ?? 0),
      threads_before: before?.Threads, threads_peak: threads } };
  } finally {
    clearInterval(timer);
  }
}

async function copySide(ctx, s, side, dest, o = {}) {
  rmrf(dest);
  cacheTreatment(ctx, s.datadir);
  if (side === 'cp') {
    const t = await timed(async () => {
      await run('cp', ['-a', s.datadir, dest]);
      sh('sync');
    });
    const sz = treeSize(dest);
    return { seconds: t.seconds, bytes: sz.bytes, files: sz.files };
  }
  if (side === 'hotbackup') {
    const r = await withMemory(s.pid, async () => timed(async () => {
      const b = o.cli ? await backupViaCli(s.control, dest, ctx.cliEnv) : await backupViaSocket(s.control, dest, { pollMs: 100 });
      sh('sync');
      return b;
    }));
    const b = r.value.value;
    return { seconds: r.value.seconds, shim_s: b.shim_s, copy_s: b.copy_s, cut_stall_us: b.cut_stall_us,
      bytes: b.bytes_copied, bytes_total: b.bytes_total, files: b.files_total, memory: r.memory, via: o.cli ? 'cli' : 'socket' };
  }
  if (side === 'mariabackup') {
    const b = await timed(() => run(ctx.bins.mariabackup, ['--no-defaults', '--backup', `--target-dir=${dest}`,
      `--socket=${s.sock}`, '--user=root', `--datadir=${s.datadir}`]));
    const before = treeSize(dest);
    const p = await timed(async () => {
      await run(ctx.bins.mariabackup, ['--no-defaults', '--prepare', `--target-dir=${dest}`]);
      sh('sync');
    });
    return { seconds: b.seconds + p.seconds, backup_s: b.seconds, prepare_s: p.seconds, bytes: before.bytes, files: before.files };
  }
  throw new Error(side);
}

async function copyCompare(ctx, s, sides, reps, tag, o = {}) {
  const res = Object.fromEntries(sides.map((x) => [x, []]));
  if (o.fresh) {
    // Memory is judged on the first backup of a freshly started server (its allocations are
    // then visible as growth, not hidden in memory a previous backup left to malloc).
    await s.stop();
    await s.start();
    await sleep(1000);
  }
  for (let rep = 0; rep < reps; rep++) {
    for (const side of alternate(sides, rep)) {
      const dest = join(ctx.work, 'copy', `${tag}-${side}`);
      mkdirSync(join(ctx.work, 'copy'), { recursive: true });
      const r = await copySide(ctx, s, side, dest, o);
      res[side].push(r);
      log(`copy ${tag} ${side}: ${r.seconds.toFixed(2)} s, ${(r.bytes / 1e6).toFixed(0)} MB` +
        (r.memory ? `, RSS +${(r.memory.added_peak / 1048576).toFixed(1)} MiB` : ''));
      const keepIt = o.keep?.includes(side) && rep === reps - 1;
      if (!keepIt) rmrf(dest);
      else res[side].kept = dest;
    }
  }
  const sz = treeSize(s.datadir);
  const out = { datadir_bytes: sz.bytes, datadir_files: sz.files, sides: {} };
  for (const side of sides) {
    const a = res[side];
    out.sides[side] = { seconds: summary(a.map((x) => x.seconds)), bytes: summary(a.map((x) => x.bytes)),
      mb_per_s: summary(a.map((x) => x.bytes / x.seconds / 1e6)), runs: a };
    if (side === 'hotbackup') {
      out.sides[side].shim_s = summary(a.map((x) => x.shim_s));
      out.sides[side].copy_phase_s = summary(a.map((x) => x.copy_s));
      out.sides[side].seal_phase_s = summary(a.map((x) => x.shim_s - x.copy_s));
      out.sides[side].copy_phase_mb_per_s = summary(a.map((x) => x.bytes / x.copy_s / 1e6));
      out.sides[side].cut_stall_us = summary(a.map((x) => x.cut_stall_us));
    }
    if (side === 'mariabackup') {
      out.sides[side].backup_s = summary(a.map((x) => x.backup_s));
      out.sides[side].prepare_s = summary(a.map((x) => x.prepare_s));
    }
  }
  if (res.hotbackup && res.cp) {
    // Speed relative to cp -a of the same directory: time(cp) / time(hotbackup), per repetition.
    out.hot_vs_cp_speed = summary(res.hotbackup.map((x, k) => res.cp[k].seconds / x.seconds));
    out.hot_vs_cp_speed_shim_timing = summary(res.hotbackup.map((x, k) => res.cp[k].seconds / x.shim_s));
  }
  if (res.hotbackup && res.mariabackup) out.hot_vs_mariabackup_speed = summary(res.hotbackup.map((x, k) => res.mariabackup[k].seconds / x.seconds));
  if (res.mariabackup && res.cp) out.mariabackup_vs_cp_speed = summary(res.mariabackup.map((x, k) => res.cp[k].seconds / x.seconds));
  out.kept = Object.fromEntries(sides.filter((x) => res[x].kept).map((x) => [x, res[x].kept]));
  return out;
}

/** Grows the datadir with copies of the sbtest tables until it holds ~target bytes. */
export async function growTo(ctx, s, targetBytes) {
  const { tables } = ctx.P.base;
  await s.query('CREATE DATABASE IF NOT EXISTS bulk');
  ctx.bulkN ??= 0;
  const t = await timed(async () => {
    while (treeSize(s.datadir).bytes < targetBytes) {
      const i = ++ctx.bulkN;
      const src = `sbtest${((i - 1) % tables) + 1}`;
      const dd = s.datadir;
      await s.query(`CREATE TABLE bulk.t${i} LIKE sbtest.${src}; ALTER TABLE bulk.t${i} DISCARD TABLESPACE;` +
        `FLUSH TABLES sbtest.${src} FOR EXPORT; system cp ${dd}/sbtest/${src}.ibd ${dd}/bulk/t${i}.ibd; ` +
        `system cp ${dd}/sbtest/${src}.cfg ${dd}/bulk/t${i}.cfg; UNLOCK TABLES; ALTER TABLE bulk.t${i} IMPORT TABLESPACE;`);
      rmrf(`${dd}/bulk/t${i}.cfg`);
    }
  });
  await s.checkpoint();
  return t.seconds;
}

export async function idleCopies(ctx) {
  const { P } = ctx;
  const s = newServer(ctx, 'idle-copy', ctx.datadir, true);
  await s.start();
  await s.checkpoint();
  const scaling = { status: 'ok', cache: ctx.cache, sizes: [] };
  const memory = { status: 'ok', sizes: [] };
  const mem = (label, cmp) => {
    const runs = cmp.sides.hotbackup.runs;
    const f = runs[0].memory;
    memory.sizes.push({ label, datadir_bytes: cmp.datadir_bytes,
      first_after_start: { rss_idle_bytes: f.rss_before, rss_peak_bytes: f.rss_before + f.added_peak, added_peak_bytes: f.added_peak,
        added_anon_peak_bytes: f.added_anon_peak, threads_idle: f.threads_before, threads_peak: f.threads_peak },
      rss_idle_bytes: summary(runs.map((r) => r.memory.rss_before)),
      rss_peak_bytes: summary(runs.map((r) => r.memory.rss_before + r.memory.added_peak)),
      added_peak_bytes: summary(runs.map((r) => r.memory.added_peak)),
      added_anon_peak_bytes: summary(runs.map((r) => r.memory.added_anon_peak)),
      threads_idle: summary(runs.map((r) => r.memory.threads_before)),
      threads_peak: summary(runs.map((r) => r.memory.threads_peak)) });
  };
  // S1
  const s1 = await copyCompare(ctx, s, ['hotbackup', 'cp'], P.scaling.reps, 'S1', { fresh: true });
  scaling.sizes.push({ label: 'S1', ...s1 });
  mem('S1', s1);
  // S2, S3
  const base = s1.datadir_bytes;
  let copy = null;
  for (const [k, g] of P.growth.entries()) {
    const label = `S${k + 2}`;
    const grow_s = await growTo(ctx, s, base * g);
    log(`grew datadir to ${(treeSize(s.datadir).bytes / 1e6).toFixed(0)} MB in ${grow_s.toFixed(1)} s`);
    if (k === P.growth.length - 1) {
      copy = await copyCompare(ctx, s, ['hotbackup', 'cp', 'mariabackup'], P.copy.reps, label, { cli: true, keep: ['hotbackup'], fresh: true });
      scaling.sizes.push({ label, grow_s: round(grow_s), ...copy, from_copy_section: true });
      mem(label, copy);
    } else {
      const r = await copyCompare(ctx, s, ['hotbackup', 'cp'], P.scaling.reps, label);
      scaling.sizes.push({ label, grow_s: round(grow_s), ...r });
    }
  }
  // linearity: seconds per GB at each size
  for (const z of scaling.sizes) {
    z.hot_s_per_gb = round(z.sides.hotbackup.seconds.median / (z.datadir_bytes / 1e9));
    z.cp_s_per_gb = round(z.sides.cp.seconds.median / (z.datadir_bytes / 1e9));
  }
  const copySection = { status: 'ok', cache: ctx.cache, size_label: `S${P.growth.length + 1}`, ...copy,
    hotbackup_via: 'CLI: hotbackup start DEST --socket S --wait (wall clock, includes Node start-up) + sync',
    cp_via: 'cp -a DATADIR DEST && sync', mariabackup_via: 'mariabackup --backup, then --prepare, then sync' };
  ctx.copyServer = s;
  ctx.bigBackup = copy.kept?.hotbackup ?? null;
  ctx.unthrottledRate = copy.sides.hotbackup.copy_phase_mb_per_s.median * 1e6;
  return { copySection, scaling, memory };
}

// ---- 4. throttle -----------------------------------------------------------------------

function slope(samples, t0, t1) {
  const pts = samples.filter((x) => x.mono >= t0 && x.mono <= t1 && x.state === 'copying');
  if (pts.length < 3) return null;
  const mx = pts.reduce((a, p) => a + p.mono, 0) / pts.length;
  const my = pts.reduce((a, p) => a + p.bytes_copied, 0) / pts.length;
  let num = 0;
  let den = 0;
  for (const p of pts) {
    num += (p.mono - mx) * (p.bytes_copied - my);
    den += (p.mono - mx) ** 2;
  }
  return den > 0 ? num / den : null;
}

async function throttledRun(ctx, s, dest, segments) {
  rmrf(dest);
  const samples = [];
  const r = await request(s.control, { op: 'start', dest, throttle_bytes_per_sec: segments[0].rate });
  if (!r.ok) throw new Error(`start: ${JSON.stringify(r.error)}`);
  const t0 = mono();
  const marks = [t0];
  let seg = 0;
  let end = t0 + segments[0].seconds;
  for (;;) {
    const now = mono();
    const st = await status(s.control);
    samples.push({ mono: now, t: Date.now(), state: st.state, bytes_copied: st.bytes_copied, throttle: st.throttle_bytes_per_sec });
    if (st.state !== 'copying') break;
    if (now >= end) {
      seg++;
      if (seg >= segments.length) break;
      const tr = await request(s.control, { op: 'throttle', bytes_per_sec: segments[seg].rate });
      if (!tr.ok) throw new Error(`throttle: ${JSON.stringify(tr.error)}`);
      marks.push(mono());
      end = mono() + segments[seg].seconds;
    }
    await sleep(100);
  }
  const finished = samples.at(-1).state !== 'copying';
  await request(s.control, { op: 'cancel' }).catch(() => {});
  await pollUntilEnd(s.control, 100);
  rmrf(dest);
  const out = [];
  for (let i = 0; i < segments.length; i++) {
    const a = marks[i];
    const b = marks[i + 1] ?? samples.at(-1).mono;
    const first = samples.find((x) => x.mono >= a);
    const last = [...samples].reverse().find((x) => x.mono <= b);
    const whole = first && last && last.mono > first.mono ? (last.bytes_copied - first.bytes_copied) / (last.mono - first.mono) : null;
    const steady = slope(samples, a + Math.min(0.5, (b - a) / 4), b);
    const set = segments[i].rate;
    out.push({ set_bytes_per_sec: set, measured_bytes_per_sec: steady, measured_whole_bytes_per_sec: whole,
      error: steady ? steady / set - 1 : null, error_whole: whole ? whole / set - 1 : null, seconds: round(b - a) });
  }
  return { segments: out, ended_before_time: finished, samples: samples.map((x) => ({ t: round(x.mono - t0), bytes: x.bytes_copied })) };
}

export async function throttle(ctx) {
  const { P } = ctx;
  const s = ctx.copyServer;
  const dest = join(ctx.work, 'throttle');
  const runs = [];
  for (const rate of P.throttle.rates) {
    const r = await throttledRun(ctx, s, dest, [{ rate, seconds: P.throttle.seconds }]);
    runs.push({ kind: 'fixed', ...r });
    log(`throttle ${rate / 1e6} MB/s: measured ${(r.segments[0].measured_bytes_per_sec / 1e6).toFixed(2)} MB/s`);
  }
  const [r1, r2] = P.throttle.change;
  const ch = await throttledRun(ctx, s, dest, [{ rate: r1, seconds: P.throttle.changeSeconds }, { rate: r2, seconds: P.throttle.changeSeconds }]);
  runs.push({ kind: 'changed', ...ch });
  log(`throttle ${r1 / 1e6} -> ${r2 / 1e6} MB/s: ${ch.segments.map((x) => (x.measured_bytes_per_sec / 1e6).toFixed(2)).join(' -> ')} MB/s`);
  // A set rate above what the copier reaches unthrottled on this machine cannot be met by any
  // throttle: such rates are shown but not used to judge the throttle's accuracy.
  const cap = ctx.unthrottledRate ?? Infinity;
  for (const r of runs) for (const x of r.segments) x.reachable = x.set_bytes_per_sec <= 0.9 * cap;
  const segs = runs.flatMap((r) => r.segments);
  const errs = segs.filter((x) => x.reachable).map((x) => x.error).filter(Number.isFinite);
  const all = segs.map((x) => x.error).filter(Number.isFinite);
  return { status: 'ok', method: 'backup of the idle datadir started with the rate set, bytes_copied polled every 100 ms, ' +
    'cancelled after the time; rate = least-squares slope of bytes_copied over time after the first 0.5 s of a segment; ' +
    '"whole" = bytes/time over the full segment', datadir_bytes: treeSize(s.datadir).bytes, runs,
    unthrottled_copy_bytes_per_sec: Number.isFinite(cap) ? cap : null,
    max_abs_error: errs.length ? Math.max(...errs.map(Math.abs)) : null,
    max_abs_error_all_rates: all.length ? Math.max(...all.map(Math.abs)) : null };
}

// ---- 8. verify ---------------------------------------------------------------------------

export async function verify(ctx) {
  const { P } = ctx;
  const b = ctx.bigBackup;
  if (!b || !existsSync(b)) return { status: 'failed', reason: 'no backup kept from the copy section' };
  const res = { verify: [], cat: [] };
  const bytes = treeSize(b).bytes;
  for (let rep = 0; rep < P.verify.reps; rep++) {
    for (const side of alternate(['verify', 'cat'], rep)) {
      if (ctx.cache === 'cold') dropCaches();
      else warmTree(b);
      const t = await timed(() => side === 'verify'
        ? run(process.execPath, [CLI, 'verify', b, '--json'], { allowFail: true })
        : run('sh', ['-c', `find "${b}" -type f -print0 | xargs -0 cat > /dev/null`]));
      if (side === 'verify') {
        let rep2 = null;
        try { rep2 = JSON.parse(t.value.stdout); } catch { /* reported below */ }
        if (t.value.status !== 0) throw new Error(`hotbackup verify exited ${t.value.status}: ${(t.value.stdout + t.value.stderr).slice(-800)}`);
        res.verify.push({ seconds: t.seconds, status: rep2?.status ?? null, reported_bytes_per_sec: rep2?.bytes_per_sec ?? null });
      } else res.cat.push({ seconds: t.seconds });
    }
  }
  const out = { status: 'ok', cache: ctx.cache, backup_bytes: bytes,
    verify_s: summary(res.verify.map((x) => x.seconds)), cat_s: summary(res.cat.map((x) => x.seconds)),
    verify_mb_per_s: summary(res.verify.map((x) => bytes / x.seconds / 1e6)),
    cat_mb_per_s: summary(res.cat.map((x) => bytes / x.seconds / 1e6)),
    verify_vs_cat_speed: summary(res.verify.map((x, k) => res.cat[k].seconds / x.seconds)),
    verify_result: res.verify.at(-1)?.status ?? null };
  // bench/verify.mjs (the verify engineer's own benchmark: its own data set, warm and cold), when present
  const vb = join(ROOT, 'bench', 'verify.mjs');
  if (existsSync(vb)) {
    const vout = join(ctx.work, 'verify-bench');
    mkdirSync(vout, { recursive: true });
    const r = await run(process.execPath, [vb, `--out=${vout}`, ...P.verify.benchArgs], { allowFail: true, cwd: ROOT });
    const jf = readdirSync(vout).filter((f) => f.endsWith('.json')).sort().at(-1);
    let parsed = null;
    try { parsed = jf ? JSON.parse(readFileSync(join(vout, jf), 'utf8')) : null; } catch { /* reported as text */ }
    out.bench_verify = { exit: r.status, args: P.verify.benchArgs, json: parsed,
      text: parsed ? null : (r.stdout + r.stderr).slice(-3000) };
    if (r.status !== 0) throw new Error(`bench/verify.mjs exited ${r.status}: ${(r.stderr || r.stdout).slice(-1500)}`);
  } else out.bench_verify = { status: 'absent', reason: 'bench/verify.mjs does not exist in this tree' };
  return out;
}

// ---- 7b. file count ---------------------------------------------------------------------

export async function fileCount(ctx) {
  const { P } = ctx;
  const s = ctx.copyServer;
  await s.query('CREATE DATABASE IF NOT EXISTS many');
  const dir = join(s.datadir, 'many');
  let have = 0;
  const points = [];
  for (const n of P.files.tables) {
    await s.query('SET GLOBAL innodb_flush_log_at_trx_commit=0');
    const t = await timed(async () => {
      for (let i = have + 1; i <= n; i += 100) {
        let sql = '';
        for (let k = i; k < Math.min(i + 100, n + 1); k++) {
          sql += `CREATE TABLE many.t${k} (id INT PRIMARY KEY, k INT, c CHAR(120), KEY (k)) ENGINE=InnoDB;` +
            `INSERT INTO many.t${k} VALUES (1,1,'a'),(2,2,'b'),(3,3,'c');`;
        }
        await s.query(sql);
      }
    });
    have = n;
    await s.query('SET GLOBAL innodb_flush_log_at_trx_commit=1');
    await s.checkpoint();
    const res = { hotbackup: [], cp: [] };
    for (let rep = 0; rep < P.files.reps; rep++) {
      for (const side of alternate(['hotbackup', 'cp'], rep)) {
        const dest = join(ctx.work, 'files', `${n}-${side}`);
        mkdirSync(join(ctx.work, 'files'), { recursive: true });
        rmrf(dest);
        if (ctx.cache === 'cold') dropCaches();
        else { sh('sync'); warmTree(dir); }
        const r = await timed(async () => {
          if (side === 'cp') await run('cp', ['-a', dir, dest]);
          else await backupViaSocket(s.control, dest, { sources: [dir], pollMs: 50 });
          sh('sync');
        });
        res[side].push(r.seconds);
        rmrf(dest);
      }
    }
    const sz = treeSize(dir);
    points.push({ tables: n, files: sz.files, bytes: sz.bytes, create_s: round(t.seconds),
      hotbackup_s: summary(res.hotbackup), cp_s: summary(res.cp),
      hot_vs_cp_speed: summary(res.hotbackup.map((x, k) => res.cp[k] / x)),
      hot_ms_per_file: round((median(res.hotbackup) / sz.files) * 1000, 4),
      cp_ms_per_file: round((median(res.cp) / sz.files) * 1000, 4) });
    log(`files ${sz.files}: hotbackup ${median(res.hotbackup).toFixed(2)} s, cp ${median(res.cp).toFixed(2)} s`);
  }
  return { status: 'ok', cache: ctx.cache, source: 'the "many" schema directory only (sources=[datadir/many]); ' +
    'tables of 3 rows, each one .frm and one .ibd', points };
}

// ---- 6. restore --------------------------------------------------------------------------

export async function restore(ctx) {
  const { P } = ctx;
  const hot = ctx.kept?.hotbackup;
  const mb = ctx.kept?.mariabackup;
  if (!hot || !mb) return { status: 'failed', reason: 'the under-load section kept no backups' };
  const hasRestore = await cliHasCommand('restore');
  const res = { hotbackup: [], mariabackup: [] };
  const probe = `SELECT COUNT(*) FROM sbtest.sbtest1`;
  for (let rep = 0; rep < P.restore.reps; rep++) {
    for (const side of alternate(['hotbackup', 'mariabackup'], rep)) {
      const target = join(ctx.work, 'restored', `${side}-${rep}`);
      rmrf(target);
      mkdirSync(join(ctx.work, 'restored'), { recursive: true });
      let work = null;
      if (side === 'mariabackup') {
        work = join(ctx.work, 'restored', `mb-work-${rep}`);
        rmrf(work);
        sh('cp', ['-a', mb, work]); // --prepare changes the backup in place: prepare a copy (not timed)
      }
      sh('sync');
      const t0 = mono();
      const steps = {};
      if (side === 'hotbackup') {
        const a = mono();
        if (hasRestore) await run(process.execPath, [CLI, 'restore', hot, target]);
        else await run('cp', ['-a', hot, target]);
        steps.restore_s = mono() - a;
      } else {
        let a = mono();
        await run(ctx.bins.mariabackup, ['--no-defaults', '--prepare', `--target-dir=${work}`]);
        steps.prepare_s = mono() - a;
        a = mono();
        await run(ctx.bins.mariabackup, ['--no-defaults', '--copy-back', `--target-dir=${work}`, `--datadir=${target}`]);
        steps.copy_back_s = mono() - a;
      }
      const s = newServer(ctx, `restored-${side}-${rep}`, target, false);
      const a = mono();
      await s.start();
      await waitAnswering(s.sock, a, probe);
      steps.start_s = mono() - a;
      const total = mono() - t0;
      const [[count]] = await s.query(probe);
      const recovery = readFileSync(s.errLog, 'utf8').split('\n')
        .filter((l) => /crash recovery|Starting final batch|apply|rollback|To recover/i.test(l)).slice(0, 5)
        .map((l) => l.replace(/^\S+ \S+ \d+ /, ''));
      await s.stop();
      res[side].push({ total_s: total, ...steps, rows_sbtest1: Number(count), recovery_log: recovery });
      log(`restore ${side}: ${total.toFixed(2)} s (${Object.entries(steps).map(([k, v]) => `${k} ${v.toFixed(2)}`).join(', ')})`);
      rmrf(target);
      if (work) rmrf(work);
    }
  }
  const sum = (side, f) => summary(res[side].map((x) => x[f]));
  return { status: 'ok', hotbackup_restore_via: hasRestore ? 'hotbackup restore BACKUP DIR' : 'cp -a BACKUP DIR (no `hotbackup restore` in this tree yet)',
    backups: 'the last unthrottled hotbackup and the last mariabackup taken under load (section 3)',
    answered_when: `"${probe}" returns`,
    hotbackup: { total_s: sum('hotbackup', 'total_s'), restore_s: sum('hotbackup', 'restore_s'), start_s: sum('hotbackup', 'start_s'), runs: res.hotbackup },
    mariabackup: { total_s: sum('mariabackup', 'total_s'), prepare_s: sum('mariabackup', 'prepare_s'),
      copy_back_s: sum('mariabackup', 'copy_back_s'), start_s: sum('mariabackup', 'start_s'), runs: res.mariabackup },
    hot_vs_mariabackup_speed: summary(res.hotbackup.map((x, k) => res.mariabackup[k].total_s / x.total_s)) };
}

export { quantile };
