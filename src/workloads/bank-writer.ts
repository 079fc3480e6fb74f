// The SQLite bank-transfer writer: a program meant to run under the shim (see bank.ts).
//
//   node dist/workloads/bank-writer.js --db PATH --commit-log PATH --journal wal|delete
//        [--accounts N] [--seed N] [--initial N] [--max-tps N] [--synchronous off|normal|full]
//        [--maintenance-every N]
//
// It creates the database (tables meta, accounts, transfers, ledger), then moves money between
// accounts forever, one transfer per transaction, until SIGTERM or SIGINT. Every transfer
// debits one account, credits another and appends two ledger rows, so at any commit boundary:
//   sum(balance) = accounts × initial, and each balance = initial + sum(its ledger amounts).
// Transfer ids (txid) are 1, 2, 3, ... in commit order (one writer, one transaction at a time).
//
// After each COMMIT returns, one line `<txid> <start_ms> <end_ms>\n` is appended to the commit
// log (one write(2) on an O_APPEND fd; the log must live outside the database directory).
// start_ms is taken before BEGIN, end_ms after COMMIT returned, both Unix epoch milliseconds
// with fractions (see nowMs()). A line in the log means "acknowledged"; its absence means
// nothing (the transaction may or may not have committed).
//
// Every M transfers (--maintenance-every, default 500) a maintenance transaction drops old memos
// and runs `PRAGMA incremental_vacuum` (the file shrinks: ftruncate); every 2M a DDL transaction
// replaces the table `snapshot_<txid>` (a copy of all balances, CREATE TABLE ... AS SELECT,
// DROP TABLE of the previous one, recorded in meta.last_snapshot); every 6M a full VACUUM
// rewrites the database; in WAL mode a `wal_checkpoint(TRUNCATE)` runs every 4M. So the files
// see pwrite, growth, truncation, schema changes, journal create/unlink and checkpoints while a
// backup copies them.
//
// stdout: one JSON line `{"event":"ready",...}` once the schema and accounts are committed,
// one `{"event":"stopped",...}` at a clean exit. Errors go to stderr, exit code 1.
import Database from 'better-sqlite3';
import { closeSync, existsSync, fsyncSync, openSync, writeSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { parseArgs } from 'node:util';

type Journal = 'wal' | 'delete';

interface Options {
  db: string;
  commitLog: string;
  journal: Journal;
  accounts: number;
  seed: number;
  initial: number;
  maxTps: number;
  synchronous: string | null;
  maintenanceEvery: number;
}

function fail(msg: string): never {
  process.stderr.write(`bank-writer: ${msg}\n`);
  process.exit(1);
}

function intArg(v: string | undefined, name: string, dflt: number, min: number): number {
  if (v === undefined) return dflt;
  if (!/^\d+$/.test(v)) fail(`--${name} must be a non-negative integer, got ${JSON.stringify(v)}`);
  const n = Number(v);
  if (!Number.isSafeInteger(n) || n < min) fail(`--${name} must be an integer >= ${min}, got ${v}`);
  return n;
}

function parseOptions(argv: string[]): Options {
  const { values } = parseArgs({
    args: argv,
    options: {
      db: { type: 'string' },
      'commit-log': { type: 'string' },
      journal: { type: 'string' },
      accounts: { type: 'string' },
      seed: { type: 'string' },
      initial: { type: 'string' },
      'max-tps': { type: 'string' },
      synchronous: { type: 'string' },
      'maintenance-every': { type: 'string' },
    },
    strict: true,
    allowPositionals: false,
  });
  if (!values.db) fail('--db PATH is required');
  if (!values['commit-log']) fail('--commit-log PATH is required');
  const journal = values.journal ?? 'wal';
  if (journal !== 'wal' && journal !== 'delete') fail(`--journal must be wal or delete, got ${JSON.stringify(journal)}`);
  const sync = values.synchronous ?? null;
  if (sync !== null && !['off', 'normal', 'full', 'extra'].includes(sync)) {
    fail(`--synchronous must be off, normal, full or extra, got ${JSON.stringify(sync)}`);
  }
  const db = resolve(values.db);
  const commitLog = resolve(values['commit-log']);
  const dbDir = dirname(db);
  if (commitLog === dbDir || commitLog.startsWith(dbDir + '/')) {
    fail(`the commit log ${commitLog} must be outside the database directory ${dbDir}`);
  }
  return {
    db,
    commitLog,
    journal,
    accounts: intArg(values.accounts, 'accounts', 200, 2),
    seed: intArg(values.seed, 'seed', 1, 0),
    initial: intArg(values.initial, 'initial', 1_000_000, 1),
    maxTps: intArg(values['max-tps'], 'max-tps', 0, 0),
    synchronous: sync,
    maintenanceEvery: intArg(values['maintenance-every'], 'maintenance-every', 500, 1),
  };
}

/**
 * Unix epoch milliseconds with a fractional part. performance.timeOrigin + performance.now()
 * has sub-millisecond resolution but runs on the monotonic clock from process start; it is
 * clamped into [Date.now(), Date.now() + 1) so it never strays from the real-time clock (which
 * the shim's cut_at uses) by a millisecond or more, whatever the clock adjustments since start.
 */
function nowMs(): number {
  const wall = Date.now();
  const fine = performance.timeOrigin + performance.now();
  if (fine < wall) return wall;
  if (fine >= wall + 1) return wall + 0.999;
  return fine;
}

/** mulberry32: a small deterministic PRNG (the run is reproducible from --seed). */
function prng(seed: number): () => number {
  let a = (seed ^ 0x9e3779b9) >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const SCHEMA = `
CREATE TABLE meta(key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;
CREATE TABLE accounts(
  id INTEGER PRIMARY KEY,
  owner TEXT NOT NULL,
  balance INTEGER NOT NULL CHECK (balance >= 0)
);
CREATE TABLE transfers(
  txid INTEGER PRIMARY KEY,
  from_id INTEGER NOT NULL REFERENCES accounts(id),
  to_id INTEGER NOT NULL REFERENCES accounts(id),
  amount INTEGER NOT NULL CHECK (amount > 0),
  started_at REAL NOT NULL,
  memo BLOB
);
CREATE TABLE ledger(
  id INTEGER PRIMARY KEY,
  txid INTEGER NOT NULL REFERENCES transfers(txid),
  account_id INTEGER NOT NULL REFERENCES accounts(id),
  amount INTEGER NOT NULL
);
CREATE INDEX ledger_by_account ON ledger(account_id);
CREATE INDEX ledger_by_txid ON ledger(txid);
`;

function main(): void {
  const o = parseOptions(process.argv.slice(2));
  const fresh = !existsSync(o.db);
  const db = new Database(o.db);
  let stopping = false;
  const onSignal = () => {
    stopping = true;
  };
  process.on('SIGTERM', onSignal);
  process.on('SIGINT', onSignal);

  if (fresh) {
    // auto_vacuum must be chosen before the first table exists.
    db.pragma('auto_vacuum = INCREMENTAL');
  }
  const mode = String(db.pragma(`journal_mode = ${o.journal.toUpperCase()}`, { simple: true })).toLowerCase();
  if (mode !== o.journal) fail(`SQLite refused journal_mode=${o.journal} (it says ${mode})`);
  if (o.synchronous) db.pragma(`synchronous = ${o.synchronous.toUpperCase()}`);
  db.pragma('foreign_keys = ON');

  let accounts: number;
  let initial: number;
  if (fresh) {
    accounts = o.accounts;
    initial = o.initial;
    db.transaction(() => {
      db.exec(SCHEMA);
      const meta = db.prepare('INSERT INTO meta(key, value) VALUES (?, ?)');
      meta.run('accounts', String(accounts));
      meta.run('initial_balance', String(initial));
      meta.run('seed', String(o.seed));
      meta.run('journal', o.journal);
      meta.run('created_at', String(Date.now()));
      const acct = db.prepare('INSERT INTO accounts(id, owner, balance) VALUES (?, ?, ?)');
      for (let id = 1; id <= accounts; id++) acct.run(id, `owner-${String(id).padStart(5, '0')}`, initial);
    }).immediate();
  } else {
    const get = db.prepare<[string], { value: string }>('SELECT value FROM meta WHERE key = ?');
    accounts = Number(get.get('accounts')?.value);
    initial = Number(get.get('initial_balance')?.value);
    if (!Number.isSafeInteger(accounts) || !Number.isSafeInteger(initial)) {
      fail(`${o.db} exists but is not a bank database (no accounts/initial_balance in meta)`);
    }
  }

  const balanceOf = db.prepare<[number], { balance: number }>('SELECT balance FROM accounts WHERE id = ?');
  const move = db.prepare<[number, number]>('UPDATE accounts SET balance = balance + ? WHERE id = ?');
  const addTransfer = db.prepare<[number, number, number, number, number, Buffer]>(
    'INSERT INTO transfers(txid, from_id, to_id, amount, started_at, memo) VALUES (?, ?, ?, ?, ?, ?)',
  );
  const addLedger = db.prepare<[number, number, number]>('INSERT INTO ledger(txid, account_id, amount) VALUES (?, ?, ?)');
  const dropMemos = db.prepare<[number]>('UPDATE transfers SET memo = NULL WHERE txid <= ? AND memo IS NOT NULL');
  const lastTxid =
    (db.prepare<[], { m: number | null }>('SELECT max(txid) AS m FROM transfers').get()?.m ?? 0);

  const rand = prng(o.seed * 1_000_003 + lastTxid);
  const randInt = (n: number) => Math.floor(rand() * n);

  /** One transfer in one transaction; returns false if the chosen payer was broke (nothing written). */
  const transfer = db.transaction((txid: number, startedAt: number): boolean => {
    let from = 1 + randInt(accounts);
    let to = 1 + randInt(accounts - 1);
    if (to >= from) to++;
    let fromBal = balanceOf.get(from)!.balance;
    if (fromBal === 0) {
      [from, to] = [to, from];
      fromBal = balanceOf.get(from)!.balance;
      if (fromBal === 0) return false;
    }
    const amount = 1 + randInt(Math.min(fromBal, 5000));
    const memo = Buffer.alloc(64 + randInt(256));
    for (let i = 0; i < memo.length; i++) memo[i] = 97 + ((txid + i * 7) % 26);
    move.run(-amount, from);
    move.run(amount, to);
    addTransfer.run(txid, from, to, amount, startedAt, memo);
    addLedger.run(txid, from, -amount);
    addLedger.run(txid, to, amount);
    return true;
  });

  const maintenance = db.transaction((txid: number) => {
    dropMemos.run(txid - 2 * o.maintenanceEvery);
  });
  const getMeta = db.prepare<[string], { value: string }>('SELECT value FROM meta WHERE key = ?');
  const setMeta = db.prepare<[string, string]>('INSERT OR REPLACE INTO meta(key, value) VALUES (?, ?)');
  const snapshot = db.transaction((txid: number) => {
    const prev = getMeta.get('last_snapshot')?.value;
    const name = `snapshot_${txid}`;
    db.exec(`CREATE TABLE ${name} AS SELECT id, balance FROM accounts`);
    if (prev && /^snapshot_\d+$/.test(prev)) db.exec(`DROP TABLE IF EXISTS ${prev}`);
    setMeta.run('last_snapshot', name);
  });

  const logFd = openSync(o.commitLog, 'a', 0o644);
  let txid = lastTxid;
  let committed = 0;
  const startedRun = Date.now();

  process.stdout.write(
    JSON.stringify({
      event: 'ready',
      pid: process.pid,
      db: o.db,
      commit_log: o.commitLog,
      journal: o.journal,
      accounts,
      initial_balance: initial,
      next_txid: txid + 1,
    }) + '\n',
  );

  const sliceMs = 20;
  const step = () => {
    const sliceStart = Date.now();
    while (!stopping && Date.now() - sliceStart < sliceMs) {
      if (o.maxTps > 0 && committed >= ((Date.now() - startedRun) / 1000) * o.maxTps) break;
      const next = txid + 1;
      const start = nowMs();
      if (!transfer.immediate(next, start)) continue;
      const end = nowMs();
      txid = next;
      committed++;
      writeSync(logFd, `${txid} ${start.toFixed(3)} ${end.toFixed(3)}\n`);
      const m = o.maintenanceEvery;
      if (txid % m === 0) {
        maintenance.immediate(txid);
        db.pragma('incremental_vacuum');
      }
      if (txid % (2 * m) === 0) snapshot.immediate(txid);
      if (txid % (6 * m) === 0) db.exec('VACUUM');
      if (o.journal === 'wal' && txid % (4 * m) === 0) db.pragma('wal_checkpoint(TRUNCATE)');
    }
    if (stopping) {
      finish();
      return;
    }
    // Yield to the event loop so signals are delivered; pace when --max-tps asks for it.
    if (o.maxTps > 0) setTimeout(step, 5);
    else setImmediate(step);
  };

  const finish = () => {
    fsyncSync(logFd);
    closeSync(logFd);
    db.close();
    process.stdout.write(JSON.stringify({ event: 'stopped', last_txid: txid, committed }) + '\n');
    process.exitCode = 0;
  };

  step();
}

try {
  main();
} catch (e) {
  fail((e as Error).stack ?? String(e));
}
