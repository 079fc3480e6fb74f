// Small helpers shared by the benchmark sections: processes, timing, statistics, files.
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, readdirSync, lstatSync, writeFileSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
export const nowMs = () => Date.now();
/** Monotonic seconds (high resolution). */
export const mono = () => Number(process.hrtime.bigint()) / 1e9;

let verbose = true;
export function setVerbose(v) { verbose = v; }
export function log(...a) {
  if (verbose) process.stderr.write(`[bench ${new Date().toISOString().slice(11, 19)}] ${a.join(' ')}\n`);
}

/** Runs a command to completion; throws with its stderr unless allowFail. */
export function sh(cmd, args = [], opts = {}) {
  const r = spawnSync(cmd, args, { encoding: 'utf8', maxBuffer: 256 << 20, ...opts });
  if (r.error) {
    if (opts.allowFail) return { status: -1, stdout: '', stderr: String(r.error.message) };
    throw new Error(`${cmd} could not run: ${r.error.message}`);
  }
  if (r.status !== 0 && !opts.allowFail) {
    throw new Error(`${cmd} ${args.join(' ')} failed (exit ${r.status ?? r.signal}): ${(r.stderr || r.stdout || '').slice(-2000)}`);
  }
  return r;
}

/** Like sh() but asynchronous (the event loop keeps running: status polls, samplers). */
export function run(cmd, args = [], opts = {}) {
  return new Promise((resolve, reject) => {
    const p = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'], ...opts });
    let out = '';
    let err = '';
    p.stdout?.setEncoding('utf8').on('data', (d) => { out += d; if (out.length > 64 << 20) out = out.slice(-(32 << 20)); });
    p.stderr?.setEncoding('utf8').on('data', (d) => { err += d; if (err.length > 16 << 20) err = err.slice(-(8 << 20)); });
    p.on('error', (e) => reject(new Error(`${cmd} could not run: ${e.message}`)));
    p.on('close', (code, sig) => {
      const r = { status: code, signal: sig, stdout: out, stderr: err, pid: p.pid };
      if (code !== 0 && !opts.allowFail) {
        reject(new Error(`${cmd} ${args.join(' ')} failed (exit ${code ?? sig}): ${(err || out).slice(-2000)}`));
      } else resolve(r);
    });
  });
}

/** Times an async function in seconds (monotonic). */
export async function timed(fn) {
  const t0 = mono();
  const value = await fn();
  return { seconds: mono() - t0, value };
}

export function which(cmd) {
  const r = spawnSync('sh', ['-c', `command -v ${cmd}`], { encoding: 'utf8' });
  return r.status === 0 ? r.stdout.trim() : null;
}

// ---- statistics -------------------------------------------------------------------------

export function median(xs) {
  const a = xs.filter((x) => Number.isFinite(x)).sort((p, q) => p - q);
  if (!a.length) return null;
  const m = a.length >> 1;
  return a.length % 2 ? a[m] : (a[m - 1] + a[m]) / 2;
}
export function quantile(xs, q) {
  const a = xs.filter((x) => Number.isFinite(x)).sort((p, r) => p - r);
  if (!a.length) return null;
  const pos = (a.length - 1) * q;
  const lo = Math.floor(pos);
  const hi = Math.ceil(pos);
  return a[lo] + (a[hi] - a[lo]) * (pos - lo);
}
export function mean(xs) {
  const a = xs.filter((x) => Number.isFinite(x));
  return a.length ? a.reduce((s, x) => s + x, 0) / a.length : null;
}
/** {median, min, max, n, values}: what every repeated figure reports. */
export function summary(xs) {
  const a = xs.filter((x) => Number.isFinite(x));
  return {
    median: median(a),
    min: a.length ? Math.min(...a) : null,
    max: a.length ? Math.max(...a) : null,
    n: a.length,
    values: a.map((x) => round(x, 6)),
  };
}
export function round(x, digits = 3) {
  if (x === null || x === undefined || !Number.isFinite(x)) return x ?? null;
  const f = 10 ** digits;
  return Math.round(x * f) / f;
}

/** Orders the sides of repetition `rep`: rotated each repetition so no side always goes first. */
export function alternate(sides, rep) {
  const k = rep % sides.length;
  const rot = [...sides.slice(k), ...sides.slice(0, k)];
  return rot;
}

// ---- files ------------------------------------------------------------------------------

/** Apparent bytes, allocated bytes and counts of a tree (lstat, no symlink following). */
export function treeSize(dir) {
  let bytes = 0;
  let blocks = 0;
  let files = 0;
  let dirs = 0;
  const walk = (d) => {
    for (const e of readdirSync(d)) {
      const p = join(d, e);
      const st = lstatSync(p);
      if (st.isDirectory()) {
        dirs++;
        walk(p);
      } else if (st.isFile()) {
        files++;
        bytes += st.size;
        blocks += st.blocks * 512;
      }
    }
  };
  if (existsSync(dir)) walk(dir);
  return { bytes, allocated: blocks, files, dirs };
}

export function rmrf(p) {
  if (existsSync(p)) sh('rm', ['-rf', '--one-file-system', p]);
}

export function canDropCaches() {
  try {
    writeFileSync('/proc/sys/vm/drop_caches', '1');
    return true;
  } catch {
    return false;
  }
}
/** sync, then drop the page cache (cold) or nothing (warm: the caller reads the tree first). */
export function dropCaches() {
  sh('sync');
  writeFileSync('/proc/sys/vm/drop_caches', '3');
}
/** Reads every file of a tree once so that it sits in the page cache. */
export function warmTree(dir) {
  sh('sh', ['-c', `find "${dir}" -type f -print0 | xargs -0 -r cat > /dev/null`]);
}

export function readJson(p) { return JSON.parse(readFileSync(p, 'utf8')); }

/** /proc/<pid>/status fields in bytes (VmRSS, VmHWM, RssAnon, RssFile, RssShmem) and Threads. */
export function procStatus(pid) {
  try {
    const txt = readFileSync(`/proc/${pid}/status`, 'utf8');
    const out = {};
    for (const line of txt.split('\n')) {
      const m = /^(VmRSS|VmHWM|RssAnon|RssFile|RssShmem|VmSize):\s+(\d+) kB/.exec(line);
      if (m) out[m[1]] = Number(m[2]) * 1024;
      const t = /^Threads:\s+(\d+)/.exec(line);
      if (t) out.Threads = Number(t[1]);
    }
    return out;
  } catch {
    return null;
  }
}
/** Resets VmHWM of a process (Linux: "5" > clear_refs). */
export function resetPeakRss(pid) {
  try {
    writeFileSync(`/proc/${pid}/clear_refs`, '5');
    return true;
  } catch {
    return false;
  }
}

// ---- CPU accounting (diagnostics of the under-load runs) ----------------------------------

const CLK_TCK = Number(spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).stdout.trim()) || 100;

/** utime+stime of a process or thread, seconds. */
export function cpuSeconds(statPath) {
  try {
    const t = readFileSync(statPath, 'utf8');
    const f = t.slice(t.lastIndexOf(')') + 2).split(' ');
    return (Number(f[11]) + Number(f[12])) / CLK_TCK; // fields 14, 15 of stat
  } catch {
    return null;
  }
}

/** Per-thread CPU seconds of a process: Map tid -> seconds. */
export function threadCpu(pid) {
  const m = new Map();
  try {
    for (const tid of readdirSync(`/proc/${pid}/task`)) m.set(tid, cpuSeconds(`/proc/${pid}/task/${tid}/stat`));
  } catch { /* process gone */ }
  return m;
}

/** Machine-wide CPU counters from /proc/stat, seconds: busy, idle, iowait. */
export function systemCpu() {
  const line = readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/).slice(1).map(Number);
  const [user, nice, system, idle, iowait, irq, softirq, steal] = line;
  return { busy: (user + nice + system + irq + softirq) / CLK_TCK, idle: idle / CLK_TCK, iowait: iowait / CLK_TCK, steal: (steal || 0) / CLK_TCK };
}

/** Samples a process's CPU and the machine's every periodMs until stop(). */
export function cpuSampler(pid, periodMs = 250) {
  const samples = [];
  const take = () => samples.push({ t: Date.now(), proc: cpuSeconds(`/proc/${pid}/stat`), sys: systemCpu() });
  take();
  const timer = setInterval(take, periodMs);
  return {
    stop() {
      clearInterval(timer);
      take();
      return samples;
    },
  };
}

/** CPU use in [t0, t1] (epoch ms) from sampler samples: server CPU-seconds per second, machine busy/iowait shares. */
export function cpuWindow(samples, t0, t1) {
  const at = (t) => {
    let best = samples[0];
    for (const s of samples) if (Math.abs(s.t - t) < Math.abs(best.t - t)) best = s;
    return best;
  };
  const a = at(t0);
  const b = at(t1);
  const secs = (b.t - a.t) / 1000;
  if (secs <= 0) return null;
  const tot = (x) => x.busy + x.idle + x.iowait + x.steal;
  const all = tot(b.sys) - tot(a.sys);
  return {
    seconds: secs,
    server_cpus: (b.proc - a.proc) / secs,
    machine_busy: all > 0 ? (b.sys.busy - a.sys.busy) / all : null,
    machine_iowait: all > 0 ? (b.sys.iowait - a.sys.iowait) / all : null,
    machine_steal: all > 0 ? (b.sys.steal - a.sys.steal) / all : null,
  };
}
