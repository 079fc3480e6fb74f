#!/usr/bin/env node
// Speed of `hotbackup verify` against `cat` of the same files to /dev/null, warm and cold cache.
// Not a test: it measures and writes bench/results/verify-<date>.json and .md.
//
//   node bench/verify.mjs [--size=2GiB] [--files=64] [--runs=5] [--keep=DIR] [--out=bench/results]
//
// 1. Makes a data directory (files of random bytes, a few large and many small), backs it up
//    with the real shim (an idle Node process under LD_PRELOAD) so the backup has its manifest.
// 2. Runs, alternately, `cat FILES > /dev/null` and `hotbackup verify DEST --json` (the CLI as a
//    user runs it: process start, manifest, walk, reading, checksums), `runs` times each, warm
//    (files in the page cache) and cold (evicted before every run).
// 3. Cold cache: `echo 3 > /proc/sys/vm/drop_caches` when permitted; otherwise each file's pages
//    are evicted with posix_fadvise(POSIX_FADV_DONTNEED) (`dd iflag=nocache count=0`), checked
//    with fincore. On a virtual disk the host may still cache: the JSON says which method ran.
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, openSync, closeSync, writeSync, readdirSync, rmSync, statSync, writeFileSync, existsSync, readFileSync } from 'node:fs';
import { cpus, tmpdir, totalmem, availableParallelism, loadavg } from 'node:os';
import { dirname, join, relative } from 'node:path';
import { randomFillSync } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { createConnection } from 'node:net';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const arg = (name, def) => process.argv.find((a) => a.startsWith(`--${name}=`))?.split('=')[1] ?? def;
const parseSize = (s) => {
  const m = /^(\d+(?:\.\d+)?)\s*(B|KiB|MiB|GiB)?$/i.exec(s);
  if (!m) throw new Error(`bad size ${s}`);
  return Math.round(Number(m[1]) * { b: 1, kib: 1024, mib: 1 << 20, gib: 1 << 30 }[(m[2] ?? 'B').toLowerCase()]);
};
const SIZE = parseSize(arg('size', '2GiB'));
const FILES = Number(arg('files', '64'));
const RUNS = Number(arg('runs', '5'));
const OUT = arg('out', join(root, 'bench', 'results'));
const shim = join(root, 'build', 'shim', 'libhotbackup.so');
const cli = join(root, 'bin', 'hotbackup.js');
if (!existsSync(shim)) throw new Error(`${shim} is not built: run node scripts/build.mjs`);
if (!existsSync(join(root, 'dist', 'cli', 'main.js'))) throw new Error('dist/ is not built: run npm run build:ts');

const work = arg('keep') ?? mkdtempSync(join(tmpdir(), 'hb-bench-verify-'));
const src = join(work, 'src');
const dest = join(work, 'backup');
const log = (...a) => console.error('[bench]', ...a);

// ---- data: FILES-8 large files sharing 90% of SIZE, 8 directories of small files for the rest ----
function makeData() {
  if (existsSync(join(dest, 'hotbackup_manifest.json'))) return;
  rmSync(src, { recursive: true, force: true });
  rmSync(dest, { recursive: true, force: true });
  mkdirSync(src, { recursive: true });
  const buf = Buffer.alloc(4 << 20);
  const write = (path, bytes) => {
    const fd = openSync(path, 'w', 0o640);
    for (let left = bytes; left > 0;) {
      const n = Math.min(left, buf.length);
      randomFillSync(buf, 0, n);
      writeSync(fd, buf, 0, n);
      left -= n;
    }
    closeSync(fd);
  };
  const large = Math.max(1, FILES - 8);
  for (let i = 0; i < large; i++) write(join(src, `large-${i}.dat`), Math.floor((SIZE * 0.9) / large));
  const smallTotal = SIZE - large * Math.floor((SIZE * 0.9) / large);
  const perDir = 50;
  for (let d = 0; d < 8; d++) {
    mkdirSync(join(src, `dir-${d}`));
    for (let i = 0; i < perDir; i++) write(join(src, `dir-${d}`, `small-${i}`), Math.floor(smallTotal / (8 * perDir)));
  }
}

async function backup() {
  if (existsSync(join(dest, 'hotbackup_manifest.json'))) return;
  const socket = join(work, 'hb.sock');
  const env = { ...process.env, LD_PRELOAD: shim, HOTBACKUP_SERVE: 'node', HOTBACKUP_SOCKET: socket };
  delete env.HOTBACKUP_SERVED_PID;
  const child = spawn(process.execPath, ['-e', 'process.stdin.resume()'], { env, stdio: ['pipe', 'inherit', 'inherit'] });
  const req = (o) => new Promise((res, rej) => {
    const s = createConnection(socket);
    let b = '';
    s.on('connect', () => s.write(JSON.stringify(o) + '\n'));
    s.on('data', (d) => {
      b += d;
      if (b.includes('\n')) { s.destroy(); res(JSON.parse(b)); }
    });
    s.on('error', rej);
  });
  try {
    for (let i = 0; ; i++) {
      try { await req({ op: 'status' }); break; } catch (e) { if (i > 200) throw e; await new Promise((r) => setTimeout(r, 50)); }
    }
    const r = await req({ op: 'start', dest, sources: [src] });
    if (!r.ok) throw new Error(JSON.stringify(r.error));
    for (;;) {
      const s = (await req({ op: 'status' })).status;
      if (!['copying', 'finishing'].includes(s.state)) {
        if (s.state !== 'done') throw new Error(`backup ${s.state}: ${JSON.stringify(s.error)}`);
        break;
      }
      await new Promise((r) => setTimeout(r, 100));
    }
  } finally {
    child.stdin.end();
  }
}

function listFiles(dir, rel = '') {
  const out = [];
  for (const e of readdirSync(join(dir, rel), { withFileTypes: true }).sort((a, b) => (a.name < b.name ? -1 : 1))) {
    const r = rel ? `${rel}/${e.name}` : e.name;
    if (!rel && e.name.startsWith('hotbackup_')) continue;
    if (e.isDirectory()) out.push(...listFiles(dir, r));
    else if (e.isFile()) out.push(join(dir, r));
  }
  return out;
}

// ---- cache control ----
let coldMethod = null;
function evict(files) {
  if (coldMethod === null) {
    try {
      writeFileSync('/proc/sys/vm/drop_caches', '3');
      coldMethod = 'drop_caches';
    } catch (e) {
      coldMethod = `posix_fadvise(DONTNEED) per file (dd iflag=nocache count=0); /proc/sys/vm/drop_caches: ${e.code} (${e.message.split(':')[0]})`;
      log(`drop_caches not permitted (${e.code}); evicting file by file with posix_fadvise(DONTNEED)`);
    }
  }
  spawnSync('sync');
  if (coldMethod === 'drop_caches') {
    writeFileSync('/proc/sys/vm/drop_caches', '3');
    return;
  }
  for (let i = 0; i < files.length; i += 200) {
    for (const f of files.slice(i, i + 200)) spawnSync('dd', [`if=${f}`, 'iflag=nocache', 'count=0', 'status=none']);
  }
}
/** Fraction of the files' bytes in the page cache (fincore), or null when fincore is missing. */
function cachedFraction(files) {
  const r = spawnSync('fincore', ['--bytes', '--noheadings', '--output', 'RES,SIZE', ...files.slice(0, 64)], { encoding: 'utf8' });
  if (r.status !== 0) return null;
  let res = 0;
  let size = 0;
  for (const line of r.stdout.trim().split('\n')) {
    const [a, b] = line.trim().split(/\s+/).map(Number);
    res += a;
    size += b;
  }
  return size ? res / size : null;
}
function warm(files) {
  spawnSync('sh', ['-c', 'cat "$@" > /dev/null', 'cat', ...files]);
}

// ---- the two contenders ----
// CPU seconds (user + system) of the command and its children, from GNU time when installed.
const GNU_TIME = existsSync('/usr/bin/time') ? '/usr/bin/time' : null;
function timeIt(cmd, argv) {
  const cpuFile = join(work, 'cpu.txt');
  const [c, a] = GNU_TIME ? [GNU_TIME, ['-o', cpuFile, '-f', '%U %S', cmd, ...argv]] : [cmd, argv];
  const t = process.hrtime.bigint();
  const r = spawnSync(c, a, { encoding: 'utf8', maxBuffer: 256 << 20, env: { ...process.env, HOTBACKUP_CATALOG: join(work, 'catalog.db') } });
  const s = Number(process.hrtime.bigint() - t) / 1e9;
  if (r.status !== 0) throw new Error(`${cmd} ${argv.slice(0, 3).join(' ')} failed (${r.status}): ${r.stderr.slice(0, 2000)}`);
  let cpu = null;
  if (GNU_TIME) {
    const [u, sy] = readFileSync(cpuFile, 'utf8').trim().split(/\s+/).map(Number);
    cpu = u + sy;
  }
  return { seconds: s, cpu, stdout: r.stdout };
}
const catRun = (files) => timeIt('sh', ['-c', 'cat "$@" > /dev/null', 'cat', ...files]);
const verifyRun = () => {
  const r = timeIt(process.execPath, [cli, 'verify', dest, '--json']);
  const rep = JSON.parse(r.stdout);
  if (rep.status !== 'verified') throw new Error(`verify: ${rep.status}: ${JSON.stringify(rep.problems.slice(0, 3))}`);
  return { seconds: r.seconds, cpu: r.cpu, internal_seconds: rep.duration_ms / 1000 };
};

const median = (a) => {
  const s = [...a].sort((x, y) => x - y);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

async function mainBench() {
  log(`data: ${SIZE} bytes in ~${FILES} large + 400 small files under ${work}`);
  makeData();
  await backup();
  const files = listFiles(dest);
  const bytes = files.reduce((s, f) => s + statSync(f).size, 0);
  log(`backup: ${files.length} files, ${bytes} bytes`);
  const results = {};
  for (const mode of ['warm', 'cold']) {
    const rec = { cat: [], verify: [], verify_internal: [], cat_cpu_s: [], verify_cpu_s: [], cached_before: [], loadavg_1min: [] };
    for (let i = 0; i < RUNS; i++) {
      for (const which of i % 2 ? ['verify', 'cat'] : ['cat', 'verify']) {
        if (mode === 'cold') evict(files);
        else warm(files);
        rec.cached_before.push(cachedFraction(files));
        rec.loadavg_1min.push(loadavg()[0]);
        if (which === 'cat') {
          const c = catRun(files);
          rec.cat.push(c.seconds);
          rec.cat_cpu_s.push(c.cpu);
        } else {
          const v = verifyRun();
          rec.verify.push(v.seconds);
          rec.verify_internal.push(v.internal_seconds);
          rec.verify_cpu_s.push(v.cpu);
        }
      }
      log(`${mode} run ${i + 1}/${RUNS}: cat ${rec.cat.at(-1).toFixed(3)} s, verify ${rec.verify.at(-1).toFixed(3)} s`);
    }
    const cat = median(rec.cat);
    const ver = median(rec.verify);
    results[mode] = {
      ...rec,
      cat_median_s: cat,
      verify_median_s: ver,
      cat_mb_per_s: bytes / cat / 1e6,
      verify_mb_per_s: bytes / ver / 1e6,
      verify_internal_mb_per_s: bytes / median(rec.verify_internal) / 1e6,
      ratio: cat / ver,
      cat_cpu_s_per_gib: GNU_TIME ? median(rec.cat_cpu_s) / (bytes / 2 ** 30) : null,
      verify_cpu_s_per_gib: GNU_TIME ? median(rec.verify_cpu_s) / (bytes / 2 ** 30) : null,
    };
  }
  const date = new Date().toISOString();
  const doc = {
    benchmark: 'hotbackup verify vs cat > /dev/null',
    date,
    machine: { cpus: cpus().length, available_parallelism: availableParallelism(), model: cpus()[0]?.model, memory_bytes: totalmem(),
      kernel: execFileSync('uname', ['-r'], { encoding: 'utf8' }).trim(), node: process.version },
    dataset: { files: files.length, bytes, layout: `${Math.max(1, FILES - 8)} large files (90%), 400 small files in 8 directories (10%), random bytes` },
    method: {
      runs: RUNS, statistic: 'median wall time of the whole command, alternating the two commands',
      verify: 'node bin/hotbackup.js verify DEST --json (process start included; verify_internal_* is the report\'s own duration)',
      cat: 'sh -c \'cat FILES > /dev/null\' (the same files, in the same order)',
      cold: coldMethod,
      load: 'loadavg_1min is the machine\'s 1-minute load average before each run: other sessions share these CPUs and the disk',
      note: 'cached_before is the fraction of the first 64 files\' bytes in the page cache before each run (fincore); a virtual disk may still be cached by the host',
    },
    results,
  };
  mkdirSync(OUT, { recursive: true });
  const stem = join(OUT, `verify-${date.slice(0, 16).replace(':', '')}`);
  writeFileSync(`${stem}.json`, JSON.stringify(doc, null, 2) + '\n');
  const row = (m) => {
    const r = results[m];
    const cpu = (x) => (x === null ? '-' : `${x.toFixed(2)} s`);
    return `| ${m} | ${r.cat_mb_per_s.toFixed(0)} MB/s (${r.cat_median_s.toFixed(3)} s) | ${r.verify_mb_per_s.toFixed(0)} MB/s (${r.verify_median_s.toFixed(3)} s) | ${r.verify_internal_mb_per_s.toFixed(0)} MB/s | **${(100 * r.ratio).toFixed(0)}%** | ${cpu(r.cat_cpu_s_per_gib)} | ${cpu(r.verify_cpu_s_per_gib)} |`;
  };
  const md = `# hotbackup verify vs cat — ${date.slice(0, 10)}

${doc.machine.cpus} CPUs (${doc.machine.model}), ${(doc.machine.memory_bytes / 2 ** 30).toFixed(0)} GiB, Linux ${doc.machine.kernel}, Node ${doc.machine.node}.
Data: ${files.length} files, ${(bytes / 2 ** 20).toFixed(0)} MiB (${doc.dataset.layout}), a backup taken by the shim.
Median of ${RUNS} runs, alternating; verify = the whole CLI process (\`hotbackup verify DEST --json\`), cat = \`cat FILES > /dev/null\`.

| cache | cat | verify | verify (own timer) | verify / cat | cat CPU per GiB | verify CPU per GiB |
| --- | --- | --- | --- | --- | --- | --- |
${row('warm')}
${row('cold')}

CPU per GiB: user + system seconds of the whole command (GNU time), median, per GiB read; verify's includes starting Node and the CLI.
Cold cache: ${coldMethod}.
1-minute load average during the runs (the machine is shared): ${Math.min(...results.warm.loadavg_1min, ...results.cold.loadavg_1min).toFixed(1)}–${Math.max(...results.warm.loadavg_1min, ...results.cold.loadavg_1min).toFixed(1)} on ${cpus().length} CPUs.
Page cache before the runs (fincore, fraction of bytes resident): warm ${fmtFrac(results.warm.cached_before)}, cold ${fmtFrac(results.cold.cached_before)}.
Raw numbers: \`${relative(root, stem)}.json\`. Reproduce: \`node bench/verify.mjs --size=${arg('size', '2GiB')} --runs=${RUNS}\`.
`;
  writeFileSync(`${stem}.md`, md);
  console.log(md);
  if (!arg('keep')) rmSync(work, { recursive: true, force: true });
}

function fmtFrac(a) {
  const v = a.filter((x) => x !== null);
  if (!v.length) return 'unknown';
  return `${(100 * Math.min(...v)).toFixed(0)}–${(100 * Math.max(...v)).toFixed(0)}%`;
}

await mainBench();
