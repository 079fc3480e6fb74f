#!/usr/bin/env node
// Speed of `hotbackup verify` against `cat` of the same files to /dev/null, warm and cold cache.
// Not a test: it measures and writes bench/results/verify-<date>.json and .md.
//
//   node bench/verify.mjs [--sizes=2GiB,8GiB] [--files=64] [--runs=5] [--keep=DIR] [--out=bench/results]
//
// For each size:
// 1. Makes a data directory (files of random bytes, a few large and many small), backs it up
//    with the real shim (an idle Node process under LD_PRELOAD) so the backup has its manifest,
//    then removes the source (it would only compete for the page cache).
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
const SIZES = arg('sizes', arg('size', '2GiB,8GiB')).split(',').map((x) => x.trim());
const FILES = Number(arg('files', '64'));
const RUNS = Number(arg('runs', '5'));
const OUT = arg('out', join(root, 'bench', 'results'));
const shim = join(root, 'build', 'shim', 'libhotbackup.so');
const cli = join(root, 'bin', 'hotbackup.js');
if (!existsSync(shim)) throw new Error(`${shim} is not built: run node scripts/build.mjs`);
if (!existsSync(join(root, 'dist', 'cli', 'main.js'))) throw new Error('dist/ is not built: run npm run build:ts');

const work = arg('keep') ?? mkdtempSync(join(tmpdir(), 'hb-bench-verify-'));
let SIZE = 0;
let src = '';
let dest = '';
const log = (...a) => console.error('[bench]', ...a);

// ---- data: FILES-8 large files sharing 90% of SIZE, 8 directories of small files for the rest ----
function makeData() {
  if (existsSync(join(dest, 'hotbackup_manifest.json'))) return;
  rmSync(join(work, 'backup'), { recursive: true, force: true }); // an older single-size layout
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
    // The next size starts its own server on the same socket: this one must be gone first.
    const exited = new Promise((res) => child.once('exit', res));
    child.stdin.end();
    await exited;
  }
  rmSync(src, { recursive: true, force: true });
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

/** One size: data, backup, then warm and cold runs. */
async function benchSize(label) {
  SIZE = parseSize(label);
  src = join(work, `src-${label}`);
  dest = join(work, `backup-${label}`);
  log(`${label}: ${SIZE} bytes in ~${FILES} large + 400 small files under ${work}`);
  makeData();
  await backup();
  const files = listFiles(dest);
  const bytes = files.reduce((sum, f) => sum + statSync(f).size, 0);
  log(`${label} backup: ${files.length} files, ${bytes} bytes`);
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
      log(`${label} ${mode} run ${i + 1}/${RUNS}: cat ${rec.cat.at(-1).toFixed(3)} s, verify ${rec.verify.at(-1).toFixed(3)} s`);
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
      ratio_internal: cat / median(rec.verify_internal),
      cat_cpu_s_per_gib: GNU_TIME ? median(rec.cat_cpu_s) / (bytes / 2 ** 30) : null,
      verify_cpu_s_per_gib: GNU_TIME ? median(rec.verify_cpu_s) / (bytes / 2 ** 30) : null,
    };
  }
  return {
    size: label,
    dataset: { files: files.length, bytes, layout: `${Math.max(1, FILES - 8)} large files (90%), 400 small files in 8 directories (10%), random bytes` },
    results,
  };
}

async function mainBench() {
  const sizes = [];
  for (const label of SIZES) sizes.push(await benchSize(label));
  const date = new Date().toISOString();
  const doc = {
    benchmark: 'hotbackup verify vs cat > /dev/null',
    date,
    machine: { cpus: cpus().length, available_parallelism: availableParallelism(), model: cpus()[0]?.model, memory_bytes: totalmem(),
      kernel: execFileSync('uname', ['-r'], { encoding: 'utf8' }).trim(), node: process.version },
    method: {
      runs: RUNS, statistic: 'median wall time of the whole command, alternating the two commands',
      verify: 'node bin/hotbackup.js verify DEST --json (process start included; verify_internal_* and ratio_internal use the report\'s own duration)',
      cat: 'sh -c \'cat FILES > /dev/null\' (the same files, in the same order)',
      cold: coldMethod,
      load: 'loadavg_1min is the machine\'s 1-minute load average before each run: other sessions share these CPUs and the disk',
      note: 'cached_before is the fraction of the first 64 files\' bytes in the page cache before each run (fincore); a virtual disk may still be cached by the host',
    },
    sizes,
  };
  mkdirSync(OUT, { recursive: true });
  const stem = join(OUT, `verify-${date.slice(0, 16).replace(':', '')}`);
  writeFileSync(`${stem}.json`, JSON.stringify(doc, null, 2) + '\n');
  const pct = (x) => `${(100 * x).toFixed(0)}%`;
  const row = (sz, m) => {
    const r = sz.results[m];
    const cpu = (x) => (x === null ? '-' : `${x.toFixed(2)} s`);
    const size = sz.dataset.bytes >= 2 ** 30 ? `${(sz.dataset.bytes / 2 ** 30).toFixed(1)} GiB` : `${(sz.dataset.bytes / 2 ** 20).toFixed(0)} MiB`;
    return `| ${size} | ${m} | ${r.cat_mb_per_s.toFixed(0)} MB/s (${r.cat_median_s.toFixed(3)} s) | ${r.verify_mb_per_s.toFixed(0)} MB/s (${r.verify_median_s.toFixed(3)} s) | **${pct(r.ratio)}** | ${r.verify_internal_mb_per_s.toFixed(0)} MB/s (${pct(r.ratio_internal)}) | ${cpu(r.cat_cpu_s_per_gib)} | ${cpu(r.verify_cpu_s_per_gib)} |`;
  };
  const all = sizes.flatMap((sz) => ['warm', 'cold'].map((m) => sz.results[m]));
  const loads = all.flatMap((r) => r.loadavg_1min);
  const md = `# hotbackup verify vs cat — ${date.slice(0, 10)}

${doc.machine.cpus} CPUs (${doc.machine.model}), ${(doc.machine.memory_bytes / 2 ** 30).toFixed(0)} GiB, Linux ${doc.machine.kernel}, Node ${doc.machine.node}.
Data: ${sizes.map((sz) => `${sz.dataset.files} files, ${(sz.dataset.bytes / 2 ** 20).toFixed(0)} MiB`).join('; ')} (${sizes[0].dataset.layout}), each a backup taken by the shim.
Median of ${RUNS} runs, alternating; verify = the whole CLI process (\`hotbackup verify DEST --json\`: Node's start-up, the manifest, the walk, reading and checksums), cat = \`cat FILES > /dev/null\`.

| data | cache | cat | verify | verify / cat | verify's own timer (/ cat) | cat CPU per GiB | verify CPU per GiB |
| --- | --- | --- | --- | --- | --- | --- | --- |
${sizes.flatMap((sz) => ['warm', 'cold'].map((m) => row(sz, m))).join('\n')}

verify / cat is the rate of the whole command against cat's; "own timer" is the report's duration_ms (without starting Node, ~0.1 s).
CPU per GiB: user + system seconds of the whole command (GNU time), median, per GiB read; verify's includes starting Node and the CLI.
Cold cache: ${coldMethod}.
1-minute load average during the runs (the machine is shared): ${Math.min(...loads).toFixed(1)}–${Math.max(...loads).toFixed(1)} on ${cpus().length} CPUs.
Page cache before the runs (fincore, fraction of bytes resident): warm ${fmtFrac(sizes.flatMap((sz) => sz.results.warm.cached_before))}, cold ${fmtFrac(sizes.flatMap((sz) => sz.results.cold.cached_before))}.
Raw numbers: \`${relative(root, stem)}.json\`. Reproduce: \`node bench/verify.mjs --sizes=${SIZES.join(',')} --runs=${RUNS}\`.
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
