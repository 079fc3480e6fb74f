// A real Node program under the shim: test/fixtures/node-fs-writer.mjs writes a directory
// through Node's fs (write, pwrite, writev, pwritev, FileHandle writes on the threadpool,
// appendFile, writeFile, copyFile = copy_file_range through syscall(), truncate, rename (also into
// and out of the directory), unlink, mkdir, rmdir, hard links, symlinks; every close through
// libuv's syscall(SYS_close)) one operation at a time,
// logging each with its start and end time, while a throttled backup of the directory runs.
//
// The backup must equal the directory's state after exactly the operations completed before the
// cut: the fixture's operations are replayed in a model (node-fs-model.mjs, content derived from
// the sequence number) up to the cut, and the backup must be the state after some prefix of the
// individual system calls of the operations that overlap the cut, having all the operations that
// ended before it and none that started after it. The model itself is checked against the live
// directory at the end (so a wrong model cannot make the test pass).
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, lstatSync, mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import test from 'node:test';
import { fileURLToPath } from 'node:url';
// @ts-ignore: plain JavaScript module shared with the fixture
import { FsModel, OUT, applyOp, stepsOf } from './fixtures/node-fs-model.mjs';
// @ts-ignore: plain JavaScript module
import { SCENARIOS } from './fixtures/node-fs-scenarios.mjs';
import { diffTrees, makeTmp, preloadBefore, readTree, runBackup, shimOrSkip, type TreeEntry } from './real-helpers.js';

const shim = shimOrSkip('test/real-node.test.ts');
const FIXTURE = fileURLToPath(new URL('./fixtures/node-fs-writer.mjs', import.meta.url));
const SCENARIO_FIXTURE = fileURLToPath(new URL('./fixtures/node-fs-scenarios.mjs', import.meta.url));
/** Uncertainty around cut_at, ms (whole-ms cut times; the fixture's clock clamping). */
const SLACK_MS = 2;

interface OpRecord {
  i: number;
  kind: string;
  start: number;
  end: number;
  [k: string]: unknown;
}

function readOps(path: string): OpRecord[] {
  const text = readFileSync(path, 'utf8');
  const lines = text.split('\n');
  lines.pop(); // torn or empty
  return lines.map((l, n) => {
    const op = JSON.parse(l) as OpRecord;
    if (op.i !== n) throw new Error(`${path}: line ${n + 1} has op ${op.i}`);
    return op;
  });
}

function countOps(path: string): number {
  if (!existsSync(path)) return 0;
  const b = readFileSync(path);
  let n = 0;
  for (let k = b.indexOf(10); k >= 0; k = b.indexOf(10, k + 1)) n++;
  return n;
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

interface FsWriter {
  child: ChildProcess;
  ops(): number;
  waitForOps(n: number): Promise<void>;
  stop(): Promise<void>;
  kill(): void;
}

async function startFsWriter(o: {
  dir: string;
  outside: string;
  log: string;
  seed: number;
  socket: string;
  env: Record<string, string>;
}): Promise<FsWriter> {
  const env: Record<string, string | undefined> = {
    ...process.env,
    ...o.env,
    LD_PRELOAD: [...preloadBefore(), shim!].join(':'),
    HOTBACKUP_SOCKET: o.socket,
    HOTBACKUP_SERVE: 'node',
    HOTBACKUP_TEST_HOOKS: '1',
  };
  delete env.HOTBACKUP_SERVED_PID;
  const child = spawn(process.execPath, [FIXTURE, '--dir', o.dir, '--outside', o.outside, '--log', o.log, '--seed', String(o.seed)], {
    env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stderr = '';
  let stdout = '';
  let exit: { code: number | null; signal: string | null } | null = null;
  child.stderr!.setEncoding('utf8').on('data', (s: string) => (stderr = (stderr + s).slice(-65536)));
  child.stdout!.setEncoding('utf8').on('data', (s: string) => (stdout += s));
  const exited = new Promise<void>((r) =>
    child.on('exit', (code, signal) => {
      exit = { code, signal };
      r();
    }),
  );
  const why = () => `node-fs-writer exited (${JSON.stringify(exit)}); stderr:\n${stderr.trim()}`;
  const kill = () => {
    if (!exit) child.kill('SIGKILL');
  };
  const deadline = Date.now() + 30_000;
  while (!stdout.includes('"event":"ready"')) {
    if (exit) throw new Error(why());
    if (Date.now() > deadline) {
      kill();
      throw new Error(`node-fs-writer not ready; stderr:\n${stderr}`);
    }
    await sleep(20);
  }
  // The shim's socket must answer before we go on.
  const { rawRequest } = await import('../src/client.js');
  for (;;) {
    try {
      const r = await rawRequest(o.socket, { op: 'status' }, 2000);
      if (r.ok) break;
      kill();
      throw new Error(`the shim answered status with ${r.error.code}: ${r.error.message}`);
    } catch (e) {
      if ((e as Error).message.startsWith('the shim answered')) throw e;
      if (exit) throw new Error(why());
      if (Date.now() > deadline) {
        kill();
        throw new Error(`the shim's socket ${o.socket} never answered: ${(e as Error).message}`);
      }
      await sleep(50);
    }
  }
  return {
    child,
    ops: () => countOps(o.log),
    async waitForOps(n: number) {
      const until = Date.now() + 120_000;
      while (countOps(o.log) < n) {
        if (exit) throw new Error(`waiting for ${n} operations: ${why()}`);
        if (Date.now() > until) throw new Error(`fewer than ${n} operations after 120 s`);
        await sleep(20);
      }
    },
    async stop() {
      if (!exit) child.kill('SIGTERM');
      const t = setTimeout(kill, 30_000);
      await exited;
      clearTimeout(t);
      if (exit!.code !== 0) throw new Error(why());
    },
    kill,
  };
}

/** The model's view of the backed-up directory (prefix '') or of the outside one (OUT). */
function snapshotOf(m: InstanceType<typeof FsModel>, prefix = ''): Map<string, TreeEntry> {
  return m.snapshot(prefix) as Map<string, TreeEntry>;
}

// Seeds 1, 2, 3 by default; HOTBACKUP_REAL_SEEDS=4,5,6 runs others (odd: threadpool, even: io_uring
// asked for; multiples of 3: no pause points, the throttle alone makes the copy overlap the writes).
const SEEDS = (process.env.HOTBACKUP_REAL_SEEDS || '1,2,3').split(',').filter(Boolean).map(Number).filter((n) => Number.isSafeInteger(n));
const VARIANTS: Array<{ name: string; seed: number; env: Record<string, string>; pause: boolean }> = SEEDS.map((seed) => ({
  ...(seed % 2
    ? { name: 'libuv threadpool', env: { UV_USE_IO_URING: '0' } }
    : // libuv would move FileHandle writes to an io_uring the shim cannot see; the shim must make
      // io_uring_setup fail so libuv falls back to its threadpool.
      { name: 'UV_USE_IO_URING=1', env: { UV_USE_IO_URING: '1' } }),
  seed,
  pause: seed % 3 !== 0,
}));

for (const v of VARIANTS) {
  test(`Node fs writes under the shim: the backup is the directory at the cut (${v.name}, ${v.pause ? 'paused at copy start and cut' : 'throttle only'}, seed ${v.seed})`, {
    skip: shim ? false : 'libhotbackup.so is not built',
    timeout: 300_000,
  }, async (t) => {
    const tmp = makeTmp('hb-real-node-');
    const src = join(tmp.dir, 'src');
    const dest = join(tmp.dir, 'backup');
    const log = join(tmp.dir, 'ops.log');
    const outside = join(tmp.dir, 'outside');
    const socket = join(tmp.dir, 'hb.sock');
    mkdirSync(src);
    let w: FsWriter | null = null;
    let ok = false;
    try {
      w = await startFsWriter({ dir: src, outside, log, seed: v.seed, socket, env: v.env });
      const writer = w;
      await writer.waitForOps(300);
      const run = await runBackup({
        socket,
        dest,
        sources: [src],
        throttleBytesPerSec: v.pause ? 512 * 1024 : 256 * 1024,
        // Hold the copier at copy start and before the cut until the writer did 150 more operations.
        whilePaused: v.pause ? async () => writer.waitForOps(writer.ops() + 150) : undefined,
      });
      const st = run.status;
      assert.equal(st.state, 'done', `backup ended ${st.state}: ${JSON.stringify(st.error)}`);
      assert.equal(typeof st.cut_at, 'number', 'status has no cut_at');
      assert.equal(st.pid, writer.child.pid, 'the socket is served by another process than the writer');
      assert.ok(st.manifest && existsSync(st.manifest), `no manifest (${st.manifest})`);
      const cut = st.cut_at!;
      // Some operations must start after the cut, so "none started after the cut" is tested.
      await writer.waitForOps(writer.ops() + 100);
      await writer.stop();

      const ops = readOps(log);
      // The model must reproduce the live directory exactly, or nothing below means anything.
      const full = new FsModel();
      for (const op of ops) applyOp(full, op);
      const liveDiff = [
        ...diffTrees(snapshotOf(full), readTree(src)),
        ...diffTrees(snapshotOf(full, OUT), readTree(outside)).map((d) => `outside/${d}`),
      ];
      assert.deepEqual(liveDiff, [], `the fixture's model does not match the live directories:\n${liveDiff.join('\n')}`);

      // Operations are sequential: those that ended before the cut are a prefix; so are the rest.
      const lo = ops.findIndex((op) => !(op.end < cut - SLACK_MS));
      const before = lo < 0 ? ops.length : lo;
      let after = ops.findIndex((op) => op.start > cut + SLACK_MS);
      if (after < 0) after = ops.length;
      assert.ok(after < ops.length, 'no operation started after the cut (the test waited for some)');
      for (let k = before; k < ops.length; k++) assert.ok(!(ops[k]!.end < cut - SLACK_MS), `op ${k} out of order`);
      const duringOps = st.started_at === null ? [] : ops.filter((op) => op.start >= st.started_at! && op.end < cut);
      const during = duringOps.length;
      if (run.paused.length) assert.ok(during >= 300, `only ${during} operations ran during the backup`);
      const kinds = new Map<string, number>();
      for (const op of duringOps) kinds.set(op.kind, (kinds.get(op.kind) ?? 0) + 1);
      t.diagnostic(`operations during the backup: ${[...kinds].map(([k, n]) => `${k} ${n}`).join(', ')}`);

      // Modes are preserved: the fixture creates files 0644 and directories 0755 (less the umask).
      const umask = process.umask();
      for (const [rel, e] of readTree(dest, (r) => !r.includes('/') && r.startsWith('hotbackup_'))) {
        if (e.kind === 'symlink') continue;
        const mode = lstatSync(join(dest, rel)).mode & 0o7777;
        const want = (e.kind === 'dir' ? 0o755 : 0o644) & ~umask;
        assert.equal(mode.toString(8), want.toString(8), `mode of ${rel} in the backup`);
      }

      // The backup must be the state after every step of ops[0..before) and some prefix of the
      // steps of ops[before..after).
      const m = new FsModel();
      for (let k = 0; k < before; k++) applyOp(m, ops[k]!);
      const backup = readTree(dest, (rel) => !rel.includes('/') && rel.startsWith('hotbackup_'));
      const candidates: Array<{ label: string; snap: Map<string, TreeEntry> }> = [
        { label: `after op ${before - 1} (all ${before} ops that ended before the cut)`, snap: snapshotOf(m) },
      ];
      for (let k = before; k < after; k++) {
        const steps = stepsOf(ops[k]!) as Array<(x: unknown) => void>;
        steps.forEach((s, j) => {
          s(m);
          candidates.push({ label: `op ${k} (${ops[k]!.kind}) step ${j + 1}/${steps.length}`, snap: snapshotOf(m) });
        });
      }
      const match = candidates.find((c) => diffTrees(c.snap, backup).length === 0);
      t.diagnostic(
        `cut at ${cut}: ${before} ops ended before it, ${after - before} overlap it, ${ops.length - after} after; ` +
          `${during} ops during the backup; bytes_copied ${st.bytes_copied}, bytes_mirrored ${st.bytes_mirrored}; ` +
          `pause points ${run.paused.join(',') || 'none'}; backup = ${match ? match.label : 'NO MATCH'}`,
      );
      if (!match) {
        const first = diffTrees(candidates[0]!.snap, backup);
        const last = diffTrees(candidates[candidates.length - 1]!.snap, backup);
        const window = ops.slice(Math.max(0, before - 3), after + 1).map((op) => JSON.stringify(op)).join('\n');
        assert.fail(
          `the backup is not the directory's state at the cut (kept in ${tmp.dir}).\n` +
            `versus the state after the ops that ended before the cut:\n  ${first.join('\n  ')}\n` +
            `versus the state after every op that overlaps the cut:\n  ${last.join('\n  ')}\n` +
            `ops around the cut:\n${window}`,
        );
      }
      ok = true;
    } finally {
      w?.kill();
      if (ok) tmp.cleanup();
      else console.error(`real-node: files kept in ${tmp.dir}`);
    }
  });
}

// Namespace corner cases found by (or distilled from) the randomized test above, each replayed
// deterministically with the copier held at copy start and before the cut: hard links, rename(2)
// between two names of one file (a no-op in the kernel), names linked in from outside.
for (const name of Object.keys(SCENARIOS as Record<string, unknown>)) {
  test(`Node fs scenario under the shim: ${name}`, {
    skip: shim ? false : 'libhotbackup.so is not built',
    timeout: 60_000,
  }, async () => {
    const tmp = makeTmp('hb-real-scn-');
    let ok = false;
    try {
      const env: Record<string, string | undefined> = {
        ...process.env,
        LD_PRELOAD: [...preloadBefore(), shim!].join(':'),
        HOTBACKUP_SOCKET: join(tmp.dir, 'hb.sock'),
        HOTBACKUP_SERVE: 'node',
        HOTBACKUP_TEST_HOOKS: '1',
      };
      delete env.HOTBACKUP_SERVED_PID;
      const child = spawn(process.execPath, [SCENARIO_FIXTURE, '--scenario', name, '--base', tmp.dir], {
        env,
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      let out = '';
      let err = '';
      child.stdout!.setEncoding('utf8').on('data', (d: string) => (out += d));
      child.stderr!.setEncoding('utf8').on('data', (d: string) => (err += d));
      const code = await new Promise<number | null>((r) => child.on('exit', (c) => r(c)));
      assert.equal(code, 0, `the scenario program failed: ${err}`);
      const result = JSON.parse(out.trim().split('\n').pop()!) as { state: string; error: unknown };
      assert.equal(result.state, 'done', `backup ended ${result.state}: ${JSON.stringify(result.error)}`);
      const diff = diffTrees(
        readTree(join(tmp.dir, 'src')),
        readTree(join(tmp.dir, 'backup'), (rel) => !rel.includes('/') && rel.startsWith('hotbackup_')),
      );
      assert.deepEqual(diff, [], `the backup differs from the directory at the cut (kept in ${tmp.dir}):\n${diff.join('\n')}`);
      ok = true;
    } finally {
      if (ok) tmp.cleanup();
    }
  });
}
