// Shared by test/mariadb-*.test.ts: finding MariaDB (fail under CI=true, skip loudly otherwise),
// a template datadir installed once per test process, and the workloads that run during a
// backup: sysbench oltp_write_only, a bank-transfer workload whose client logs every
// acknowledged COMMIT with its time, a DDL loop, an Aria writer.
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestContext } from 'node:test';
import type { Connection } from 'mysql2/promise';
import { findMariadb, installDatadir, type MariadbInstall, type MariaServer, sleep } from '../src/mariadb/server.js';
import { shimPath } from '../src/lib-path.js';

export const SHIM = process.env.HOTBACKUP_TEST_SHIM || shimPath();

/** MariaDB + sysbench + the shim, or a reason they are missing. */
export function mariadbPrereqs(opts: { sysbench?: boolean } = {}): { install: MariadbInstall | null; missing: string | null } {
  const install = findMariadb();
  const missing: string[] = [];
  if (!install) missing.push('mariadbd (apt-get install mariadb-server mariadb-client)');
  else if (!install.installDb) missing.push('mariadb-install-db (package mariadb-server)');
  if (opts.sysbench && spawnSync('sysbench', ['--version']).status !== 0) missing.push('sysbench (apt-get install sysbench)');
  if (!existsSync(SHIM)) missing.push(`libhotbackup.so (${SHIM}; node scripts/build.mjs)`);
  return { install, missing: missing.length ? missing.join(', ') : null };
}

/** At file load: under CI=true a missing prerequisite throws (the file fails); otherwise a loud warning and a skip reason. */
export function mariadbOrSkip(file: string, opts: { sysbench?: boolean } = {}): { install: MariadbInstall | null; skip: string | false } {
  const { install, missing } = mariadbPrereqs(opts);
  if (!missing) return { install, skip: false };
  const msg = `${file}: missing ${missing}`;
  if (process.env.CI === 'true') throw new Error(`${msg}. CI=true: a MariaDB test that cannot run is a failure.`);
  process.stderr.write(`\n*** SKIPPING the MariaDB tests in ${file}: ${msg} ***\n\n`);
  return { install: null, skip: `MARIADB MISSING: ${missing}` };
}

let template: string | null = null;

/** A fresh datadir at `dir` (a copy of one mariadb-install-db run per test process). */
export function freshDatadir(install: MariadbInstall, dir: string): void {
  if (!template) {
    const t = mkdtempSync(join(tmpdir(), 'hb-maria-template-'));
    process.on('exit', () => rmSync(t, { recursive: true, force: true }));
    installDatadir(install, join(t, 'data'));
    template = join(t, 'data');
  }
  cpSync(template, dir, { recursive: true });
}

export interface Scratch {
  dir: string;
  /** Runs `fn` at the end of the test, before what was deferred earlier (LIFO); errors are logged, not thrown. */
  defer(fn: () => unknown): void;
  /** Call when every assertion passed: the directory is removed; otherwise it is kept as evidence. */
  passed(): void;
}

/** A scratch directory and a LIFO clean-up stack for one test (servers stopped and mounts
 *  unmounted before the directory goes). A failed test keeps its directory and prints it. */
export function scratch(t: TestContext, prefix: string): Scratch {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  const stack: (() => unknown)[] = [];
  let ok = false;
  t.after(async () => {
    for (const fn of stack.reverse()) {
      try {
        await fn();
      } catch (e) {
        process.stderr.write(`clean-up of ${t.name}: ${(e as Error).message}\n`);
      }
    }
    if (!ok || process.env.HOTBACKUP_KEEP_TMP) process.stderr.write(`*** ${t.name}: kept ${dir} for inspection\n`);
    else rmSync(dir, { recursive: true, force: true });
  });
  return { dir, defer: (fn) => stack.push(fn), passed: () => { ok = true; } };
}

// ---- sysbench ---------------------------------------------------------------------------------

export function sysbenchArgs(srv: MariaServer, o: { tables: number; tableSize: number; db?: string }): string[] {
  return ['oltp_write_only', '--db-driver=mysql', `--mysql-socket=${srv.socket}`, '--mysql-user=root',
    `--mysql-db=${o.db ?? 'sbtest'}`, `--tables=${o.tables}`, `--table-size=${o.tableSize}`];
}

export async function sysbenchPrepare(srv: MariaServer, o: { tables: number; tableSize: number; db?: string }): Promise<void> {
  await srv.query(`CREATE DATABASE IF NOT EXISTS ${o.db ?? 'sbtest'}`);
  const r = spawnSync('sysbench', [...sysbenchArgs(srv, o), 'prepare'], { encoding: 'utf8', timeout: 300_000 });
  assert.equal(r.status, 0, `sysbench prepare failed:\n${r.stdout}\n${r.stderr}`);
}

export interface LoadResult {
  /** Transactions (or operations) acknowledged. */
  count: number;
  /** Every error a client saw (a correct backup never makes one). */
  errors: string[];
}

export interface Load {
  name: string;
  /** Acknowledged so far. */
  count(): number;
  stop(): Promise<LoadResult>;
}

/** sysbench oltp_write_only in back-to-back runs of `runSeconds` until stopped; each run must exit 0. */
export function sysbenchLoop(srv: MariaServer, o: { tables: number; tableSize: number; threads: number; runSeconds?: number; db?: string }): Load {
  let stopping = false;
  let count = 0;
  const errors: string[] = [];
  const done = (async () => {
    while (!stopping) {
      const child = spawn('sysbench', [...sysbenchArgs(srv, o), `--threads=${o.threads}`, `--time=${o.runSeconds ?? 2}`,
        '--events=0', '--rate=0', 'run'], { stdio: ['ignore', 'pipe', 'pipe'] });
      let out = '';
      child.stdout.on('data', (d) => (out += d));
      child.stderr.on('data', (d) => (out += d));
      const code = await new Promise<number | null>((r) => child.on('exit', (c) => r(c)));
      const m = /transactions:\s+(\d+)/.exec(out);
      if (m) count += Number(m[1]);
      if (code !== 0 || /FATAL/.test(out)) {
        errors.push(`sysbench exit ${code}: ${out.split('\n').filter((l) => /FATAL|rror/.test(l)).slice(0, 5).join(' | ') || out.slice(-500)}`);
      }
    }
  })();
  return {
    name: 'sysbench',
    count: () => count,
    async stop() {
      stopping = true;
      await done;
      return { count, errors };
    },
  };
}

// ---- bank transfers ------------------------------------------------------------------------------

export interface Transfer {
  id: number;
  from: number;
  to: number;
  amount: number;
  startMs: number;
  endMs: number;
}

export const BANK_INITIAL = 1000;

export async function bankPrepare(srv: MariaServer, accounts: number): Promise<void> {
  const c = await srv.connect();
  try {
    await c.query('CREATE DATABASE bank');
    await c.query('CREATE TABLE bank.accounts (id INT PRIMARY KEY, balance BIGINT NOT NULL) ENGINE=InnoDB');
    await c.query(`CREATE TABLE bank.ledger (id BIGINT PRIMARY KEY, src INT NOT NULL, dst INT NOT NULL, amount INT NOT NULL,
      note VARCHAR(64), KEY (src), KEY (dst)) ENGINE=InnoDB`);
    const values = Array.from({ length: accounts }, (_, i) => `(${i + 1}, ${BANK_INITIAL})`).join(',');
    await c.query(`INSERT INTO bank.accounts VALUES ${values}`);
  } finally {
    await c.end();
  }
}

function rng(seed: number): () => number {
  let s = seed >>> 0 || 1;
  return () => {
    s ^= s << 13; s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5; s >>>= 0;
    return s / 0x100000000;
  };
}

export interface BankLoad extends Load {
  transfers(): Transfer[];
}

/** `clients` connections each doing transfers in transactions; every acknowledged COMMIT is logged with its times. */
export function bankLoop(srv: MariaServer, o: { clients: number; accounts: number; seed: number }): BankLoad {
  let stopping = false;
  const log: Transfer[] = [];
  const errors: string[] = [];
  const workers = Array.from({ length: o.clients }, (_, k) => (async () => {
    const rand = rng(o.seed * 1000 + k + 1);
    let c: Connection;
    try {
      c = await srv.connect();
    } catch (e) {
      errors.push(`bank client ${k}: connect: ${(e as Error).message}`);
      return;
    }
    let n = 0;
    try {
      while (!stopping) {
        const id = (k + 1) * 1_000_000_000 + ++n;
        let from = 1 + Math.floor(rand() * o.accounts);
        let to = 1 + Math.floor(rand() * (o.accounts - 1));
        if (to >= from) to++;
        const amount = 1 + Math.floor(rand() * 50);
        const startMs = Date.now();
        try {
          await c.query('BEGIN');
          const [lo, hi] = from < to ? [from, to] : [to, from];
          await c.query('SELECT id, balance FROM bank.accounts WHERE id IN (?, ?) ORDER BY id FOR UPDATE', [lo, hi]);
          await c.query('UPDATE bank.accounts SET balance = balance - ? WHERE id = ?', [amount, from]);
          await c.query('UPDATE bank.accounts SET balance = balance + ? WHERE id = ?', [amount, to]);
          await c.query('INSERT INTO bank.ledger (id, src, dst, amount, note) VALUES (?, ?, ?, ?, ?)', [id, from, to, amount, `t${startMs}`]);
          await c.query('COMMIT');
          log.push({ id, from, to, amount, startMs, endMs: Date.now() });
        } catch (e) {
          errors.push(`bank client ${k} transfer ${id}: ${(e as Error).message}`);
          await c.query('ROLLBACK').catch(() => {});
          if (errors.length > 20) break;
        }
        [from, to] = [to, from];
      }
    } finally {
      await c.end().catch(() => {});
    }
  })());
  return {
    name: 'bank',
    count: () => log.length,
    transfers: () => log,
    async stop() {
      stopping = true;
      await Promise.all(workers);
      return { count: log.length, errors };
    },
  };
}

export interface BankCheck {
  sumOk: boolean;
  perAccountOk: boolean;
  badAccounts: string[];
  ledgerRows: number;
  missingAcknowledged: number[];
  presentStartedAfterCut: number[];
  ackedBeforeCut: number;
  startedAfterCut: number;
}

/** Checks the restored bank against the client's log and the cut. */
export async function checkBank(srv: MariaServer, accounts: number, log: Transfer[], cutAt: number, slackMs = 2): Promise<BankCheck> {
  const acc = await srv.query<{ id: number; balance: string | number }>('SELECT id, balance FROM bank.accounts ORDER BY id');
  const ledger = await srv.query<{ id: string | number; src: number; dst: number; amount: number }>('SELECT id, src, dst, amount FROM bank.ledger');
  const expected = new Map<number, number>();
  for (let i = 1; i <= accounts; i++) expected.set(i, BANK_INITIAL);
  for (const r of ledger) {
    expected.set(r.src, expected.get(r.src)! - r.amount);
    expected.set(r.dst, expected.get(r.dst)! + r.amount);
  }
  const badAccounts: string[] = [];
  let sum = 0;
  for (const a of acc) {
    sum += Number(a.balance);
    if (Number(a.balance) !== expected.get(a.id)) badAccounts.push(`account ${a.id}: balance ${a.balance}, ledger says ${expected.get(a.id)}`);
  }
  const present = new Set(ledger.map((r) => Number(r.id)));
  const acked = log.filter((t) => t.endMs + slackMs < cutAt);
  const after = log.filter((t) => t.startMs > cutAt + slackMs);
  return {
    sumOk: sum === accounts * BANK_INITIAL && acc.length === accounts,
    perAccountOk: badAccounts.length === 0,
    badAccounts: badAccounts.slice(0, 10),
    ledgerRows: ledger.length,
    missingAcknowledged: acked.filter((t) => !present.has(t.id)).map((t) => t.id),
    presentStartedAfterCut: after.filter((t) => present.has(t.id)).map((t) => t.id),
    ackedBeforeCut: acked.length,
    startedAfterCut: after.length,
  };
}

// ---- DDL ----------------------------------------------------------------------------------------------

/** CREATE / ALTER FORCE / ADD COLUMN / TRUNCATE / OPTIMIZE / RENAME across databases / DROP TABLE /
 *  CREATE and DROP DATABASE / FLUSH LOGS, in a loop. */
export function ddlLoop(srv: MariaServer): Load {
  let stopping = false;
  let iterations = 0;
  const errors: string[] = [];
  const done = (async () => {
    const c = await srv.connect();
    try {
      await c.query('CREATE DATABASE IF NOT EXISTS ddl_keep');
      for (let i = 1; !stopping; i++) {
        const db = `ddl_${i}`;
        const stmts = [
          `CREATE DATABASE ${db}`,
          `CREATE TABLE ${db}.t (id INT AUTO_INCREMENT PRIMARY KEY, v VARCHAR(200), n INT) ENGINE=InnoDB`,
          `INSERT INTO ${db}.t (v, n) SELECT REPEAT('x', 150), seq FROM ddl_keep.seq_1_to_300`,
          `ALTER TABLE ${db}.t FORCE`,
          `ALTER TABLE ${db}.t ADD COLUMN c${i} INT DEFAULT ${i}`,
          `CREATE TABLE ${db}.m (id INT PRIMARY KEY, v VARCHAR(100)) ENGINE=MyISAM`,
          `INSERT INTO ${db}.m SELECT seq, REPEAT('m', 80) FROM ddl_keep.seq_1_to_100`,
          `TRUNCATE TABLE ${db}.t`,
          `INSERT INTO ${db}.t (v, n) SELECT REPEAT('y', 120), seq FROM ddl_keep.seq_1_to_200`,
          `OPTIMIZE TABLE ${db}.t`,
          `RENAME TABLE ${db}.t TO ddl_keep.t${i}`,
          `ALTER TABLE ddl_keep.t${i} ADD INDEX (n), ALGORITHM=INPLACE`,
          ...(i > 2 ? [`DROP TABLE IF EXISTS ddl_keep.t${i - 2}`] : []),
          ...(i > 1 ? [`DROP DATABASE IF EXISTS ddl_${i - 1}`] : []),
          'FLUSH BINARY LOGS',
        ];
        for (const s of stmts) {
          if (stopping && s.startsWith('CREATE DATABASE')) break;
          try {
            await c.query(s);
          } catch (e) {
            errors.push(`ddl ${i}: ${s}: ${(e as Error).message}`);
          }
        }
        iterations++;
      }
    } finally {
      await c.end().catch(() => {});
    }
  })().catch((e) => { errors.push(`ddl: ${(e as Error).message}`); });
  return {
    name: 'ddl',
    count: () => iterations,
    async stop() {
      stopping = true;
      await done;
      return { count: iterations, errors };
    },
  };
}

// ---- Aria ----------------------------------------------------------------------------------------------

export interface AriaLoad extends Load {
  acked(): { id: number; endMs: number }[];
}

/** One client inserting rows 1, 2, 3, ... into an Aria (transactional) table, and updating a few. */
export function ariaLoop(srv: MariaServer): AriaLoad {
  let stopping = false;
  const acked: { id: number; endMs: number }[] = [];
  const errors: string[] = [];
  const done = (async () => {
    const c = await srv.connect();
    try {
      await c.query('CREATE DATABASE IF NOT EXISTS aria');
      await c.query('CREATE TABLE IF NOT EXISTS aria.t (id INT PRIMARY KEY, v VARCHAR(100), u INT NOT NULL DEFAULT 0) ENGINE=Aria TRANSACTIONAL=1');
      for (let id = 1; !stopping; id++) {
        try {
          await c.query('INSERT INTO aria.t (id, v) VALUES (?, ?)', [id, `row ${id} ${'a'.repeat(60)}`]);
          if (id % 5 === 0) await c.query('UPDATE aria.t SET u = u + 1 WHERE id = ?', [Math.ceil(id / 2)]);
          acked.push({ id, endMs: Date.now() });
        } catch (e) {
          errors.push(`aria insert ${id}: ${(e as Error).message}`);
          if (errors.length > 20) break;
        }
      }
    } finally {
      await c.end().catch(() => {});
    }
  })().catch((e) => { errors.push(`aria: ${(e as Error).message}`); });
  return {
    name: 'aria',
    count: () => acked.length,
    acked: () => acked,
    async stop() {
      stopping = true;
      await done;
      return { count: acked.length, errors };
    },
  };
}

export async function waitUntil(cond: () => boolean | Promise<boolean>, what: string, timeoutMs = 120_000): Promise<void> {
  const t0 = Date.now();
  while (!(await cond())) {
    if (Date.now() - t0 > timeoutMs) throw new Error(`timed out waiting for ${what}`);
    await sleep(50);
  }
}
