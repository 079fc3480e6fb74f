// Shared by test/real-*.test.ts: locating the shim, driving a backup over the socket with the
// test pause points, and comparing directory trees.
import { existsSync, lstatSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { rawRequest, request, type BackupStatus } from '../src/client.js';
import { shimPath } from '../src/lib-path.js';

/**
 * The built shim (or $HOTBACKUP_TEST_SHIM), or null when the real-program tests must be skipped
 * (after a loud warning). Under CI=true a missing shim is an error, never a skip.
 */
export function shimOrSkip(testFile: string): string | null {
  // HOTBACKUP_TEST_SHIM selects another build (e.g. build/shim-asan/libhotbackup.so).
  const p = process.env.HOTBACKUP_TEST_SHIM || shimPath();
  if (existsSync(p)) return p;
  const msg = `${testFile}: libhotbackup.so is not built (looked for ${p}); run \`node scripts/build.mjs --shim-only\``;
  if (process.env.CI === 'true') throw new Error(`${msg}. CI=true: refusing to skip.`);
  console.warn(`\n*** SKIPPING the real-program tests in ${testFile}: ${msg}. ***\n`);
  return null;
}

/**
 * Libraries to preload before the shim, from $HOTBACKUP_TEST_PRELOAD (colon-separated), e.g.
 * HOTBACKUP_TEST_PRELOAD=$(gcc -print-file-name=libasan.so) with an ASan build in HOTBACKUP_TEST_SHIM
 * (and ASAN_OPTIONS=detect_leaks=0).
 */
export function preloadBefore(): string[] {
  return (process.env.HOTBACKUP_TEST_PRELOAD ?? '').split(':').filter(Boolean);
}

export function makeTmp(prefix: string): { dir: string; cleanup: () => void } {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  return { dir, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

export type PausePoint = 'copy_start' | 'cut';

export interface BackupRun {
  /** The final status (done, failed, ...). */
  status: BackupStatus;
  /** The pause points that were used (empty when the shim has no test hooks). */
  paused: PausePoint[];
}

/**
 * Starts a throttled backup and waits for its end. When the shim has test hooks
 * (HOTBACKUP_TEST_HOOKS=1), the copier is held at `copy_start` (capture on, nothing copied
 * yet) and at `cut` (everything copied, cut not taken) while `whilePaused(point)` runs, so
 * writes are guaranteed to happen during the copy and between copy and cut whatever the
 * relative speeds. Without hooks it warns and relies on the throttle alone.
 */
export async function runBackup(opts: {
  socket: string;
  dest: string;
  sources: string[];
  throttleBytesPerSec: number;
  whilePaused?: (point: PausePoint) => Promise<void>;
  timeoutMs?: number;
}): Promise<BackupRun> {
  const { socket } = opts;
  const deadline = Date.now() + (opts.timeoutMs ?? 180_000);
  const points: PausePoint[] = [];
  if (opts.whilePaused) {
    for (const point of ['copy_start', 'cut'] as const) {
      const r = await rawRequest(socket, { op: 'test_pause', point, on: true });
      if (r.ok) points.push(point);
      else {
        console.warn(
          `runBackup: the shim refused test_pause ${point} (${r.error.code}: ${r.error.message}); ` +
            'relying on the throttle alone to make writes overlap the copy',
        );
        break;
      }
    }
  }
  try {
    await request(socket, {
      op: 'start',
      dest: opts.dest,
      sources: opts.sources,
      throttle_bytes_per_sec: opts.throttleBytesPerSec,
    });
    for (const point of points) {
      // Wait until the copier is held there (or the backup ended: then the final status says why).
      for (;;) {
        const r = await rawRequest(socket, { op: 'test_paused' });
        if (!r.ok) throw new Error(`test_paused failed: ${r.error.code}: ${r.error.message}`);
        if ((r as { paused?: unknown }).paused === point) break;
        const s = await request(socket, { op: 'status' });
        if (s.state !== 'copying' && s.state !== 'finishing') {
          return { status: s, paused: points };
        }
        if (Date.now() > deadline) throw new Error(`the copier never reached pause point ${point}`);
        await sleep(20);
      }
      await opts.whilePaused!(point);
      await request(socket, { op: 'test_pause', point, on: false });
    }
  } finally {
    // Never leave a copier parked if something above threw.
    for (const point of points) await rawRequest(socket, { op: 'test_pause', point, on: false }).catch(() => {});
  }
  for (;;) {
    const s = await request(socket, { op: 'status' });
    if (s.state !== 'copying' && s.state !== 'finishing') return { status: s, paused: points };
    if (Date.now() > deadline) {
      await rawRequest(socket, { op: 'cancel' }).catch(() => {});
      throw new Error(`the backup did not finish in time; last status ${JSON.stringify(s)}`);
    }
    await sleep(50);
  }
}

export type TreeEntry = { kind: 'dir' } | { kind: 'file'; data: Buffer } | { kind: 'symlink'; target: string } | { kind: 'other' };

/** Every entry under dir (relative paths, '/'-separated); `skip(relPath)` drops an entry and its subtree. */
export function readTree(dir: string, skip: (rel: string) => boolean = () => false): Map<string, TreeEntry> {
  const out = new Map<string, TreeEntry>();
  const walk = (rel: string) => {
    for (const name of readdirSync(join(dir, rel)).sort()) {
      const r = rel ? `${rel}/${name}` : name;
      if (skip(r)) continue;
      const st = lstatSync(join(dir, r));
      if (st.isDirectory()) {
        out.set(r, { kind: 'dir' });
        walk(r);
      } else if (st.isFile()) out.set(r, { kind: 'file', data: readFileSync(join(dir, r)) });
      else if (st.isSymbolicLink()) out.set(r, { kind: 'symlink', target: readlinkSync(join(dir, r)) });
      else out.set(r, { kind: 'other' });
    }
  };
  walk('');
  return out;
}

function describe(e: TreeEntry | undefined): string {
  if (!e) return 'absent';
  if (e.kind === 'file') return `file of ${e.data.length} bytes`;
  if (e.kind === 'symlink') return `symlink to ${e.target}`;
  return e.kind;
}

/** Differences between two trees, as sentences (empty = equal). */
export function diffTrees(
  expected: Map<string, TreeEntry>,
  actual: Map<string, TreeEntry>,
  max = 10,
): string[] {
  const out: string[] = [];
  const paths = [...new Set([...expected.keys(), ...actual.keys()])].sort();
  for (const p of paths) {
    if (out.length >= max) {
      out.push('...');
      break;
    }
    const e = expected.get(p);
    const a = actual.get(p);
    if (!e || !a || e.kind !== a.kind) {
      out.push(`${p}: expected ${describe(e)}, found ${describe(a)}`);
      continue;
    }
    if (e.kind === 'file' && a.kind === 'file' && !e.data.equals(a.data)) {
      let k = 0;
      while (k < e.data.length && k < a.data.length && e.data[k] === a.data[k]) k++;
      const show = (b: Buffer) => JSON.stringify(b.subarray(k, k + 24).toString('latin1'));
      out.push(
        `${p}: contents differ at byte ${k} (expected ${e.data.length} bytes, found ${a.data.length}; ` +
          `expected ${show(e.data)}, found ${show(a.data)})`,
      );
    } else if (e.kind === 'symlink' && a.kind === 'symlink' && e.target !== a.target) {
      out.push(`${p}: symlink to ${e.target} expected, found ${a.target}`);
    }
  }
  return out;
}
