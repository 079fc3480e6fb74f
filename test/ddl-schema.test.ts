// The DDL schema workload (test/ddl-schema.ts): its prefix check on hand-made states (no server),
// then on a real MariaDB: after about 3 rounds the schema read from information_schema equals the
// model after every statement, and again after a SIGKILL and crash recovery (every statement was
// acknowledged, so every one must survive).
import assert from 'node:assert/strict';
import { join } from 'node:path';
import test from 'node:test';
import { MariaServer } from '../src/mariadb/server.js';
import {
  checkDdlPrefix, cloneSchema, type DdlLogEntry, ddlSchemaLoop, diffSchemas, planStatements, readSchema, roundStatements,
  schemaAfter, schemaToObject,
} from './ddl-schema.js';
import { freshDatadir, mariadbOrSkip, scratch, waitUntil } from './mariadb-helpers.js';

const { install, skip } = mariadbOrSkip('test/ddl-schema.test.ts');

/** A log of n statements, statement k running from 1000 + 10k to 1000 + 10k + 5 (all acknowledged). */
function fakeLog(n: number, prefix = 'dsm'): DdlLogEntry[] {
  return planStatements(n, prefix).map((s, k) => ({ ...s, k, startMs: 1000 + 10 * k, endMs: 1000 + 10 * k + 5, error: null }));
}

/** The index of the first statement whose SQL starts with `sql`. */
function indexOf(log: DdlLogEntry[], sql: string): number {
  const j = log.findIndex((e) => e.sql.startsWith(sql));
  assert.ok(j >= 0, `no statement ${sql}`);
  return j;
}

const R = roundStatements('dsm', 1).length; // statements in round 1 (later rounds have a few more)

test('the model: after three rounds', () => {
  const log = fakeLog(1 + R + roundStatements('dsm', 2).length + roundStatements('dsm', 3).length);
  const s = schemaToObject(schemaAfter(log, log.length));
  assert.deepEqual(Object.keys(s), ['dsm_3', 'dsm_keep']);
  assert.deepEqual(Object.keys(s.dsm_keep), ['r2', 'r3', 't2', 't3']);
  assert.deepEqual(s.dsm_keep.t3, { columns: ['id', 'v', 'n', 'c3'], engine: 'InnoDB', rows: 203 + 30 });
  assert.deepEqual(s.dsm_keep.r2, { columns: ['id', 'v', 'k2'], engine: 'Aria', rows: 42 });
  assert.deepEqual(s.dsm_3, {
    a: { columns: ['id', 'v', 'w'], engine: 'Aria', rows: 103 },
    u: { columns: ['id', 'note'], engine: 'InnoDB', rows: 53 },
  });
  // Statement 0 creates the keep database; nothing before it.
  assert.equal(schemaAfter(log, 0).size, 0);
  assert.deepEqual(schemaToObject(schemaAfter(log, 1)), { dsm_keep: {} });
});

test('checkDdlPrefix: the exact prefix passes; a cut inside a statement accepts it done or not done', () => {
  const log = fakeLog(80);
  // Cut between statements 30 and 31 (statement 30 ends at 1305, 31 starts at 1310).
  const cut = 1308;
  const r = checkDdlPrefix(schemaAfter(log, 31), log, cut, 1);
  assert.equal(r.ok, true, r.diff.join('\n'));
  assert.equal(r.k, 31);
  assert.deepEqual(r.candidates, [31, 31]);
  // Cut inside statement 40 (1400..1405): 40 and 41 are both fine, 39 and 42 are not.
  for (const k of [40, 41]) {
    const c = checkDdlPrefix(schemaAfter(log, k), log, 1403);
    assert.equal(c.ok, true, `k=${k}: ${c.diff.join('\n')}`);
    assert.deepEqual(c.candidates, [40, 41]);
  }
  const j = indexOf(log, 'INSERT INTO dsm_2.t ');
  assert.equal(checkDdlPrefix(schemaAfter(log, j), log, 1000 + 10 * j + 3).ok, true);
  assert.equal(checkDdlPrefix(schemaAfter(log, j + 1), log, 1000 + 10 * j + 3).ok, true);
  // Before anything ran: the empty schema.
  assert.equal(checkDdlPrefix(new Map(), log, 900).ok, true);
});

test('checkDdlPrefix: a table an acknowledged CREATE made is missing -> fails, and the diff names it', () => {
  const log = fakeLog(80);
  const j = indexOf(log, 'CREATE TABLE dsm_2.a ');
  const k = j + 6; // well after the CREATE was acknowledged, before anything drops dsm_2
  const actual = schemaAfter(log, k);
  assert.ok(actual.get('dsm_2')!.delete('a'));
  const r = checkDdlPrefix(actual, log, 1000 + 10 * k - 2);
  assert.equal(r.ok, false);
  assert.equal(r.k, k);
  assert.ok(r.diff.some((d) => /missing table dsm_2\.a\b/.test(d)), r.diff.join('\n'));
  // A missing database likewise.
  const noDb = schemaAfter(log, k);
  noDb.delete('dsm_2');
  const r2 = checkDdlPrefix(noDb, log, 1000 + 10 * k - 2);
  assert.equal(r2.ok, false);
  assert.ok(r2.diff.some((d) => /missing database dsm_2\b/.test(d)), r2.diff.join('\n'));
});

test('checkDdlPrefix: a wrong row count, a wrong column list or a wrong engine fails', () => {
  const log = fakeLog(80);
  const j = indexOf(log, 'OPTIMIZE TABLE dsm_2.t');
  const cut = 1000 + 10 * j + 8; // statement j acknowledged, j+1 not started
  assert.equal(checkDdlPrefix(schemaAfter(log, j + 1), log, cut).ok, true);

  const rows = schemaAfter(log, j + 1);
  rows.get('dsm_2')!.get('t')!.rows -= 1;
  const r = checkDdlPrefix(rows, log, cut);
  assert.equal(r.ok, false);
  assert.deepEqual(r.diff, ['dsm_2.t: 201 rows, expected 202']);

  const cols = schemaAfter(log, j + 1);
  cols.get('dsm_2')!.get('a')!.columns.pop();
  const c = checkDdlPrefix(cols, log, cut);
  assert.equal(c.ok, false);
  assert.deepEqual(c.diff, ['dsm_2.a: columns (id, v), expected (id, v, w)']);

  const eng = schemaAfter(log, j + 1);
  eng.get('dsm_2')!.get('u')!.engine = 'Aria';
  assert.deepEqual(checkDdlPrefix(eng, log, cut).diff, ['dsm_2.u: engine Aria, expected InnoDB']);
});

test('checkDdlPrefix: an in-flight DROP DATABASE may have dropped any of its tables, not other tables', () => {
  const log = fakeLog(80);
  const j = indexOf(log, 'DROP DATABASE dsm_1');
  const inFlight = 1000 + 10 * j + 3;
  const before = schemaAfter(log, j);
  assert.deepEqual([...before.get('dsm_1')!.keys()].sort(), ['a', 'u'], 'dsm_1 still holds an Aria and an InnoDB table');
  for (const gone of [['a'], ['u'], ['a', 'u']]) {
    const actual = cloneSchema(before);
    for (const t of gone) actual.get('dsm_1')!.delete(t);
    const r = checkDdlPrefix(actual, log, inFlight);
    assert.equal(r.ok, true, `${gone}: ${r.diff.join('\n')}`);
    assert.equal(r.k, j);
    assert.equal(r.partialDropDatabase, 'dsm_1');
  }
  // The database gone entirely is simply statement j done.
  assert.equal(checkDdlPrefix(schemaAfter(log, j + 1), log, inFlight).ok, true);

  // Not accepted: the same partial state when the DROP DATABASE was not in flight ...
  const partial = cloneSchema(before);
  partial.get('dsm_1')!.delete('a');
  assert.equal(checkDdlPrefix(partial, log, 1000 + 10 * j - 2).ok, false, 'DROP DATABASE had not started');
  const after = checkDdlPrefix(partial, log, 1000 + 10 * j + 9);
  assert.equal(after.ok, false, 'DROP DATABASE was acknowledged');
  assert.ok(after.diff.some((d) => /extra database dsm_1\b/.test(d)), after.diff.join('\n'));
  // ... a table of another database missing ...
  const other = cloneSchema(before);
  other.get('dsm_1')!.delete('a');
  other.get('dsm_keep')!.delete('t1');
  const o = checkDdlPrefix(other, log, inFlight);
  assert.equal(o.ok, false);
  assert.ok(o.diff.some((d) => /missing table dsm_keep\.t1\b/.test(d)), o.diff.join('\n'));
  // ... or a remaining table of the dropped database with a wrong row count.
  const wrong = cloneSchema(before);
  wrong.get('dsm_1')!.delete('a');
  wrong.get('dsm_1')!.get('u')!.rows = 0;
  assert.equal(checkDdlPrefix(wrong, log, inFlight).ok, false);
});

test('checkDdlPrefix: a statement whose connection died at the cut (a crash) may be done or not done', () => {
  const log = fakeLog(50);
  const j = indexOf(log, 'INSERT INTO dsm_2.a ');
  const dead = log.slice(0, j + 1);
  dead[j] = { ...dead[j], endMs: null, error: 'Connection lost: The server closed the connection.' };
  const cut = 1000 + 10 * j + 3;
  for (const k of [j, j + 1]) {
    const r = checkDdlPrefix(schemaAfter(dead, k), dead, cut);
    assert.equal(r.ok, true, `k=${k}: ${r.diff.join('\n')}`);
    assert.deepEqual(r.candidates, [j, j + 1]);
  }
  assert.equal(schemaAfter(dead, j + 1).get('dsm_2')!.get('a')!.rows, 102, 'the model applies a statement that saw an error');
  const half = schemaAfter(dead, j + 1);
  half.get('dsm_2')!.get('a')!.rows = 51;
  assert.equal(checkDdlPrefix(half, dead, cut).ok, false, 'an INSERT is atomic: half of it is not a prefix');
});

test('checkDdlPrefix: a statement started after the cut must not be there', () => {
  const log = fakeLog(80);
  const j = indexOf(log, 'CREATE TABLE dsm_2.u ');
  const cut = 1000 + 10 * j - 2; // statement j-1 acknowledged (ends 5 ms before j starts), j starts 2 ms after the cut
  const r0 = checkDdlPrefix(schemaAfter(log, j), log, cut, 1);
  assert.equal(r0.ok, true, r0.diff.join('\n'));
  assert.deepEqual(r0.candidates, [j, j]);
  assert.ok(diffSchemas(schemaAfter(log, j + 1), schemaAfter(log, j)).length > 0, 'statement j changes the schema');
  const r = checkDdlPrefix(schemaAfter(log, j + 1), log, cut, 1);
  assert.equal(r.ok, false);
  assert.ok(r.diff.some((d) => /extra table dsm_2\.u\b/.test(d)), r.diff.join('\n'));
  // Later still (two rounds on) fails as well.
  assert.equal(checkDdlPrefix(schemaAfter(log, j + 2 * R), log, cut, 1).ok, false);
  // With a slack that covers the start of statement j, it is allowed.
  assert.equal(checkDdlPrefix(schemaAfter(log, j + 1), log, cut, 3).ok, true);
});

test('MariaDB: the DDL schema workload ends exactly at the model, before and after a SIGKILL and crash recovery', {
  skip, timeout: 300_000,
}, async (t) => {
  const sc = scratch(t, 'hb-ddl-schema-');
  const data = join(sc.dir, 'data');
  freshDatadir(install!, data);
  const srv = await MariaServer.start({ install: install!, datadir: data, runDir: join(sc.dir, 'run'), name: 'first' });
  sc.defer(() => srv.kill());

  const load = ddlSchemaLoop(srv);
  let stopped = false;
  sc.defer(async () => { if (!stopped) await load.stop(); });
  const t0 = Date.now();
  await waitUntil(() => load.rounds() >= 3, 'three rounds of DDL', 240_000);
  stopped = true;
  const res = await load.stop();
  const ms = Date.now() - t0;
  assert.deepEqual(res.errors, [], 'the DDL workload saw errors');
  const log = load.log();
  assert.ok(log.every((e) => e.endMs !== null && e.error === null), 'every statement was acknowledged');
  assert.equal(res.count, log.length);

  const expected = schemaAfter(log, log.length);
  const actual = await readSchema(srv, 'dsm');
  assert.deepEqual(diffSchemas(actual, expected), [], `after ${log.length} statements`);
  assert.deepEqual(schemaToObject(actual), schemaToObject(expected));
  const c1 = checkDdlPrefix(actual, log, Date.now() + 10);
  assert.equal(c1.ok, true);
  assert.equal(c1.k, log.length);

  await srv.kill();
  const again = await MariaServer.start({ install: install!, datadir: data, runDir: join(sc.dir, 'run'), name: 'recovered' });
  sc.defer(() => again.kill());
  const elog = again.errorLog();
  assert.doesNotMatch(elog, /\[ERROR\]/, `crash recovery logged errors:\n${elog}`);
  const recovered = await readSchema(again, 'dsm');
  assert.deepEqual(diffSchemas(recovered, expected), [], 'after SIGKILL and crash recovery');
  assert.deepEqual(schemaToObject(recovered), schemaToObject(expected));
  await again.shutdown();

  t.diagnostic(`${log.length} statements (${load.rounds()} rounds + ${log.filter((e) => e.round > load.rounds()).length}) in ${ms} ms; ` +
    `recovery+start ${again.readyMs} ms; schema: ${[...expected].map(([db, ts]) => `${db}(${[...ts.keys()].join(',')})`).join(' ')}`);
  sc.passed();
});
