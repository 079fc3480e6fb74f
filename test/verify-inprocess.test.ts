// The in-process API: a Node program running under the shim backs up its own better-sqlite3
// database while it writes to it, with `import { backup } from 'hotbackup'` (start, status,
// throttle, wait), no socket. The backup verifies and opens as a consistent database. Without
// the shim (or with the shim inert) the API refuses with a clear error.
import assert from 'node:assert/strict';
import { cpSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import test from 'node:test';
import { fileURLToPath } from 'node:url';
import Database from 'better-sqlite3';
import { backup, ShimNotLoadedError } from '../src/backup.js';
import { shimPath } from '../src/lib-path.js';
import { verifyBackup } from '../src/verify.js';
import { makeTmp, shimOrSkip, spawnUnderShim } from './verify-helpers.js';

const skip = shimOrSkip('test/verify-inprocess.test.ts');
const CHILD = fileURLToPath(new URL('./verify-inprocess-child.ts', import.meta.url));
const shim = () => process.env.HOTBACKUP_TEST_SHIM || shimPath();

test('a Node process under the shim backs up its own better-sqlite3 database in-process', { skip, timeout: 300_000 }, async (t) => {
  const tmp = makeTmp('hb-verify-inproc-');
  t.after(tmp.cleanup);
  const dir = join(tmp.dir, 'data');
  const dest = join(tmp.dir, 'backup');
  mkdirSync(dir);
  // Its own socket path, though nothing connects to it: the requests go through hotbackup_request().
  const p = await spawnUnderShim(shim(), ['--import', 'tsx', CHILD, 'backup', dir, dest], { socket: join(tmp.dir, 'unused.sock') });
  await p.waitFor((l) => l.some((x) => x.startsWith('{')), 'the result line', 240_000);
  await p.stop();
  const r = JSON.parse(p.lines().find((x) => x.startsWith('{'))!);

  assert.equal(r.info.loaded, true);
  assert.equal(r.info.served, true);
  assert.equal(r.info.path, shim());
  assert.equal(r.started.throttle_bytes_per_sec, 256_000);
  assert.equal(r.unthrottled.throttle_bytes_per_sec, 0, 'throttle(off) took effect');
  assert.equal(r.final.state, 'done', JSON.stringify(r.final.error));
  assert.equal(r.final.pid, p.child.pid, 'the backup was taken by the process itself');
  assert.ok(r.transfersDuringCopy >= 200, `only ${r.transfersDuringCopy} transfers during the copy`);
  assert.ok(r.final.bytes_mirrored > 0, 'no write of the bank was mirrored into the backup');
  assert.equal(r.sum, 200 * 1000);

  const report = await verifyBackup(dest);
  assert.deepEqual(report.problems, []);
  assert.equal(report.status, 'verified');

  // The backup opens as a database with its invariant (SQLite recovers it from its WAL).
  const restored = join(tmp.dir, 'restored');
  cpSync(dest, restored, { recursive: true });
  const db = new Database(join(restored, 'bank.db'));
  try {
    assert.equal(db.pragma('integrity_check', { simple: true }), 'ok');
    const row = db.prepare('SELECT COUNT(*) AS n, SUM(balance) AS s FROM accounts').get() as { n: number; s: number };
    assert.deepEqual(row, { n: 200, s: 200 * 1000 });
  } finally {
    db.close();
  }
});

test('without the shim in the process, the API says how to load it', async () => {
  assert.equal(backup.available(), false);
  assert.equal(backup.info().loaded, false);
  await assert.rejects(backup.status(), (e: unknown) => {
    assert.ok(e instanceof ShimNotLoadedError);
    assert.equal(e.code, 'shim_not_loaded');
    assert.match(e.message, /LD_PRELOAD=\$\(hotbackup lib-path\) HOTBACKUP_SERVE=node/);
    return true;
  });
  await assert.rejects(backup.start('/tmp/nowhere'), ShimNotLoadedError);
});

test('with the shim loaded but inert in the process, the API says so', { skip, timeout: 120_000 }, async (t) => {
  const tmp = makeTmp('hb-verify-inert-');
  t.after(tmp.cleanup);
  const p = await spawnUnderShim(shim(), ['--import', 'tsx', CHILD, 'probe'], {
    socket: join(tmp.dir, 'unused.sock'), env: { HOTBACKUP_SERVE: 'mariadbd' },
  });
  await p.waitFor((l) => l.some((x) => x.startsWith('{')), 'the probe result', 60_000);
  await p.stop();
  const r = JSON.parse(p.lines().find((x) => x.startsWith('{'))!);
  assert.equal(r.info.loaded, true);
  assert.equal(r.info.served, false);
  assert.equal(r.ok, false);
  assert.equal(r.name, 'ShimNotLoadedError');
  assert.equal(r.code, 'not_served');
  assert.match(r.message, /HOTBACKUP_SERVE/);
});
