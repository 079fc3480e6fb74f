// hotbackup restore: the backup check (manifest, its CRC32C, every entry with its size), refusals,
// modes and owners, hotbackup_* left out, a killed restore (copy and --move) rolled back by the
// next run; and on a real MariaDB backup: --recover and --print-replication, whose coordinates
// must equal the source's at the cut.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import {
  chmodSync, existsSync, lstatSync, mkdirSync, readdirSync, readFileSync, readlinkSync, renameSync, rmSync, statSync, symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test from 'node:test';
import { main } from '../src/cli/main.js';
import { request } from '../src/client.js';
import { checkAllTables, MariaServer } from '../src/mariadb/server.js';
import { restoreTest } from '../src/mariadb/restore-test.js';
import { openCatalog } from '../src/catalog.js';
import { Journal } from '../src/journal.js';
import { BackupCheckError, checkBackup, resolveOwner } from '../src/restore.js';
import { MANIFEST_NAME } from '../src/verify.js';
import { crc32cTs as crc32c, hex as crcHex } from './verify-helpers.js';
import { freshDatadir, mariadbOrSkip, scratch, SHIM, waitUntil } from './mariadb-helpers.js';
import { cli } from './cli-helpers.js';

const { install, skip } = mariadbOrSkip('test/mariadb-restore.test.ts');

function envFor(dir: string): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, HOTBACKUP_CATALOG: join(dir, 'catalog.db') };
  for (const k of ['HOTBACKUP_SOCKET', 'HOTBACKUP_TEST_PAUSE_AT', 'LD_PRELOAD']) delete env[k];
  return env;
}

/** A backup directory written the way the shim writes one (docs/manifest.md), built by hand. */
function fakeBackup(dir: string): void {
  mkdirSync(join(dir, 'db', 'sub'), { recursive: true });
  writeFileSync(join(dir, 'ibdata1'), Buffer.alloc(70_000, 7));
  writeFileSync(join(dir, 'db', 't.frm'), 'frm bytes');
  writeFileSync(join(dir, 'db', 'sub', 'x.dat'), 'x'.repeat(1234));
  symlinkSync('t.frm', join(dir, 'db', 'link'));
  chmodSync(join(dir, 'db', 't.frm'), 0o640);
  chmodSync(join(dir, 'db', 'sub'), 0o750);
  chmodSync(join(dir, 'db'), 0o700);
  chmodSync(join(dir, 'db', 'sub', 'x.dat'), 0o600);
  chmodSync(join(dir, 'ibdata1'), 0o660);
  writeFileSync(join(dir, 'hotbackup_log.txt'), 'tool file, not data');
  const entries = [
    { path: 'db', type: 'dir', mode: 0o700 },
    { path: 'db/link', type: 'symlink', mode: 0o777, target: 't.frm' },
    { path: 'db/sub', type: 'dir', mode: 0o750 },
    { path: 'db/sub/x.dat', type: 'file', mode: 0o600, size: 1234, crc32c: crcHex(crc32c(readFileSync(join(dir, 'db', 'sub', 'x.dat')))) },
    { path: 'db/t.frm', type: 'file', mode: 0o640, size: 9, crc32c: crcHex(crc32c(Buffer.from('frm bytes'))) },
    { path: 'ibdata1', type: 'file', mode: 0o660, size: 70_000, crc32c: crcHex(crc32c(Buffer.alloc(70_000, 7))) },
  ];
  const body = JSON.stringify({ format: 'hotbackup-manifest-1', pid: 1, sources: [{ path: '/src', dest: '.' }], started_at: 1, cut_at: 2,
    finished_at: 3, cut_stall_us: 1, bytes_copied: 71243, bytes_mirrored: 0, files: 3, entries }).slice(0, -1);
  writeFileSync(join(dir, MANIFEST_NAME), `${body},"manifest_crc32c":"${crcHex(crc32c(Buffer.from(body)))}"}\n`);
}

/** Recomputes every file's CRC32C and the manifest's own, as if the shim had written this content. */
function resealManifest(dir: string): void {
  const m = JSON.parse(readFileSync(join(dir, MANIFEST_NAME), 'utf8'));
  for (const e of m.entries) if (e.type === 'file') e.crc32c = crcHex(crc32c(readFileSync(join(dir, e.path))));
  delete m.manifest_crc32c;
  const body = JSON.stringify(m).slice(0, -1);
  writeFileSync(join(dir, MANIFEST_NAME), `${body},"manifest_crc32c":"${crcHex(crc32c(Buffer.from(body)))}"}\n`);
}

test('CRC32C is Castagnoli (check value of "123456789")', () => {
  assert.equal(crcHex(crc32c(Buffer.from('123456789'))), 'e3069283');
});

test('restore checks the backup first: no manifest, a damaged manifest, a missing or resized file are refused', async (t) => {
  const sc = scratch(t, 'hb-restore-check-');
  const b = join(sc.dir, 'b');
  fakeBackup(b);
  assert.equal((await checkBackup(b)).entries.length, 6);
  const expectCode = async (code: string, fn: () => Promise<unknown>) => {
    await assert.rejects(fn, (e: unknown) => e instanceof BackupCheckError && e.code === code, `expected ${code}`);
  };
  // One byte of the manifest changed (a size): the CRC no longer matches.
  const m = readFileSync(join(b, MANIFEST_NAME), 'utf8');
  writeFileSync(join(b, MANIFEST_NAME), m.replace('"size":1234', '"size":1235'));
  await expectCode('manifest_crc', () => checkBackup(b));
  writeFileSync(join(b, MANIFEST_NAME), m);
  writeFileSync(join(b, 'db', 'sub', 'x.dat'), 'short');
  await expectCode('wrong_size', () => checkBackup(b));
  writeFileSync(join(b, 'db', 'sub', 'x.dat'), 'x'.repeat(1234));
  await checkBackup(b);
  writeFileSync(join(b, 'db', 'sub', 'x.dat'), 'y'.repeat(1234));
  await expectCode('wrong_checksum', () => checkBackup(b));
  writeFileSync(join(b, 'db', 'sub', 'x.dat'), 'x'.repeat(1234));
  writeFileSync(join(b, 'ibdata1.tmp'), '');
  renameSync(join(b, 'ibdata1'), join(b, 'ibdata1.moved'));
  await expectCode('missing_entry', () => checkBackup(b));
  renameSync(join(b, 'ibdata1.moved'), join(b, 'ibdata1'));
  rmSync(join(b, MANIFEST_NAME));
  await expectCode('no_manifest', () => checkBackup(b));
  sc.passed();
});

test('hotbackup restore: copies with modes, symlinks, --owner; leaves hotbackup_* out; refuses a non-empty target and a partial backup', async (t) => {
  const sc = scratch(t, 'hb-restore-cli-');
  const env = envFor(sc.dir);
  const b = join(sc.dir, 'b');
  fakeBackup(b);
  const target = join(sc.dir, 'new', 'datadir');
  const owner = process.getuid?.() === 0 ? resolveOwner('daemon') : null;
  const r = await cli(['restore', b, target, ...(owner ? ['--owner', 'daemon'] : [])], env);
  assert.equal(r.code, 0, r.stderr);
  assert.deepEqual(readdirSync(target).sort(), ['db', 'ibdata1']);
  assert.equal(statSync(join(target, 'db', 't.frm')).mode & 0o7777, 0o640);
  assert.equal(statSync(join(target, 'ibdata1')).mode & 0o7777, 0o660);
  assert.equal(statSync(join(target, 'db', 'sub')).mode & 0o7777, 0o750);
  assert.equal(readlinkSync(join(target, 'db', 'link')), 't.frm');
  assert.deepEqual(readFileSync(join(target, 'ibdata1')), Buffer.alloc(70_000, 7));
  if (owner) {
    for (const p of ['', 'db', 'db/t.frm', 'db/sub/x.dat', 'ibdata1', 'db/link']) {
      assert.equal(lstatSync(join(target, p)).uid, owner.uid, `${p} not chowned`);
    }
  }
  // The target is not empty now: a second restore into it is refused and changes nothing.
  const again = await cli(['restore', b, target], env);
  assert.equal(again.code, 2, again.stderr);
  assert.match(again.stderr, /not empty/);
  assert.deepEqual(readdirSync(target).sort(), ['db', 'ibdata1']);
  // A backup without its manifest is refused before anything is created.
  rmSync(join(b, MANIFEST_NAME));
  const partial = await cli(['restore', b, join(sc.dir, 'other')], env);
  assert.equal(partial.code, 1);
  assert.match(partial.stderr, /no_manifest/);
  assert.ok(!existsSync(join(sc.dir, 'other')));
  sc.passed();
});

/** Runs the CLI in its own process, paused at a journal step; SIGKILLs it there. */
async function killAt(args: string[], env: NodeJS.ProcessEnv, at: string): Promise<void> {
  const child = spawn(process.execPath, ['--import', 'tsx', join(import.meta.dirname, 'mariadb-cli-run.ts'), ...args],
    { env: { ...env, HOTBACKUP_TEST_PAUSE_AT: at }, stdio: ['ignore', 'ignore', 'pipe'], cwd: join(import.meta.dirname, '..') });
  let err = '';
  child.stderr.on('data', (d) => (err += d));
  const exited = new Promise<void>((r) => child.on('exit', () => r()));
  await waitUntil(() => err.includes(`test pause at ${at}`) || child.exitCode !== null, `the CLI to pause at ${at}`, 60_000);
  assert.ok(err.includes(`test pause at ${at}`), `the CLI never paused at ${at}:\n${err}`);
  child.kill('SIGKILL');
  await exited;
}

test('a restore killed after copying is rolled back by the next hotbackup command; a killed --move puts the files back', async (t) => {
  const sc = scratch(t, 'hb-restore-kill-');
  const env = envFor(sc.dir);
  const b = join(sc.dir, 'b');
  fakeBackup(b);
  const target = join(sc.dir, 't1');
  await killAt(['restore', b, target], env, 'copy_files:after');
  assert.ok(existsSync(join(target, 'ibdata1')), 'the killed restore had copied the files');
  const next = await cli(['list'], env);
  assert.equal(next.code, 0, next.stderr);
  assert.match(next.stderr, /rolled back the unfinished `hotbackup restore/);
  assert.ok(!existsSync(target), 'the half-restored target is still there');

  const target2 = join(sc.dir, 't2');
  await killAt(['restore', b, target2, '--move'], env, 'move_file:after');
  await assert.rejects(() => checkBackup(b), 'while a --move runs, the backup must not look complete');
  const rec = await cli(['recover'], env);
  assert.equal(rec.code, 0, rec.stderr + rec.stdout);
  await checkBackup(b); // everything moved back, the manifest in place again
  assert.ok(!existsSync(target2));
  // And a --move that completes uses the backup up: it no longer looks complete.
  const ok = await cli(['restore', b, target2, '--move'], env);
  assert.equal(ok.code, 0, ok.stderr);
  assert.equal(readFileSync(join(target2, 'db', 't.frm'), 'utf8'), 'frm bytes');
  await assert.rejects(() => checkBackup(b));
  sc.passed();
});

test('MariaDB: restore --recover --print-replication reports the source\'s binlog file/position and GTID at the cut', { skip, timeout: 240_000 }, async (t) => {
  const sc = scratch(t, 'hb-restore-maria-');
  chmodSync(sc.dir, 0o755); // the recovery server runs as --owner mysql
  const env = envFor(sc.dir);
  const data = join(sc.dir, 'data');
  freshDatadir(install!, data);
  const src = await MariaServer.start({ install: install!, datadir: data, runDir: join(sc.dir, 'run'), name: 'source', shim: SHIM, binlog: 'mysql-bin' });
  sc.defer(() => src.kill());
  await src.query('CREATE DATABASE r');
  await src.query('CREATE TABLE r.t (id INT PRIMARY KEY, v VARCHAR(50)) ENGINE=InnoDB');
  await src.query('FLUSH BINARY LOGS');
  for (let i = 1; i <= 30; i++) await src.query('INSERT INTO r.t VALUES (?, ?)', [i, `v${i}`]);
  // A checkpoint, so that recovery of the backup does not rebuild r/t.ibd from the redo log
  // (the damaged-page case below must read the page from the file).
  await src.query('SET GLOBAL innodb_log_checkpoint_now = ON');
  // No writes during this backup: the coordinates at the cut are the source's current ones.
  const [gtid] = await src.query<{ p: string }>('SELECT @@gtid_binlog_pos AS p');
  const [ms] = await src.query<{ File: string; Position: number }>('SHOW MASTER STATUS');
  const dest = join(sc.dir, 'backup');
  const b = await cli(['start', dest, '--socket', src.hotbackupSocket!, '--wait'], env);
  assert.equal(b.code, 0, b.stderr);
  const s = await request(src.hotbackupSocket!, { op: 'status' });
  assert.equal(s.state, 'done');
  await src.shutdown();

  const target = join(sc.dir, 'replica-data');
  const mysqlUser = process.getuid?.() === 0 ? (() => { try { return resolveOwner('mysql'); } catch { return null; } })() : null;
  const r = await cli(['restore', dest, target, '--print-replication', ...(mysqlUser ? ['--owner', 'mysql'] : [])], env);
  assert.equal(r.code, 0, r.stderr);
  t.diagnostic(r.stdout.replace(/\n/g, ' | '));
  assert.match(r.stdout, new RegExp(`binlog file\\s+${ms.File}\\b`));
  assert.match(r.stdout, new RegExp(`binlog position\\s+${ms.Position}\\b`));
  assert.match(r.stdout, new RegExp(`gtid_binlog_pos\\s+${gtid.p.replace(/[-]/g, '\\-')}\\b`));
  assert.match(r.stdout, new RegExp(`SET GLOBAL gtid_slave_pos = '${gtid.p}'`));
  assert.match(r.stdout, /MASTER_USE_GTID=slave_pos/);
  assert.match(r.stdout, new RegExp(`MASTER_LOG_FILE='${ms.File}', MASTER_LOG_POS=${ms.Position}`));
  if (mysqlUser) assert.equal(statSync(join(target, 'ibdata1')).uid, mysqlUser.uid);
  // The recovered target starts cleanly (no crash recovery needed any more) and holds the rows.
  const dst = await MariaServer.start({ install: install!, datadir: target, runDir: join(sc.dir, 'run'), name: 'restored', binlog: 'mysql-bin', serverId: 2 });
  sc.defer(() => dst.kill());
  assert.doesNotMatch(dst.errorLog(), /Starting crash recovery/, 'the restored datadir still needed crash recovery after --recover');
  const [n] = await dst.query<{ n: number }>('SELECT COUNT(*) AS n FROM r.t');
  assert.equal(Number(n.n), 30);
  await dst.shutdown();

  // The restore test (verify --restore-test) on the same backup: recovers, every table checks.
  const catalog = openCatalog(join(sc.dir, 'catalog.db'));
  sc.defer(() => catalog.close());
  const j = Journal.begin(catalog, 'verify', ['verify', dest, '--restore-test']);
  const rt = await restoreTest(dest, { journal: j, install, scratchParent: sc.dir });
  const cleanup = await j.cleanup();
  t.diagnostic(`restore test: ok ${rt.ok}, ${rt.tables} tables, ${rt.rows} rows, recovery ${rt.recovery_ms} ms; problems ${JSON.stringify(rt.problems)}`);
  assert.ok(rt.ok, `restore test failed: ${rt.problems.join('; ')}`);
  assert.ok(rt.tables > 30 && rt.rows >= 30);
  assert.equal(cleanup.state, 'cleaned_up');

  // The same through the command line: manifest and checksums first, then the restore test.
  let out = '';
  let err = '';
  const io = { stdout: { write: (c: string) => { out += c; return true; }, isTTY: false } as unknown as NodeJS.WriteStream,
    stderr: { write: (c: string) => { err += c; return true; }, isTTY: false } as unknown as NodeJS.WriteStream,
    env: { ...process.env, HOTBACKUP_CATALOG: join(sc.dir, 'catalog-cli.db') } };
  const scratchDirs = () => readdirSync(tmpdir()).filter((n) => n.startsWith('hotbackup-restore-test-')).sort().join(',');
  const before = scratchDirs();
  const code = await main(['verify', dest, '--restore-test', '--json'], io);
  const doc = JSON.parse(out);
  assert.equal(code, 0, `verify --restore-test exited ${code}: ${err.slice(-500)}`);
  assert.equal(doc.status, 'verified');
  assert.equal(doc.restore_test.ok, true);
  assert.ok(doc.restore_test.tables > 30, `restore test checked ${doc.restore_test.tables} tables`);
  assert.equal(scratchDirs(), before, 'verify --restore-test left its scratch copy');
  assert.ok(!readdirSync(sc.dir).some((n) => n.startsWith('hotbackup-restore-test-')), 'the scratch copy was not removed');
  // A backup with a damaged page in r/t.ibd (same size, so the manifest check passes): the restore test must fail.
  const { cpSync, openSync, writeSync, closeSync } = await import('node:fs');
  const bad = join(sc.dir, 'bad-backup');
  cpSync(dest, bad, { recursive: true });
  const fd = openSync(join(bad, 'r', 't.ibd'), 'r+');
  writeSync(fd, Buffer.alloc(200, 0xa5), 0, 200, 3 * 16384 + 1000);
  closeSync(fd);
  // A manifest that agrees with the damage: the backup is intact as written, its data is not
  // (what only starting a server on it can find).
  resealManifest(bad);
  const j2 = Journal.begin(catalog, 'verify', ['verify', bad, '--restore-test']);
  const rt2 = await restoreTest(bad, { journal: j2, install, scratchParent: sc.dir });
  await j2.cleanup();
  t.diagnostic(`restore test of a damaged backup: ok ${rt2.ok}; problems ${JSON.stringify(rt2.problems).slice(0, 300)}`);
  assert.equal(rt2.ok, false, 'the restore test passed a backup with a damaged page');
  sc.passed();
});

test('MariaDB: a backup of two source directories (datadir, redo log elsewhere) taken under load restores to its places with --map', { skip, timeout: 300_000 }, async (t) => {
  const sc = scratch(t, 'hb-restore-multi-');
  const env = envFor(sc.dir);
  const data = join(sc.dir, 'data');
  const redo = join(sc.dir, 'redo');
  freshDatadir(install!, data);
  mkdirSync(redo);
  renameSync(join(data, 'ib_logfile0'), join(redo, 'ib_logfile0'));
  const logArg = (dir: string) => `--innodb-log-group-home-dir=${dir}`;
  const src = await MariaServer.start({ install: install!, datadir: data, runDir: join(sc.dir, 'run'), name: 'source', shim: SHIM, extraArgs: [logArg(redo)] });
  sc.defer(() => src.kill());
  await src.query('CREATE DATABASE m');
  await src.query('CREATE TABLE m.t (id INT PRIMARY KEY, v VARCHAR(100)) ENGINE=InnoDB');
  // Commits go on during the whole backup; each acknowledged one is remembered.
  let stop = false;
  const acked: number[] = [];
  const writer = (async () => {
    for (let i = 1; !stop; i++) {
      await src.query('INSERT INTO m.t VALUES (?, ?)', [i, 'x'.repeat(90)]);
      acked.push(i);
    }
  })();
  await waitUntil(() => acked.length >= 200, '200 commits before the backup');
  const dest = join(sc.dir, 'backup');
  const b = await cli(['start', dest, '--source', data, '--source', redo, '--throttle', '4MB/s', '--wait', '--socket', src.hotbackupSocket!], env);
  const status = await request(src.hotbackupSocket!, { op: 'status' });
  stop = true;
  await writer;
  assert.equal(b.code, 0, b.stderr);
  const m = JSON.parse(readFileSync(join(dest, MANIFEST_NAME), 'utf8'));
  assert.deepEqual(m.sources.map((x: { dest: string }) => x.dest).sort(), ['data', 'redo']);
  assert.ok(existsSync(join(dest, 'redo', 'ib_logfile0')), 'the redo log directory is in the backup');

  const restored = join(sc.dir, 'restored');
  const redo2 = join(sc.dir, 'redo2');
  const r = await cli(['restore', dest, restored, '--map', `redo=${redo2}`, '--json'], env);
  assert.equal(r.code, 0, r.stderr);
  const places = JSON.parse(r.stdout).restore.places as { dest: string; target: string }[];
  assert.deepEqual(places.map((p) => [p.dest, p.target]).sort(), [['data', join(restored, 'data')], ['redo', redo2]]);
  assert.ok(existsSync(join(restored, 'data', 'ibdata1')) && existsSync(join(redo2, 'ib_logfile0')));
  assert.ok(!existsSync(join(restored, 'data', 'ib_logfile0')), 'the redo log was restored into the datadir, not its own place');

  const dst = await MariaServer.start({ install: install!, datadir: join(restored, 'data'), runDir: join(sc.dir, 'run2'), name: 'restored', extraArgs: [logArg(redo2)] });
  sc.defer(() => dst.kill());
  const check = await checkAllTables(dst);
  assert.deepEqual(check.problems, [], 'CHECK TABLE on the restored server');
  const ids = new Set((await dst.query<{ id: number }>('SELECT id FROM m.t')).map((row) => Number(row.id)));
  // Every commit acknowledged before the backup began is there, and the rows form a prefix.
  const max = Math.max(...ids);
  assert.ok(max >= 200, `only ${ids.size} rows restored`);
  for (let i = 1; i <= max; i++) assert.ok(ids.has(i), `row ${i} missing below the highest restored row ${max}`);
  t.diagnostic(`two-directory backup: ${ids.size} of ${acked.length} committed rows at the cut (cut_at ${status.cut_at}), mirrored ${status.bytes_mirrored} B`);
  await dst.shutdown();
  await src.shutdown();
  sc.passed();
});
