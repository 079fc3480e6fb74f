// A DDL workload whose schema is checked as a prefix at a cut. One connection runs a deterministic,
// endless sequence of statements (CREATE/DROP DATABASE, CREATE TABLE InnoDB and Aria TRANSACTIONAL=1,
// INSERT ... SELECT from the sequence engine, ALTER FORCE, ADD COLUMN, OPTIMIZE (InnoDB), TRUNCATE,
// RENAME across databases, DROP TABLE, DROP DATABASE of a database that still holds tables) and logs each
// with its start and acknowledgement times. Every statement is generated together with its effect
// on a model schema (TypeScript data, no SQL parsing), so the schema after any prefix of the
// statements is known: `schemaAfter(log, k)`. `readSchema` reads the real one from
// information_schema plus COUNT(*), and `checkDdlPrefix` decides whether a schema (e.g. a restored
// backup's) is the model after some k allowed by the cut time:
//
//   lo = statements acknowledged more than slackMs before the cut   (must be there)
//   hi = statements started before cut + slackMs                    (nothing later may be there)
//
// MariaDB 10.6+ (atomic DDL): CREATE/DROP/RENAME TABLE, ALTER, TRUNCATE are atomic across a crash,
// an INSERT into InnoDB or an Aria TRANSACTIONAL=1 table is atomic per statement; DROP DATABASE is
// a loop of atomic per-table drops, so an in-flight one may leave any subset of its tables, with
// the database directory present or gone. No MyISAM: its contents after a crash are not a prefix.
import type { Connection } from 'mysql2/promise';
import { type MariaServer, quoteName } from '../src/mariadb/server.js';
import type { Load, LoadResult } from './mariadb-helpers.js';

export type Engine = 'InnoDB' | 'Aria';

export interface TableState {
  /** Column names in ordinal order. */
  columns: string[];
  /** The model only has InnoDB and Aria; readSchema reports whatever information_schema says ('?' for NULL). */
  engine: Engine;
  /** COUNT(*); readSchema reports -1 when the count failed. */
  rows: number;
}

/** database -> table -> state. */
export type Schema = Map<string, Map<string, TableState>>;

/** A statement's effect on the model. 'none' changes nothing the model sees (ALTER ... FORCE, OPTIMIZE). */
export type Effect =
  | { op: 'createDb'; db: string }
  | { op: 'dropDb'; db: string }
  | { op: 'createTable'; db: string; table: string; engine: Engine; columns: string[] }
  | { op: 'insert'; db: string; table: string; rows: number }
  | { op: 'addColumn'; db: string; table: string; column: string }
  | { op: 'truncate'; db: string; table: string }
  | { op: 'rename'; fromDb: string; fromTable: string; toDb: string; toTable: string }
  | { op: 'dropTable'; db: string; table: string }
  | { op: 'none' };

export interface PlannedStatement {
  /** 0 for the setup statement (CREATE DATABASE <prefix>_keep), then 1, 2, ... */
  round: number;
  sql: string;
  effect: Effect;
  /** OPTIMIZE reports problems as result rows, not as an SQL error: the loop checks them. */
  resultRows?: boolean;
}

export interface DdlLogEntry extends PlannedStatement {
  /** Position in the sequence (0-based); the model after k statements applies entries 0..k-1. */
  k: number;
  startMs: number;
  /** Date.now() when the server acknowledged; null while in flight or after an error. */
  endMs: number | null;
  error: string | null;
}

// ---- the statements -------------------------------------------------------------------------------

/** The statements of round i (i >= 1). */
export function roundStatements(prefix: string, i: number): PlannedStatement[] {
  const K = `${prefix}_keep`;
  const D = `${prefix}_${i}`;
  const out: PlannedStatement[] = [];
  const add = (sql: string, effect: Effect, resultRows = false) => out.push({ round: i, sql, effect, ...(resultRows ? { resultRows } : {}) });
  const nT1 = 300 + i, nA = 100 + i, nU = 50 + i, nR = 40 + i, nT2 = 200 + i, nT3 = 10 * i;
  add(`CREATE DATABASE ${D}`, { op: 'createDb', db: D });
  add(`CREATE TABLE ${D}.t (id INT AUTO_INCREMENT PRIMARY KEY, v VARCHAR(200), n INT) ENGINE=InnoDB`,
    { op: 'createTable', db: D, table: 't', engine: 'InnoDB', columns: ['id', 'v', 'n'] });
  add(`INSERT INTO ${D}.t (v, n) SELECT REPEAT('x', 150), seq FROM ${K}.seq_1_to_${nT1}`, { op: 'insert', db: D, table: 't', rows: nT1 });
  add(`CREATE TABLE ${D}.a (id INT PRIMARY KEY, v VARCHAR(100)) ENGINE=Aria TRANSACTIONAL=1`,
    { op: 'createTable', db: D, table: 'a', engine: 'Aria', columns: ['id', 'v'] });
  add(`INSERT INTO ${D}.a (id, v) SELECT seq, REPEAT('a', 80) FROM ${K}.seq_1_to_${nA}`, { op: 'insert', db: D, table: 'a', rows: nA });
  add(`CREATE TABLE ${D}.u (id INT PRIMARY KEY, note VARCHAR(50)) ENGINE=InnoDB`,
    { op: 'createTable', db: D, table: 'u', engine: 'InnoDB', columns: ['id', 'note'] });
  add(`INSERT INTO ${D}.u (id, note) SELECT seq, CONCAT('u', seq) FROM ${K}.seq_1_to_${nU}`, { op: 'insert', db: D, table: 'u', rows: nU });
  add(`CREATE TABLE ${D}.r (id INT PRIMARY KEY, v VARCHAR(60)) ENGINE=Aria TRANSACTIONAL=1`,
    { op: 'createTable', db: D, table: 'r', engine: 'Aria', columns: ['id', 'v'] });
  add(`INSERT INTO ${D}.r (id, v) SELECT seq, REPEAT('r', 50) FROM ${K}.seq_1_to_${nR}`, { op: 'insert', db: D, table: 'r', rows: nR });
  add(`ALTER TABLE ${D}.t FORCE`, { op: 'none' });
  add(`ALTER TABLE ${D}.t ADD COLUMN c${i} INT DEFAULT ${i}`, { op: 'addColumn', db: D, table: 't', column: `c${i}` });
  add(`ALTER TABLE ${D}.a ADD COLUMN w INT NOT NULL DEFAULT 7`, { op: 'addColumn', db: D, table: 'a', column: 'w' });
  add(`TRUNCATE TABLE ${D}.t`, { op: 'truncate', db: D, table: 't' });
  add(`INSERT INTO ${D}.t (v, n) SELECT REPEAT('y', 120), seq FROM ${K}.seq_1_to_${nT2}`, { op: 'insert', db: D, table: 't', rows: nT2 });
  // OPTIMIZE on InnoDB is "recreate + analyze": an ALTER TABLE ... FORCE, atomic. Not OPTIMIZE on Aria:
  // it is a repair in place, not atomic DDL; killed mid-way it leaves the table marked crashed (the next
  // open logs [ERROR] ... error 145, repairs it and leaves a.MAD-<time>.BAK). ALTER ... FORCE is atomic.
  add(`OPTIMIZE TABLE ${D}.t`, { op: 'none' }, true);
  add(`ALTER TABLE ${D}.a FORCE`, { op: 'none' });
  add(`RENAME TABLE ${D}.t TO ${K}.t${i}`, { op: 'rename', fromDb: D, fromTable: 't', toDb: K, toTable: `t${i}` });
  add(`RENAME TABLE ${D}.r TO ${K}.r${i}`, { op: 'rename', fromDb: D, fromTable: 'r', toDb: K, toTable: `r${i}` });
  add(`INSERT INTO ${K}.t${i} (v, n) SELECT 'z', seq FROM ${K}.seq_1_to_${nT3}`, { op: 'insert', db: K, table: `t${i}`, rows: nT3 });
  add(`ALTER TABLE ${K}.r${i} ADD COLUMN k${i} INT DEFAULT ${i}, FORCE`, { op: 'addColumn', db: K, table: `r${i}`, column: `k${i}` });
  if (i > 2) {
    add(`DROP TABLE ${K}.t${i - 2}`, { op: 'dropTable', db: K, table: `t${i - 2}` });
    add(`DROP TABLE ${K}.r${i - 2}`, { op: 'dropTable', db: K, table: `r${i - 2}` });
  }
  // Round i-1's database still holds a (Aria) and u (InnoDB).
  if (i > 1) add(`DROP DATABASE ${prefix}_${i - 1}`, { op: 'dropDb', db: `${prefix}_${i - 1}` });
  return out;
}

/** The endless statement sequence: CREATE DATABASE <prefix>_keep, then round 1, 2, ... */
export function* ddlSchemaStatements(prefix = 'dsm'): Generator<PlannedStatement> {
  yield { round: 0, sql: `CREATE DATABASE ${prefix}_keep`, effect: { op: 'createDb', db: `${prefix}_keep` } };
  for (let i = 1; ; i++) yield* roundStatements(prefix, i);
}

/** The first n statements of the sequence. */
export function planStatements(n: number, prefix = 'dsm'): PlannedStatement[] {
  const out: PlannedStatement[] = [];
  if (n <= 0) return out;
  for (const s of ddlSchemaStatements(prefix)) {
    out.push(s);
    if (out.length >= n) break;
  }
  return out;
}

// ---- the model --------------------------------------------------------------------------------------

export function cloneSchema(s: Schema): Schema {
  return new Map([...s].map(([db, ts]) => [db, new Map([...ts].map(([t, st]) => [t, { ...st, columns: [...st.columns] }]))]));
}

/** Applies one effect (mutates `s`). Throws when the effect does not fit the model: a bug in the plan. */
export function applyEffect(s: Schema, e: Effect): void {
  const db = (name: string) => {
    const d = s.get(name);
    if (!d) throw new Error(`model: no database ${name} for ${JSON.stringify(e)}`);
    return d;
  };
  const table = (d: string, t: string) => {
    const st = db(d).get(t);
    if (!st) throw new Error(`model: no table ${d}.${t} for ${JSON.stringify(e)}`);
    return st;
  };
  switch (e.op) {
    case 'createDb':
      if (s.has(e.db)) throw new Error(`model: database ${e.db} exists`);
      s.set(e.db, new Map());
      break;
    case 'dropDb':
      db(e.db);
      s.delete(e.db);
      break;
    case 'createTable':
      if (db(e.db).has(e.table)) throw new Error(`model: table ${e.db}.${e.table} exists`);
      db(e.db).set(e.table, { columns: [...e.columns], engine: e.engine, rows: 0 });
      break;
    case 'insert':
      table(e.db, e.table).rows += e.rows;
      break;
    case 'addColumn':
      table(e.db, e.table).columns.push(e.column);
      break;
    case 'truncate':
      table(e.db, e.table).rows = 0;
      break;
    case 'rename': {
      const st = table(e.fromDb, e.fromTable);
      if (db(e.toDb).has(e.toTable)) throw new Error(`model: table ${e.toDb}.${e.toTable} exists`);
      db(e.fromDb).delete(e.fromTable);
      db(e.toDb).set(e.toTable, st);
      break;
    }
    case 'dropTable':
      table(e.db, e.table);
      db(e.db).delete(e.table);
      break;
    case 'none':
      break;
  }
}

/** The expected schema after statements 0..k-1 of the log: their effects, whether or not a statement
 *  saw an error. The model is a function of the statement list alone: a correct run has no errors, and
 *  a statement whose connection died (a crash) may or may not have happened, which checkDdlPrefix
 *  covers by trying k and k+1. */
export function schemaAfter(log: readonly PlannedStatement[], k: number): Schema {
  const s: Schema = new Map();
  for (const e of log.slice(0, k)) applyEffect(s, e.effect);
  return s;
}

/** What differs between an actual schema and an expected one (empty when equal). */
export function diffSchemas(actual: Schema, expected: Schema): string[] {
  const out: string[] = [];
  for (const db of [...new Set([...actual.keys(), ...expected.keys()])].sort()) {
    const a = actual.get(db);
    const x = expected.get(db);
    if (!a) {
      out.push(`missing database ${db} (expected tables: ${[...x!.keys()].sort().join(', ') || 'none'})`);
      continue;
    }
    if (!x) {
      out.push(`extra database ${db} (tables: ${[...a.keys()].sort().join(', ') || 'none'})`);
      continue;
    }
    for (const t of [...new Set([...a.keys(), ...x.keys()])].sort()) {
      const at = a.get(t);
      const xt = x.get(t);
      const name = `${db}.${t}`;
      if (!at) out.push(`missing table ${name} (${xt!.engine}, ${xt!.rows} rows)`);
      else if (!xt) out.push(`extra table ${name} (${at.engine}, ${at.rows} rows)`);
      else {
        if (at.columns.join(',') !== xt.columns.join(',')) out.push(`${name}: columns (${at.columns.join(', ')}), expected (${xt.columns.join(', ')})`);
        if (at.engine !== xt.engine) out.push(`${name}: engine ${at.engine}, expected ${xt.engine}`);
        if (at.rows !== xt.rows) out.push(`${name}: ${at.rows < 0 ? 'SELECT COUNT(*) failed' : `${at.rows} rows`}, expected ${xt.rows}`);
      }
    }
  }
  return out;
}

/** A plain object for assert.deepEqual and messages. */
export function schemaToObject(s: Schema): Record<string, Record<string, TableState>> {
  const o: Record<string, Record<string, TableState>> = {};
  for (const db of [...s.keys()].sort()) {
    o[db] = {};
    for (const t of [...s.get(db)!.keys()].sort()) o[db][t] = s.get(db)!.get(t)!;
  }
  return o;
}

export interface DdlPrefixCheck {
  ok: boolean;
  /** The matching k (statements 0..k-1 applied), or the closest candidate when !ok. */
  k: number;
  /** [lo, hi]: lo statements were acknowledged more than slackMs before the cut, hi started before cut + slackMs. */
  candidates: [number, number];
  /** For the closest candidate, what differs (empty when ok). */
  diff: string[];
  /** Set when the match is statement k (a DROP DATABASE in flight at the cut) partly done. */
  partialDropDatabase?: string;
}

/** Is `actual` the model after some k in [lo, hi]? See the file comment for lo, hi and the DROP DATABASE rule. */
export function checkDdlPrefix(actual: Schema, log: readonly DdlLogEntry[], cutAt: number, slackMs = 2): DdlPrefixCheck {
  // One connection runs the statements in order, so acknowledged and started statements are prefixes.
  let lo = 0;
  let hi = 0;
  log.forEach((e, j) => {
    if (e.endMs !== null && e.endMs + slackMs < cutAt) lo = j + 1;
    if (e.startMs < cutAt + slackMs) hi = j + 1;
  });
  hi = Math.max(hi, lo);
  let best: { k: number; diff: string[]; partial?: string } | null = null;
  const consider = (k: number, diff: string[], partial?: string) => {
    if (!best || diff.length < best.diff.length) best = { k, diff, ...(partial ? { partial } : {}) };
  };
  for (let k = lo; k <= hi; k++) {
    const model = schemaAfter(log, k);
    const diff = diffSchemas(actual, model);
    if (diff.length === 0) return { ok: true, k, candidates: [lo, hi], diff };
    consider(k, diff);
    // Statement k (0-based) may have been in flight at the cut: a DROP DATABASE may be partly done.
    const e = log[k];
    if (k < hi && e && e.effect.op === 'dropDb' && model.has(e.effect.db)) {
      const db = e.effect.db;
      const relaxed = cloneSchema(model);
      const have = actual.get(db);
      if (!have) relaxed.delete(db);
      else for (const t of [...relaxed.get(db)!.keys()]) if (!have.has(t)) relaxed.get(db)!.delete(t);
      const d2 = diffSchemas(actual, relaxed);
      if (d2.length === 0) return { ok: true, k, candidates: [lo, hi], diff: d2, partialDropDatabase: db };
      consider(k, d2, db);
    }
  }
  const b = best as { k: number; diff: string[]; partial?: string } | null;
  return {
    ok: false, k: b?.k ?? lo, candidates: [lo, hi], diff: b?.diff ?? ['no candidate'],
    ...(b?.partial ? { partialDropDatabase: b.partial } : {}),
  };
}

// ---- the real schema --------------------------------------------------------------------------------

/** The schema of the databases named `<prefix>_...` (and `<prefix>` itself): information_schema
 *  SCHEMATA, TABLES (base tables, ENGINE), COLUMNS by ORDINAL_POSITION, and COUNT(*) per table. */
export async function readSchema(srv: MariaServer, prefix: string): Promise<Schema> {
  const mine = (db: string) => db === prefix || db.startsWith(`${prefix}_`);
  const c = await srv.connect();
  try {
    const q = async <T>(sql: string): Promise<T[]> => (await c.query(sql))[0] as T[];
    const s: Schema = new Map();
    for (const r of await q<{ db: string }>('SELECT SCHEMA_NAME AS db FROM information_schema.SCHEMATA')) {
      if (mine(r.db)) s.set(r.db, new Map());
    }
    const tables = await q<{ db: string; t: string; engine: string | null }>(
      `SELECT TABLE_SCHEMA AS db, TABLE_NAME AS t, ENGINE AS engine FROM information_schema.TABLES WHERE TABLE_TYPE = 'BASE TABLE'`);
    for (const r of tables) {
      if (!mine(r.db)) continue;
      if (!s.has(r.db)) s.set(r.db, new Map());
      s.get(r.db)!.set(r.t, { columns: [], engine: (r.engine ?? '?') as Engine, rows: -1 });
    }
    const cols = await q<{ db: string; t: string; c: string }>(
      `SELECT TABLE_SCHEMA AS db, TABLE_NAME AS t, COLUMN_NAME AS c FROM information_schema.COLUMNS
        ORDER BY TABLE_SCHEMA, TABLE_NAME, ORDINAL_POSITION`);
    for (const r of cols) s.get(r.db)?.get(r.t)?.columns.push(r.c);
    for (const [db, ts] of s) {
      for (const [t, st] of ts) {
        try {
          const [row] = await q<{ n: number | string }>(`SELECT COUNT(*) AS n FROM ${quoteName(db)}.${quoteName(t)}`);
          st.rows = Number(row.n);
        } catch {
          st.rows = -1;
        }
      }
    }
    return s;
  } finally {
    await c.end().catch(() => {});
  }
}

// ---- the workload -----------------------------------------------------------------------------------

export interface DdlSchemaLoad extends Load {
  /** The statements run so far, in order (the live array: a statement in flight has endMs null). */
  log(): DdlLogEntry[];
  /** Rounds completed. */
  rounds(): number;
}

/** One connection running ddlSchemaStatements(prefix) until stopped (the statement in flight finishes).
 *  count() is the number of statements acknowledged. */
export function ddlSchemaLoop(srv: MariaServer, opts: { prefix?: string } = {}): DdlSchemaLoad {
  const prefix = opts.prefix ?? 'dsm';
  let stopping = false;
  let acked = 0;
  let rounds = 0;
  const log: DdlLogEntry[] = [];
  const errors: string[] = [];
  const done = (async () => {
    let c: Connection;
    try {
      c = await srv.connect();
    } catch (e) {
      errors.push(`ddl-schema: connect: ${(e as Error).message}`);
      return;
    }
    try {
      run: for (let round = 0; ; round++) {
        const stmts = round === 0 ? planStatements(1, prefix) : roundStatements(prefix, round);
        for (const s of stmts) {
          if (stopping) break run;
          const entry: DdlLogEntry = { ...s, k: log.length, startMs: Date.now(), endMs: null, error: null };
          log.push(entry);
          try {
            const [res] = await c.query(s.sql);
            const endMs = Date.now();
            // OPTIMIZE reports failures as result rows, not as an SQL error.
            const bad = s.resultRows
              ? (res as { Msg_type: string; Msg_text: string }[]).filter((r) => r.Msg_type === 'error' ||
                (r.Msg_type === 'status' && r.Msg_text !== 'OK' && !/up to date/i.test(r.Msg_text)))
              : [];
            if (bad.length) throw new Error(bad.map((r) => `${r.Msg_type}: ${r.Msg_text}`).join('; '));
            entry.endMs = endMs;
            acked++;
          } catch (e) {
            entry.error = (e as Error).message;
            errors.push(`ddl-schema #${entry.k} (round ${s.round}): ${s.sql}: ${entry.error}`);
            // A dead connection (the server went away) ends the loop: the statement's outcome is unknown.
            if ((e as { fatal?: boolean }).fatal || errors.length > 20) break run;
          }
        }
        rounds = round;
      }
    } finally {
      await c.end().catch(() => {});
    }
  })().catch((e) => { errors.push(`ddl-schema: ${(e as Error).message}`); });
  return {
    name: 'ddl-schema',
    count: () => acked,
    log: () => log,
    rounds: () => rounds,
    async stop(): Promise<LoadResult> {
      stopping = true;
      await done;
      return { count: acked, errors };
    },
  };
}
