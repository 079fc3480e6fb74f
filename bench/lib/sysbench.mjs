// sysbench driver: prepare, and timed runs through bench/sysbench/hb_lat.lua, which records
// every transaction's end time and latency so that windows can be cut after the fact.
import { spawn } from 'node:child_process';
import { mkdirSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { quantile, run } from './util.mjs';

const LUA = join(dirname(fileURLToPath(import.meta.url)), '..', 'sysbench', 'hb_lat.lua');

function common(o) {
  return ['--db-driver=mysql', `--mysql-socket=${o.sock}`, '--mysql-user=root', `--mysql-db=${o.db}`,
    `--tables=${o.tables}`, `--table-size=${o.size}`];
}

export async function prepare(o) {
  return run('sysbench', ['oltp_write_only', ...common(o), `--threads=${o.threads ?? 2}`, 'prepare']);
}

/**
 * Starts a sysbench run in the background. Returns {startedAt (epoch ms), done: Promise<{stdout, lat: LatLog}>}.
 * o: sock, db, tables, size, script (oltp_write_only|oltp_read_write), threads, seconds, outDir
 */
export function startLoad(o) {
  mkdirSync(o.outDir, { recursive: true });
  const args = [LUA, ...common(o), `--threads=${o.threads}`, `--time=${o.seconds}`, '--percentile=99',
    '--rand-type=uniform', '--report-interval=0', 'run'];
  const env = { ...process.env, HB_SB_SCRIPT: o.script, HB_SB_OUT: o.outDir };
  delete env.LD_PRELOAD;
  const startedAt = Date.now();
  const p = spawn('sysbench', args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  p.stdout.setEncoding('utf8').on('data', (d) => { out += d; });
  p.stderr.setEncoding('utf8').on('data', (d) => { out += d; });
  const done = new Promise((resolve, reject) => {
    p.on('close', (code) => {
      if (code !== 0) return reject(new Error(`sysbench ${o.script} failed (exit ${code}): ${out.slice(-1500)}`));
      resolve({ stdout: out, summary: parseSummary(out), lat: LatLog.read(o.outDir) });
    });
  });
  return { startedAt, done, pid: p.pid };
}

/** sysbench's own end-of-run figures (a cross-check of ours). */
export function parseSummary(out) {
  const num = (re) => {
    const m = re.exec(out);
    return m ? Number(m[1]) : null;
  };
  return {
    transactions: num(/transactions:\s+(\d+)/),
    tps: num(/transactions:\s+\d+\s+\(([\d.]+) per sec/),
    latency_avg_ms: num(/avg:\s+([\d.]+)/),
    latency_max_ms: num(/max:\s+([\d.]+)/),
    latency_p99_ms: num(/99th percentile:\s+([\d.]+)/),
    errors: num(/ignored errors:\s+(\d+)/),
  };
}

/** Every transaction of a run: end time (epoch ms) and latency (ms), sorted by end. */
export class LatLog {
  constructor(ends, lats) {
    this.ends = ends;
    this.lats = lats;
  }

  static read(dir) {
    const rows = [];
    for (const f of readdirSync(dir).filter((n) => n.startsWith('lat.'))) {
      for (const line of readFileSync(join(dir, f), 'utf8').split('\n')) {
        if (!line) continue;
        const sp = line.indexOf(' ');
        rows.push([Number(line.slice(0, sp)) / 1000, Number(line.slice(sp + 1)) / 1000]);
      }
    }
    rows.sort((a, b) => a[0] - b[0]);
    return new LatLog(Float64Array.from(rows, (r) => r[0]), Float64Array.from(rows, (r) => r[1]));
  }

  get first() { return this.ends.length ? this.ends[0] : null; }

  lowerBound(t) {
    let lo = 0;
    let hi = this.ends.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (this.ends[mid] < t) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  /** Transactions that ended in [t0, t1) (epoch ms): tps, latency avg/p95/p99/max (ms). */
  window(t0, t1) {
    const a = this.lowerBound(t0);
    const b = this.lowerBound(t1);
    const l = Array.from(this.lats.subarray(a, b));
    const secs = (t1 - t0) / 1000;
    return {
      seconds: secs,
      transactions: b - a,
      tps: secs > 0 ? (b - a) / secs : null,
      latency_avg_ms: l.length ? l.reduce((s, x) => s + x, 0) / l.length : null,
      latency_p95_ms: quantile(l, 0.95),
      latency_p99_ms: quantile(l, 0.99),
      latency_max_ms: l.length ? l.reduce((m, x) => (x > m ? x : m), 0) : null,
    };
  }

  /** The transactions in flight at instant t (started before, ended after): count and longest latency. */
  inflight(t) {
    const a = this.lowerBound(t);
    let n = 0;
    let max = 0;
    // A transaction ending after t started before t iff end - lat <= t; latencies are bounded, so
    // scanning forward until ends are far beyond the longest latency seen is enough.
    for (let i = a; i < this.ends.length; i++) {
      if (this.ends[i] - t > 60_000) break;
      if (this.ends[i] - this.lats[i] <= t) {
        n++;
        if (this.lats[i] > max) max = this.lats[i];
      }
    }
    return { count: n, max_latency_ms: n ? max : null };
  }

  /** Per-bin tps and max latency from t0 for `seconds`, bins of binMs. */
  series(t0, seconds, binMs = 1000) {
    const out = [];
    for (let s = 0; s < seconds * 1000; s += binMs) {
      const w = this.window(t0 + s, t0 + s + binMs);
      out.push({ t: s / 1000, tps: w.tps, max_ms: w.latency_max_ms, p99_ms: w.latency_p99_ms });
    }
    return out;
  }
}
