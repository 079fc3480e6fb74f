#!/usr/bin/env node
// node bench/cli-throttle-phases.mjs [--rates 4MB/s,8MB/s,2MiB/s] [--phase-ms 3000] [--data 64MiB] [--json]
//
// Issue 3's throttle benchmark: a backup of a busy directory (test/cli-writer.mjs under the shim)
// started through the CLI at the first rate, changed with `hotbackup throttle` to each next rate
// while it runs; reports the measured copy rate of every phase (bytes_copied slope from the shim's
// status, the first 500 ms of each phase skipped to let the bucket settle) against the set rate.
// Nothing is asserted: tests never time things; this prints the figures. Needs dist/ and the shim.
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(fileURLToPath(new URL('.', import.meta.url)), '..');
const { main, request, parseRate, parseSize, formatRate, shimPath } = await import(join(root, 'dist', 'index.js'));

const argv = process.argv.slice(2);
const opt = (name, dflt) => {
  const i = argv.indexOf(name);
  return i >= 0 ? argv[i + 1] : dflt;
};
const rates = opt('--rates', '4MB/s,8MB/s,2MiB/s').split(',').map((r) => [r, parseRate(r)]);
const phaseMs = Number(opt('--phase-ms', '3000'));
const dataBytes = parseSize(opt('--data', '64MiB'));
const json = argv.includes('--json');
if (!existsSync(shimPath())) {
  console.error(`the shim is not built (${shimPath()}); run node scripts/build.mjs --shim-only`);
  process.exit(2);
}
const totalRate = rates.reduce((s, [, r]) => s + r, 0);
if (rates.some(([, r]) => r === 0) || dataBytes < (totalRate * phaseMs) / 1000 * 1.2) {
  console.error('--data must exceed what the phases copy (and no phase may be "off"), or the backup ends early');
  process.exit(2);
}

const dir = mkdtempSync(join(tmpdir(), 'hb-bench-throttle-'));
const data = join(dir, 'data');
mkdirSync(data);
const socket = join(dir, 's.sock');
const files = 64;
const writer = spawn(process.execPath, [join(root, 'test', 'cli-writer.mjs'), String(files), String(Math.ceil(dataBytes / files))], {
  cwd: data, stdio: ['ignore', 'pipe', 'inherit'],
  env: { ...process.env, LD_PRELOAD: shimPath(), HOTBACKUP_SOCKET: socket, HOTBACKUP_SERVE: 'node' },
});
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const quiet = { write: () => true };
const io = { stdout: quiet, stderr: quiet, env: { ...process.env, HOTBACKUP_CATALOG: join(dir, 'cat.db'), HOTBACKUP_SOCKET: socket }, cwd: dir };
try {
  await new Promise((resolve, reject) => {
    writer.stdout.on('data', (d) => String(d).includes('ready') && resolve());
    writer.on('exit', () => reject(new Error('the writer exited')));
  });
  while (!existsSync(socket)) await sleep(20);

  const phases = [];
  for (const [i, [text, rate]] of rates.entries()) {
    const code = i === 0
      ? await main(['start', join(dir, 'backup'), '--throttle', text], io)
      : await main(['throttle', text], io);
    if (code !== 0) throw new Error(`hotbackup ${i === 0 ? 'start' : 'throttle'} ${text} exited ${code}`);
    const t0 = Date.now();
    await sleep(500);
    const a = await request(socket, { op: 'status' });
    const ta = Date.now();
    await sleep(Math.max(0, phaseMs - (ta - t0)));
    const b = await request(socket, { op: 'status' });
    const tb = Date.now();
    if (b.state !== 'copying') throw new Error(`the backup left copying during phase ${i + 1} (${b.state})`);
    const measured = ((b.bytes_copied - a.bytes_copied) * 1000) / (tb - ta);
    phases.push({
      phase: i + 1, set: text, set_bytes_per_sec: rate, reported_throttle: b.throttle_bytes_per_sec,
      measured_bytes_per_sec: Math.round(measured), shim_rate_bytes_per_sec: b.rate_bytes_per_sec,
      deviation_pct: Math.round((1000 * (measured - rate)) / rate) / 10, window_ms: tb - ta,
    });
  }
  await main(['cancel'], io);
  if (json) console.log(JSON.stringify({ data_bytes: dataBytes, phase_ms: phaseMs, phases }, null, 2));
  else {
    console.log(`throttle phases over ${formatRate(dataBytes).replace(' B/s', ' B').replace('/s)', ')')} of busy data:`);
    for (const p of phases) {
      console.log(`  phase ${p.phase}: set ${p.set} = ${formatRate(p.set_bytes_per_sec)}, status reports ${p.reported_throttle}; ` +
        `measured ${formatRate(p.measured_bytes_per_sec)} (${p.deviation_pct >= 0 ? '+' : ''}${p.deviation_pct}%) over ${p.window_ms} ms`);
    }
  }
} finally {
  writer.kill('SIGKILL');
  rmSync(dir, { recursive: true, force: true });
}
