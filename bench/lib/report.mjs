// Targets of DESIGN.md judged against the measured figures, and docs/benchmarks.md with its
// SVG plots, regenerated from the results of one run.
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { basename, dirname, join, relative } from 'node:path';
import { lineChart } from './svg.mjs';
import { ROOT } from './hotbackup.mjs';

const ok = (s) => s && s.status === 'ok';
const med = (x) => (x && Number.isFinite(x.median) ? x.median : null);

/** Every DESIGN.md performance target with the figure that judges it. */
export function evaluateTargets(r) {
  const s = r.sections;
  const T = [];
  const add = (id, name, target, measured, met, text, detail) =>
    T.push({ id, name, target, measured: measured ?? null, met: measured === null || measured === undefined ? null : met, measured_text: text, detail });

  const pw0 = ok(s.idle_micro) ? s.idle_micro.paired.pwrite0 : null;
  const x = med(pw0?.shim_added_ns);
  add('idle_write_ns', 'Idle: time added per intercepted write (micro-benchmark)', '≤ 2 ns', x, x !== null && x <= 2,
    x === null ? 'not measured' : `${fx(x, 2)} ns (spread ${rng(pw0.shim_added_ns, 2)}; noise floor without shim ${fx(med(pw0.noise_floor_ns), 2)} ns)`,
    'wrapper vs libc pwrite(fd, buf, 0, 0) in alternating batches in one process (the wrapper\'s own cost); ' +
    '4 KiB page-cache pwrite across processes is in the idle table');
  for (const wl of ['oltp_write_only', 'oltp_read_write']) {
    const q = ok(s.idle_server) ? s.idle_server.ratios[wl]?.shim_vs_plain_tps : null;
    const v = med(q);
    add(`idle_tps_${wl}`, `Idle: server throughput with the shim loaded (${wl})`, '≥ 99% of without', v, v !== null && v >= 0.99,
      v === null ? 'not measured' : `${pc(v)} (spread ${rngPc(q)})`);
  }
  {
    const q = ok(s.copy_speed) ? s.copy_speed.hot_vs_cp_speed : null;
    const v = med(q);
    add('copy_speed', 'Copy: idle datadir copied vs cp -a (speed ratio)', '≥ 90% of cp -a', v, v !== null && v >= 0.9,
      v === null ? 'not measured' : `${pc(v)} (spread ${rngPc(q)}; by the shim's own timing ${pc(med(s.copy_speed.hot_vs_cp_speed_shim_timing))})`);
  }
  {
    const q = ok(s.under_load) ? s.under_load.modes.hotbackup?.tps_ratio : null;
    const v = med(q);
    add('load_tps', 'Under load: throughput during an unthrottled backup vs none', '≥ 90%', v, v !== null && v >= 0.9,
      v === null ? 'not measured' : `${pc(v)} (spread ${rngPc(q)})`);
  }
  {
    const m = ok(s.under_load) ? ['hotbackup', 'hotbackup_throttled', 'capture_only'].flatMap((k) => s.under_load.modes[k]?.reps ?? []) : [];
    const stalls = m.map((x) => x.hotbackup.cut_stall_us).filter(Number.isFinite);
    const v = stalls.length ? Math.max(...stalls) / 1000 : null;
    const client = m.map((x) => x.cut_client?.backup_inflight?.max_latency_ms).filter(Number.isFinite);
    const base = m.map((x) => x.cut_client?.baseline_inflight?.max_latency_ms).filter(Number.isFinite);
    const win = m.map((x) => x.cut_client?.backup_window_inflight_max_ms?.median).filter(Number.isFinite);
    add('cut_stall', 'Under load: worst write stall at the cut', '< 10 ms', v, v !== null && v < 10,
      v === null ? 'not measured' : `${fx(v, 3)} ms (the shim's barrier hold, cut_stall_us, worst of ${stalls.length} backups under load); ` +
        `client: the longest transaction in flight at the cut took ${fx(Math.max(...client), 1)} ms (worst), vs ${fx(Math.max(...base), 1)} ms at ` +
        `the same instant without a backup and a median of ${fx(Math.max(...win), 1)} ms at other instants of the backup window`,
      'judged on the shim\'s barrier timing; the client figure includes the general slowdown during the backup (section 3)');
  }
  {
    const v = ok(s.throttle) ? s.throttle.max_abs_error : null;
    add('throttle', 'Throttle: measured copy rate vs set rate', 'within 5%', v, v !== null && v <= 0.05,
      v === null ? 'not measured' : `worst absolute error ${pc(v, 1)} over the ${s.throttle.runs.flatMap((r) => r.segments).filter((x) => x.reachable).length} ` +
        `rates below 90% of the unthrottled copy rate (${fx(s.throttle.unthrottled_copy_bytes_per_sec / 1e6, 0)} MB/s); over every rate ${pc(s.throttle.max_abs_error_all_rates, 1)}`);
  }
  {
    const z = ok(s.memory) ? s.memory.sizes : [];
    const peaks = z.map((q) => q.first_after_start?.added_peak_bytes).filter(Number.isFinite);
    const v = peaks.length ? Math.max(...peaks) / 1048576 : null;
    const first = z[0];
    const last = z.at(-1);
    add('memory', 'Memory: resident memory added by a running backup', 'a few MiB (≤ 8 MiB), independent of data size', v,
      v !== null && v <= 8,
      v === null ? 'not measured' : `${fx(v, 1)} MiB worst (first backup after server start); ${z.map((q) => `${gb(q.datadir_bytes)}: +${fx(q.first_after_start?.added_peak_bytes / 1048576, 1)} MiB`).join(', ')}` +
        (first && last && first !== last ? ` (data ×${fx(last.datadir_bytes / first.datadir_bytes, 1)})` : ''));
  }
  {
    const q = ok(s.restore) ? s.restore : null;
    const h = med(q?.hotbackup.total_s);
    const m = med(q?.mariabackup.total_s);
    add('restore', 'Restore: backup to a server answering queries', 'no prepare step; up in the time of its crash recovery (≤ mariabackup prepare + copy-back + start)',
      h, h !== null && m !== null && h <= m,
      h === null ? 'not measured' : `${fx(h, 2)} s (copy ${fx(med(q.hotbackup.restore_s), 2)} + start with recovery ${fx(med(q.hotbackup.start_s), 2)}) ` +
        `vs mariabackup ${fx(m, 2)} s (prepare ${fx(med(q.mariabackup.prepare_s), 2)} + copy-back ${fx(med(q.mariabackup.copy_back_s), 2)} + start ${fx(med(q.mariabackup.start_s), 2)})`);
  }
  return T;
}

// ---- formatting -------------------------------------------------------------------------

function fx(v, d = 2) {
  return Number.isFinite(v) ? v.toFixed(d) : '—';
}
function pc(v, d = 1) {
  return Number.isFinite(v) ? `${(v * 100).toFixed(d)}%` : '—';
}
function rng(sm, d = 2) {
  if (!sm || !Number.isFinite(sm.min)) return '—';
  return sm.n > 1 ? `${fx(sm.min, d)}…${fx(sm.max, d)}, n=${sm.n}` : 'n=1';
}
function rngPc(sm) {
  if (!sm || !Number.isFinite(sm.min)) return '—';
  return sm.n > 1 ? `${pc(sm.min)}…${pc(sm.max)}, n=${sm.n}` : 'n=1';
}
/** median with spread: "1.23 (1.1…1.4, n=3)" */
function ms(sm, d = 2, scale = 1, unit = '') {
  if (!sm || !Number.isFinite(sm.median)) return '—';
  const v = (x) => fx(x * scale, d);
  return sm.n > 1 ? `${v(sm.median)}${unit} (${v(sm.min)}…${v(sm.max)})` : `${v(sm.median)}${unit}`;
}
function msPc(sm) {
  if (!sm || !Number.isFinite(sm.median)) return '—';
  return sm.n > 1 ? `${pc(sm.median)} (${pc(sm.min)}…${pc(sm.max)})` : pc(sm.median);
}
function gb(b) {
  return b >= 1e9 ? `${(b / 1e9).toFixed(2)} GB` : `${(b / 1e6).toFixed(0)} MB`;
}
function mib(b) {
  return Number.isFinite(b) ? `${(b / 1048576).toFixed(1)} MiB` : '—';
}
function table(head, rows) {
  return [`| ${head.join(' | ')} |`, `| ${head.map(() => '---').join(' | ')} |`, ...rows.map((r) => `| ${r.join(' | ')} |`)].join('\n');
}
function metText(t) {
  return t.met === true ? '**met**' : t.met === false ? '**missed**' : 'not measured';
}
function notOk(sec) {
  return `*Not measured in this run: ${sec?.status ?? 'missing'}${sec?.reason ? ` — ${sec.reason}` : ''}.*`;
}

// ---- plots ------------------------------------------------------------------------------

function plots(r, dir) {
  mkdirSync(dir, { recursive: true });
  const files = {};
  const put = (name, svg) => {
    writeFileSync(join(dir, name), svg);
    files[name.replace(/\.svg$/, '')] = join(dir, name);
  };
  const L = r.sections.under_load;
  if (ok(L)) {
    for (const [mode, m] of Object.entries(L.modes)) {
      const rep = m.reps.at(-1);
      if (!rep) continue;
      const cut = rep.hotbackup?.cut_at_s;
      put(`load-${mode}.svg`, lineChart({
        title: `sysbench ${L.settings.script}, ${L.settings.threads} threads: tps per second, ${mode.replace('_', ' ')} vs no backup`,
        xLabel: 'seconds since sysbench start', yLabel: 'transactions per second',
        series: [
          { name: 'no backup', points: rep.series.baseline.map((p) => [p.t + 0.5, p.tps]), color: '#7f7f7f' },
          { name: `with ${mode.replace('_', ' ')}`, points: rep.series.backup.map((p) => [p.t + 0.5, p.tps]), color: mode === 'mariabackup' ? '#d62728' : '#1f77b4' },
        ],
        bands: [{ x0: rep.window_start_s, x1: rep.window_start_s + rep.window_s, label: `backup ${rep.window_s.toFixed(1)} s` }],
        marks: Number.isFinite(cut) ? [{ x: cut, label: 'cut' }] : [],
      }));
    }
    // hotbackup vs mariabackup, aligned on the backup start
    const series = [];
    const maxl = [];
    const bands = [];
    for (const [mode, color] of [['hotbackup', '#1f77b4'], ['hotbackup_throttled', '#2ca02c'], ['mariabackup', '#d62728']]) {
      const rep = L.modes[mode]?.reps.at(-1);
      if (!rep) continue;
      const off = rep.window_start_s;
      const base = rep.series.baseline;
      series.push({ name: mode.replace('_', ' '), color, points: rep.series.backup.map((p, k) => [p.t + 0.5 - off, base[k]?.tps ? p.tps / base[k].tps : null]) });
      maxl.push({ name: mode.replace('_', ' '), color, points: rep.series.backup.map((p) => [p.t + 0.5 - off, p.max_ms]) });
      bands.push({ x0: 0, x1: rep.window_s, label: `${rep.window_s.toFixed(1)} s`, color });
    }
    if (series.length) {
      put('load-compare.svg', lineChart({ title: 'tps during the backup relative to the same second of a run without backup',
        xLabel: 'seconds since the backup started (bars: each backup\'s window)', yLabel: 'tps ratio (1 = no effect)', series, bandStyle: 'bars',
        bands: bands.map((b) => ({ ...b, label: `${b.label}` })),
        yMin: 0, yMax: 1.6, yLines: [{ y: 0.9, label: 'target 90%' }, { y: 1 }] }));
      put('load-maxlat.svg', lineChart({ title: 'longest transaction per second (ms) in the run with a backup',
        xLabel: 'seconds since the backup started (bars: each backup\'s window)', yLabel: 'max latency (ms)', series: maxl, bandStyle: 'bars', bands }));
    }
  }
  const Th = r.sections.throttle;
  if (ok(Th)) {
    const series = [];
    const lines = [];
    for (const run of Th.runs) {
      const pts = [];
      const sm = run.samples;
      for (let i = 5; i < sm.length; i++) {
        const a = sm[i - 5];
        const b = sm[i];
        if (b.t > a.t) pts.push([(a.t + b.t) / 2, (b.bytes - a.bytes) / (b.t - a.t) / 1e6]);
      }
      const name = run.segments.map((x) => `${x.set_bytes_per_sec / 1e6}`).join('→') + ' MB/s set';
      series.push({ name, points: pts });
      for (const x of run.segments) lines.push({ y: x.set_bytes_per_sec / 1e6 });
    }
    put('throttle.svg', lineChart({ title: 'copy rate (bytes_copied over 0.5 s windows) at each set rate', xLabel: 'seconds since start',
      yLabel: 'MB/s', series, yLines: lines }));
  }
  const Sc = r.sections.scaling;
  if (ok(Sc)) {
    put('scaling-size.svg', lineChart({ title: 'idle backup time against datadir size', xLabel: 'datadir (GB)', yLabel: 'seconds',
      series: [
        { name: 'hotbackup', dots: true, points: Sc.sizes.map((z) => [z.datadir_bytes / 1e9, z.sides.hotbackup.seconds.median]) },
        { name: 'cp -a + sync', dots: true, color: '#7f7f7f', points: Sc.sizes.map((z) => [z.datadir_bytes / 1e9, z.sides.cp.seconds.median]) },
      ] }));
    if (ok(Sc.files)) {
      put('scaling-files.svg', lineChart({ title: 'backup time of one schema directory against its file count', xLabel: 'files', yLabel: 'seconds',
        series: [
          { name: 'hotbackup', dots: true, points: Sc.files.points.map((p) => [p.files, p.hotbackup_s.median]) },
          { name: 'cp -a + sync', dots: true, color: '#7f7f7f', points: Sc.files.points.map((p) => [p.files, p.cp_s.median]) },
        ] }));
    }
  }
  return files;
}

// ---- the document -------------------------------------------------------------------------

export function writeReport(r, file, plotDir) {
  const pf = plots(r, plotDir);
  const img = (k, alt) => (pf[k] ? `![${alt}](${relative(dirname(file), pf[k])})` : '');
  const s = r.sections;
  const out = [];
  const P = r.settings;
  out.push('# Benchmarks');
  out.push('');
  out.push(`Generated by \`npm run bench${r.mode === 'quick' ? ' -- --quick' : ''}\` (bench/run.mjs) on ${r.finished_at}; ` +
    `every figure below was measured in that one run (${(r.duration_s / 60).toFixed(1)} min). The JSON with every figure, ` +
    'including each repetition, is bench/results/latest.json. Within each comparison the sides were alternated over the ' +
    'repetitions; figures are medians with (min…max) over the repetitions; ratios are taken per repetition.');
  if (r.mode === 'quick') out.push('\n**This is a --quick smoke run: small data, short runs, warm caches. Its numbers are not the benchmark.**');
  out.push('');
  out.push('## Machine and settings');
  out.push('');
  const m = r.machine;
  const v = r.versions;
  out.push(table(['', ''], [
    ['CPU', `${m.cpu}, ${m.cpus} vCPU${m.hypervisor ? ` (${m.hypervisor} guest)` : ''}`],
    ['memory', gb(m.memory_bytes)],
    ['OS / kernel', `${m.os ?? '?'} / ${m.kernel}`],
    ['work file system', m.work_fs || '?'],
    ['load average at start', m.loadavg_at_start],
    ['MariaDB', v.mariadbd ?? 'not installed'],
    ['mariabackup', v.mariabackup ?? 'not installed'],
    ['sysbench', v.sysbench ?? 'not installed'],
    ['node / gcc / cp', `${v.node} / ${v.gcc} / ${v.cp}`],
    ['hotbackup', `git ${v.git_head?.slice(0, 12)}${v.shim_sources_dirty ? ' (native/shim had uncommitted changes)' : ''}, libhotbackup.so sha256 ${v.shim_sha256?.slice(0, 16)}…`],
    ['server options', P.server],
    ['cache treatment (idle copies, verify)', P.cache_note],
    ['base data set', P.base_data?.tables ? `sysbench prepare, ${P.base_data.tables} tables × ${P.base_data.size} rows: datadir ${gb(P.base_data.datadir_bytes)}, ${P.base_data.datadir_files} files` : '—'],
  ]));
  out.push('');
  out.push('## DESIGN.md targets');
  out.push('');
  out.push(table(['target', 'required', 'measured', ''], r.targets.map((t) => [t.name, t.target, t.measured_text, metText(t)])));
  out.push('');
  const analysis = join(ROOT, 'bench', 'analysis.md');
  if (r.mode === 'full' && existsSync(analysis)) {
    out.push(readFileSync(analysis, 'utf8').trim());
    out.push('');
  }

  // 1a
  out.push('## 1. Idle cost');
  out.push('');
  out.push('### 1a. Micro-benchmark (bench/micro/idle_cost.c)');
  out.push('');
  if (ok(s.idle_micro)) {
    const a = s.idle_micro.across_processes;
    out.push(`${s.idle_micro.method}. Processes pinned to CPU ${s.idle_micro.pinned_cpu ?? '(not pinned)'}; ` +
      `${s.idle_micro.processes_per_side} processes per side; the shim process is served (HOTBACKUP_SERVE=idle_cost), no backup runs.`);
    out.push('');
    const names = { pwrite4k_ns: '4 KiB pwrite to the page cache', pwrite0_ns: '0-byte pwrite (syscall only)',
      write_devnull_ns: '4 KiB write to /dev/null', open_close_ns: 'open(O_RDONLY) + close', open_close_w_ns: 'open(O_WRONLY) + close' };
    out.push(table(['call', 'without shim (ns)', 'with shim (ns)', 'added (ns)', 'ratio'], Object.entries(names).map(([k, n]) =>
      [n, ms(a[k].plain, 1), ms(a[k].shim, 1), ms(a[k].added_ns, 1), ms(a[k].ratio, 3)])));
    out.push('');
    out.push('Paired inside one process (wrapper vs libc\'s own function, alternating batches): the wrapper\'s own cost.');
    out.push('');
    const p = s.idle_micro.paired;
    out.push(table(['call', 'added by the wrapper (ns)', 'same measurement without the shim (noise floor, ns)', 'call (ns)'],
      Object.entries({ pwrite0: '0-byte pwrite', pwrite4k: '4 KiB pwrite', open_close: 'open + close' }).map(([k, n]) =>
        [n, ms(p[k].shim_added_ns, 2), ms(p[k].noise_floor_ns, 2), ms(p[k].call_ns, 1)])));
  } else out.push(notOk(s.idle_micro));
  out.push('');
  out.push('### 1b. MariaDB under sysbench, shim loaded and idle');
  out.push('');
  if (ok(s.idle_server)) {
    const I = s.idle_server;
    out.push(`${I.settings.threads} threads, ${I.settings.warmup_s} s warm-up then ${I.settings.measured_s} s measured, ${I.settings.reps} repetitions, ` +
      `the three servers restarted in rotating order on the same datadir. Sides: ${Object.entries(I.settings.sides).map(([k, d]) => `*${k}* = ${d}`).join('; ')}.`);
    if (I.native_aio_note?.length) out.push(`\nThe plain server's error log on native AIO: \`${I.native_aio_note.join(' / ')}\``);
    out.push('');
    const rows = [];
    for (const wl of Object.keys(I.ratios)) {
      for (const side of ['plain', 'shim', 'plain_noaio']) {
        const x = I.sides[side][wl];
        rows.push([wl, side, ms(x.tps, 0), ms(x.p99_ms, 2), ms(x.avg_ms, 3)]);
      }
    }
    out.push(table(['workload', 'side', 'tps', 'p99 (ms)', 'avg (ms)'], rows));
    out.push('');
    out.push(table(['workload', 'tps shim/plain', 'p99 shim/plain', 'tps noaio/plain', 'tps shim/noaio', 'p99 shim/noaio'],
      Object.entries(I.ratios).map(([wl, q]) => [wl, msPc(q.shim_vs_plain_tps), ms(q.shim_vs_plain_p99, 3), msPc(q.noaio_vs_plain_tps),
        msPc(q.shim_vs_noaio_tps), ms(q.shim_vs_noaio_p99, 3)])));
    out.push('');
    out.push(`Server RSS after the runs: plain ${ms(I.rss_bytes.plain, 1, 1 / 1048576, ' MiB')}, shim ${ms(I.rss_bytes.shim, 1, 1 / 1048576, ' MiB')}, ` +
      `plain_noaio ${ms(I.rss_bytes.plain_noaio, 1, 1 / 1048576, ' MiB')}.`);
  } else out.push(notOk(s.idle_server));
  out.push('');

  // 2
  out.push('## 2. Copy speed, idle server');
  out.push('');
  if (ok(s.copy_speed)) {
    const C = s.copy_speed;
    out.push(`Datadir ${gb(C.datadir_bytes)} in ${C.datadir_files} files (size ${C.size_label} of section 7), idle server (shim loaded), ` +
      `cache: **${C.cache}** (${P.cache_note}). hotbackup: ${C.hotbackup_via}; cp: ${C.cp_via}; mariabackup: ${C.mariabackup_via}.`);
    out.push('');
    const rows = Object.entries(C.sides).map(([k, x]) => [k, ms(x.seconds, 2), ms(x.mb_per_s, 0), gb(x.bytes.median),
      k === 'hotbackup' ? `shim's own start→done ${ms(x.shim_s, 2)} s = copy until the cut ${ms(x.copy_phase_s, 2)} s ` +
        `(${ms(x.copy_phase_mb_per_s, 0)} MB/s) + seal (fsync, read-back checksums, manifest) ${ms(x.seal_phase_s, 2)} s; cut stall ${ms(x.cut_stall_us, 0)} µs`
        : k === 'mariabackup' ? `--backup ${ms(x.backup_s, 2)} s + --prepare ${ms(x.prepare_s, 2)} s` : '']);
    out.push(table(['side', 'seconds', 'MB/s (datadir bytes / s)', 'bytes written', 'notes'], rows));
    out.push('');
    out.push(`hotbackup speed relative to cp -a: **${msPc(C.hot_vs_cp_speed)}** (by the shim's own timing ${msPc(C.hot_vs_cp_speed_shim_timing)}); ` +
      `relative to mariabackup (backup + prepare): ${msPc(C.hot_vs_mariabackup_speed)}; mariabackup relative to cp -a: ${msPc(C.mariabackup_vs_cp_speed)}.`);
  } else out.push(notOk(s.copy_speed));
  out.push('');

  // 3
  out.push('## 3. Under load');
  out.push('');
  if (ok(s.under_load)) {
    const L = s.under_load;
    out.push(`sysbench ${L.settings.script}, ${L.settings.threads} threads for ${L.settings.seconds} s per run; the backup starts ` +
      `${L.settings.backup_at_s} s in. Each backup run is paired with a run without backup on the same server (alternating order, ` +
      `${L.settings.reps} repetition(s) per mode). Window: ${L.settings.window}. Throttled: ${L.settings.throttle_bytes_per_sec / 1e6} MB/s. ` +
      'hotbackup runs use the shim-loaded server, mariabackup runs the plain server. ' +
      `*capture_only* is a ${L.settings.capture_only}.`);
    out.push('');
    const rows = Object.entries(L.modes).map(([k, x]) => [k, ms(x.window_s, 2), ms(x.backup_tps, 0), ms(x.baseline_tps, 0), msPc(x.tps_ratio),
      `${ms(x.backup_p99_ms, 2)} / ${ms(x.baseline_p99_ms, 2)}`, `${ms(x.backup_max_latency_ms, 1)} / ${ms(x.baseline_max_latency_ms, 1)}`,
      k === 'mariabackup' ? '—' : ms(x.cut_stall_us, 0),
      k === 'mariabackup' ? '—' : `${ms(x.cut_inflight_max_ms, 2)} / ${ms(x.baseline_inflight_max_ms, 2)} / ${ms(x.window_inflight_median_ms, 2)}`,
      k === 'mariabackup' ? '—' : `${ms(x.bytes_mirrored, 1, 1e-6)} MB of ${ms(x.bytes_copied, 0, 1e-6)} MB`]);
    out.push(table(['mode', 'window (s)', 'tps with backup', 'tps without', 'ratio', 'p99 ms with / without', 'max ms with / without',
      'cut stall (shim, µs)', 'longest txn in flight at the cut, ms: with / without backup / other instants of the window (median)', 'bytes_mirrored'], rows));
    out.push('');
    out.push('CPU in the same windows (diagnostics): the server process\'s CPUs in use on average, and the machine\'s busy and iowait shares of all its CPUs.');
    out.push('');
    out.push(table(['mode', 'server CPUs with / without backup', 'machine busy with / without', 'machine iowait with / without'],
      Object.entries(L.modes).map(([k, x]) => [k, `${ms(x.server_cpus_backup, 2)} / ${ms(x.server_cpus_baseline, 2)}`,
        `${msPc(x.machine_busy_backup)} / ${msPc(x.machine_busy_baseline)}`, `${msPc(x.machine_iowait_backup)} / ${msPc(x.machine_iowait_baseline)}`])));
    out.push('');
    out.push(img('load-compare', 'tps relative to no backup, hotbackup vs mariabackup'));
    out.push('');
    out.push(img('load-maxlat', 'longest transaction per second'));
    out.push('');
    for (const k of Object.keys(L.modes)) {
      out.push(img(`load-${k}`, `tps over time, ${k}`));
      out.push('');
    }
  } else out.push(notOk(s.under_load));
  out.push('');

  // 4
  out.push('## 4. Throttle accuracy');
  out.push('');
  if (ok(s.throttle)) {
    out.push(`${s.throttle.method}. Datadir ${gb(s.throttle.datadir_bytes)}, idle server.`);
    out.push('');
    const rows = s.throttle.runs.flatMap((run) => run.segments.map((x, i) => [run.kind === 'changed' ? `changed mid-way, part ${i + 1}` : 'fixed',
      fx(x.set_bytes_per_sec / 1e6, 1), fx(x.measured_bytes_per_sec / 1e6, 2), pc(x.error, 2), fx(x.measured_whole_bytes_per_sec / 1e6, 2), pc(x.error_whole, 2), fx(x.seconds, 1),
      x.reachable ? 'yes' : `no: above 90% of ${fx(s.throttle.unthrottled_copy_bytes_per_sec / 1e6, 0)} MB/s`]));
    out.push(table(['run', 'set MB/s', 'measured MB/s (steady)', 'error', 'measured MB/s (whole)', 'error (whole)', 'seconds', 'reachable (judged)'], rows));
    out.push('');
    out.push(`Unthrottled, the copier's copy phase ran at ${fx(s.throttle.unthrottled_copy_bytes_per_sec / 1e6, 0)} MB/s on this data (section 2, median).`);
    out.push('');
    out.push(img('throttle', 'copy rate over time at each set rate'));
  } else out.push(notOk(s.throttle));
  out.push('');

  // 5
  out.push('## 5. Memory');
  out.push('');
  if (ok(s.memory)) {
    out.push('Resident memory of mariadbd (VmRSS sampled every 20 ms, and VmHWM after a reset through clear_refs) just before and at the peak ' +
      'of idle backups; "added" = peak − before. The server is restarted before the first backup at each size, so the first backup shows ' +
      'every allocation the shim makes for a backup; later backups reuse what malloc kept.');
    out.push('');
    const mi = (b) => (Number.isFinite(b) ? `${(b / 1048576).toFixed(2)} MiB` : '—');
    out.push(table(['data', 'RSS idle (shim loaded, fresh server)', 'RSS peak, first backup', 'added, first backup', 'added anonymous', 'threads idle → peak', 'added, every backup at this size'],
      s.memory.sizes.map((z) => [`${z.label}: ${gb(z.datadir_bytes)}`, mi(z.first_after_start?.rss_idle_bytes), mi(z.first_after_start?.rss_peak_bytes),
        mi(z.first_after_start?.added_peak_bytes), mi(z.first_after_start?.added_anon_peak_bytes),
        `${z.first_after_start?.threads_idle} → ${z.first_after_start?.threads_peak}`, ms(z.added_peak_bytes, 2, 1 / 1048576, ' MiB')])));
    if (ok(s.idle_server)) {
      const I = s.idle_server.rss_bytes;
      out.push('');
      out.push(`For comparison, RSS after the idle sysbench runs (section 1b): plain ${ms(I.plain, 1, 1 / 1048576, ' MiB')}, shim ${ms(I.shim, 1, 1 / 1048576, ' MiB')}.`);
    }
  } else out.push(notOk(s.memory));
  out.push('');

  // 6
  out.push('## 6. Restore');
  out.push('');
  if (ok(s.restore)) {
    const R = s.restore;
    out.push(`From ${R.backups}. hotbackup: ${R.hotbackup_restore_via}, then mariadbd starts on it (crash recovery). mariabackup: --prepare ` +
      `(on a copy of the backup, copy not timed), --copy-back, start. Time until ${R.answered_when}.`);
    out.push('');
    out.push(table(['side', 'total (s)', 'steps (s)'], [
      ['hotbackup', ms(R.hotbackup.total_s, 2), `restore ${ms(R.hotbackup.restore_s, 2)}, start ${ms(R.hotbackup.start_s, 2)}`],
      ['mariabackup', ms(R.mariabackup.total_s, 2), `prepare ${ms(R.mariabackup.prepare_s, 2)}, copy-back ${ms(R.mariabackup.copy_back_s, 2)}, start ${ms(R.mariabackup.start_s, 2)}`],
    ]));
    out.push('');
    out.push(`hotbackup restore speed relative to mariabackup: ${msPc(R.hot_vs_mariabackup_speed)}.`);
    const rl = R.hotbackup.runs.at(-1)?.recovery_log;
    if (rl?.length) out.push(`\nThe restored hotbackup's error log: \`${rl.join(' / ')}\``);
  } else out.push(notOk(s.restore));
  out.push('');

  // 7
  out.push('## 7. Scaling');
  out.push('');
  if (ok(s.scaling)) {
    const Sc = s.scaling;
    out.push(`Idle server, cache ${Sc.cache}; S1 is the base data set, larger sizes add copies of its tables (transportable tablespaces). ` +
      'hotbackup here is started over the socket (no CLI start-up) except at the largest size, which is section 2.');
    out.push('');
    out.push(table(['size', 'datadir', 'files', 'hotbackup (s)', 'cp -a + sync (s)', 'hotbackup s/GB', 'cp s/GB', 'speed vs cp'],
      Sc.sizes.map((z) => [z.label, gb(z.datadir_bytes), z.datadir_files, ms(z.sides.hotbackup.seconds, 2), ms(z.sides.cp.seconds, 2),
        fx(z.hot_s_per_gb, 2), fx(z.cp_s_per_gb, 2), msPc(z.hot_vs_cp_speed)])));
    out.push('');
    out.push(img('scaling-size', 'backup time against size'));
    out.push('');
    if (ok(Sc.files)) {
      out.push(`File count: ${Sc.files.source}.`);
      out.push('');
      out.push(table(['tables', 'files', 'bytes', 'hotbackup (s)', 'cp -a + sync (s)', 'hotbackup ms/file', 'cp ms/file', 'speed vs cp'],
        Sc.files.points.map((p) => [p.tables, p.files, gb(p.bytes), ms(p.hotbackup_s, 3), ms(p.cp_s, 3), fx(p.hot_ms_per_file, 3), fx(p.cp_ms_per_file, 3), msPc(p.hot_vs_cp_speed)])));
      out.push('');
      out.push(img('scaling-files', 'backup time against file count'));
    } else out.push(notOk(Sc.files));
  } else out.push(notOk(s.scaling));
  out.push('');

  // 8
  out.push('## 8. Verify');
  out.push('');
  if (ok(s.verify)) {
    const V = s.verify;
    out.push(`\`hotbackup verify BACKUP --json\` (CLI wall time) vs \`cat\` of every file of the same backup (${gb(V.backup_bytes)}), cache ${V.cache}. Result: ${V.verify_result}.`);
    out.push('');
    out.push(table(['side', 'seconds', 'MB/s'], [['hotbackup verify', ms(V.verify_s, 2), ms(V.verify_mb_per_s, 0)], ['cat', ms(V.cat_s, 2), ms(V.cat_mb_per_s, 0)]]));
    out.push('');
    out.push(`verify speed relative to cat: ${msPc(V.verify_vs_cat_speed)}.`);
    const bv = V.bench_verify;
    if (bv?.status === 'absent') out.push(`\nbench/verify.mjs: ${bv.reason}.`);
    else if (bv?.json?.sizes) {
      const j = bv.json;
      out.push('');
      out.push(`bench/verify.mjs (${bv.args.join(' ')}), its own data sets (${j.sizes[0].dataset.layout}); ` +
        `cold = ${j.method.cold}; ${j.method.statistic}.`);
      out.push('');
      out.push(table(['data', 'cache', 'cat MB/s', 'hotbackup verify MB/s', 'verify (own timing) MB/s', 'verify speed / cat'],
        j.sizes.flatMap((sz) => Object.entries(sz.results).map(([k, x]) =>
          [`${sz.dataset.files} files, ${gb(sz.dataset.bytes)}`, k, fx(x.cat_mb_per_s, 0), fx(x.verify_mb_per_s, 0), fx(x.verify_internal_mb_per_s, 0), pc(x.ratio)]))));
    } else if (bv) out.push(`\nbench/verify.mjs (exit ${bv.exit}) gave no JSON:\n\n\`\`\`\n${bv.text}\n\`\`\``);
  } else out.push(notOk(s.verify));
  out.push('');
  const diag = join(ROOT, 'bench', 'results', 'diagnose.json');
  if (r.mode === 'full' && existsSync(diag)) out.push(...diagnostics(JSON.parse(readFileSync(diag, 'utf8'))));
  mkdirSync(dirname(file), { recursive: true });
  writeFileSync(file, out.join('\n').replace(/\n{3,}/g, '\n\n'));
}

/** The profiles of bench/diagnose.mjs (bench/results/diagnose.json), rendered as tables. */
function diagnostics(d) {
  const out = [];
  const rows = (rs, n = 12) => rs.slice(0, n).map((x) => [x.syscall, x.calls, fx(x.seconds, 3), x.usecs_per_call]);
  out.push('## Diagnostics (bench/diagnose.mjs)');
  out.push('');
  out.push(`Profiles taken by \`node bench/diagnose.mjs\` on ${d.date} (load average then: ${d.loadavg_at_start}), separately from the run ` +
    'above: tracing slows what it traces, so read proportions (calls per file, per transaction, shares of CPU samples), not times. ' +
    `Data: sysbench ${d.setup.tables} × ${d.setup.size} rows plus copies of its tables: ${gb(d.idle.datadir_bytes)} in ${d.idle.files} files, warm cache.`);
  out.push('');
  out.push(`Untraced idle backups of that datadir (shim's own timing) vs cp -a + sync: ${d.idle.untraced.map((u) => `${fx(u.shim_s, 2)} s = copy ${fx(u.copy_s, 2)} + seal ${fx(u.seal_s, 2)} vs cp ${fx(u.cp_s, 2)} s`).join('; ')}.`);
  out.push('');
  out.push('**Idle backup, `strace -c -f -w -p <mariadbd>`** (the shim\'s threads; the server is idle) and **`strace -c -f -w cp -a`**:');
  out.push('');
  const skip = new Set(['futex', 'restart_syscall', 'poll', 'rt_sigtimedwait', 'pselect6', 'accept4', 'recvfrom', 'sendto']);
  out.push(table(['syscall (backup)', 'calls', 'seconds', 'µs/call'], rows(d.idle.strace_backup.rows.filter((x) => !skip.has(x.syscall)))));
  out.push('');
  out.push(table(['syscall (cp -a)', 'calls', 'seconds', 'µs/call'], rows(d.idle.strace_cp.rows, 6)));
  out.push('');
  out.push('**Idle backup, `perf record -e cpu-clock -g -p <mariadbd>`**: samples by object and the top symbols:');
  out.push('');
  out.push('```');
  out.push(...d.idle.perf_backup.by_dso.slice(0, 5), '', ...d.idle.perf_backup.top_symbols.slice(0, 10));
  out.push('```');
  out.push('');
  out.push(`**Many small files**: a backup of one schema directory of ${d.many.files} files (sources=[datadir/many]) took ${fx(d.many.shim_s, 2)} s; ` +
    'syscalls per file (strace):');
  out.push('');
  out.push(table(['syscall', 'calls per file', 'ms per file (traced)'], Object.entries(d.many.per_file).map(([k, v]) => [k, v.calls_per_file, v.ms_per_file])));
  out.push('');
  const b = d.load.baseline;
  const c = d.load.capture_only;
  out.push(`**Under load** (sysbench oltp_write_only, 4 threads): 5 s with no backup vs 5 s of capture only (every file attached, copier held ` +
    `before the cut; ${gb(c.bytes_mirrored_during)} mirrored meanwhile). Syscalls of mariadbd per transaction:`);
  out.push('');
  const names = [...new Set([...Object.keys(b.syscalls_per_txn), ...Object.keys(c.syscalls_per_txn)])].filter((k) => (b.syscalls_per_txn[k] ?? 0) + (c.syscalls_per_txn[k] ?? 0) >= 0.05);
  out.push(table(['syscall', 'per transaction, no backup', 'per transaction, capturing'], names.map((k) => [k, b.syscalls_per_txn[k] ?? 0, c.syscalls_per_txn[k] ?? 0])));
  out.push('');
  out.push(`perf samples by object, no backup: ${b.perf_by_dso.slice(0, 4).join('; ')}. Capturing: ${c.perf_by_dso.slice(0, 5).join('; ')}.`);
  out.push('');
  return out;
}
