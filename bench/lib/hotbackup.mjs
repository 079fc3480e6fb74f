// Driving the shim from the bench: the control protocol (docs/protocol.md) over its socket,
// and the CLI (`hotbackup start DEST --socket S --wait`) as a user runs it.
import { createConnection } from 'node:net';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { mono, run, sleep } from './util.mjs';

export const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
export const CLI = join(ROOT, 'bin', 'hotbackup.js');

/** One request, one reply line. */
export function request(sock, req, timeoutMs = 30_000) {
  return new Promise((resolve, reject) => {
    const c = createConnection(sock);
    let buf = '';
    const timer = setTimeout(() => { c.destroy(); reject(new Error(`no reply from ${sock} in ${timeoutMs} ms`)); }, timeoutMs);
    c.setEncoding('utf8');
    c.on('connect', () => c.write(JSON.stringify(req) + '\n'));
    c.on('data', (d) => {
      buf += d;
      const nl = buf.indexOf('\n');
      if (nl < 0) return;
      clearTimeout(timer);
      c.destroy();
      try {
        resolve(JSON.parse(buf.slice(0, nl)));
      } catch (e) {
        reject(e);
      }
    });
    c.on('error', (e) => { clearTimeout(timer); reject(e); });
  });
}

export async function status(sock) {
  const r = await request(sock, { op: 'status' });
  if (!r.ok) throw new Error(`status: ${r.error?.code} ${r.error?.message}`);
  return r.status;
}

const TERMINAL = new Set(['done', 'failed', 'cancelled', 'idle']);

/** Samples status every pollMs until the backup ends. Returns the samples (t = epoch ms). */
export async function pollUntilEnd(sock, pollMs, onSample) {
  const samples = [];
  for (;;) {
    const t = Date.now();
    const s = await status(sock);
    samples.push({ t, mono: mono(), state: s.state, bytes_copied: s.bytes_copied, bytes_mirrored: s.bytes_mirrored,
      throttle: s.throttle_bytes_per_sec, rate: s.rate_bytes_per_sec });
    onSample?.(s);
    if (TERMINAL.has(s.state)) return { final: s, samples };
    await sleep(pollMs);
  }
}

/** Starts a backup over the socket and waits for its end. */
export async function backupViaSocket(sock, dest, o = {}) {
  const req = { op: 'start', dest };
  if (o.sources) req.sources = o.sources;
  if (o.throttle) req.throttle_bytes_per_sec = o.throttle;
  const t0 = mono();
  const startedAt = Date.now();
  const r = await request(sock, req);
  if (!r.ok) throw new Error(`start ${dest}: ${r.error?.code} ${r.error?.message}`);
  const { final, samples } = await pollUntilEnd(sock, o.pollMs ?? 100, o.onSample);
  const wall = mono() - t0;
  if (final.state !== 'done') throw new Error(`backup to ${dest} ended ${final.state}: ${JSON.stringify(final.error)}`);
  return { wall_s: wall, requested_at: startedAt, observed_done_at: Date.now(), final, samples, ...shimTimes(final) };
}

/** The shim's own timings of a finished backup. */
export function shimTimes(s) {
  return {
    shim_s: s.finished_at && s.started_at ? (s.finished_at - s.started_at) / 1000 : null,
    copy_s: s.cut_at && s.started_at ? (s.cut_at - s.started_at) / 1000 : null,
    cut_stall_us: s.cut_stall_us ?? null,
    bytes_copied: s.bytes_copied,
    bytes_mirrored: s.bytes_mirrored,
    bytes_total: s.bytes_total,
    files_total: s.files_total,
  };
}

/** `hotbackup start DEST --socket S --wait` as a user runs it; wall time of the command. */
export async function backupViaCli(sock, dest, env = {}) {
  if (!existsSync(join(ROOT, 'dist', 'cli', 'main.js'))) {
    throw new Error('the CLI is not built (dist/cli/main.js missing): run `node scripts/build.mjs`');
  }
  const t0 = mono();
  const r = await run(process.execPath, [CLI, 'start', dest, '--socket', sock, '--wait', '--json'],
    { env: { ...process.env, ...env }, allowFail: true });
  const wall = mono() - t0;
  if (r.status !== 0) throw new Error(`hotbackup start --wait exited ${r.status}: ${(r.stderr || r.stdout).slice(-1500)}`);
  const final = await status(sock);
  if (final.state !== 'done' || final.dest !== dest) throw new Error(`after the CLI the shim reports ${final.state} for ${final.dest}`);
  return { wall_s: wall, final, ...shimTimes(final) };
}

/** Whether the CLI has a command (e.g. restore), judged from its --help. */
export async function cliHasCommand(name) {
  if (!existsSync(join(ROOT, 'dist', 'cli', 'main.js'))) return false;
  const r = await run(process.execPath, [CLI, '--help'], { allowFail: true });
  return new RegExp(`hotbackup ${name}\\b`).test(r.stdout + r.stderr);
}
