// The SQLite bank-transfer workload: starts bank-writer under the shim and checks a backup of
// its database against the writer's commit log. Used by test/real-sqlite.test.ts and by
// `hotbackup demo`.
//
// What a correct backup of the database directory must satisfy (checkBankBackup):
//   - SQLite opens it (normal crash recovery: WAL replay or hot-journal rollback) and
//     `PRAGMA integrity_check` says ok;
//   - the bank invariant holds: sum(balance) = accounts × initial, each balance = initial +
//     sum(its ledger rows), each transfer has exactly its two ledger rows, the one balance
//     snapshot table named in meta exists and totals the same (no other one is left);
//   - the transfers in it are exactly txids 1..K for some K: a prefix of the commit order,
//     since the backup is the database at one instant;
//   - every transfer acknowledged (COMMIT returned) before the cut is in it;
//   - no transfer that started after the cut is in it.
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { rawRequest } from '../client.js';
import { openSqlite, type SqliteDatabase } from '../sqlite.js';

export type JournalMode = 'wal' | 'delete';

export interface StartBankWriterOptions {
  /** Directory of the database: created if missing; the directory to back up. Absolute or relative. */
  dbDir: string;
  /** SQLite journal mode: 'wal' or 'delete' (rollback journal). */
  journal: JournalMode;
  /** Where the commit log goes; must be outside dbDir. Default: `<dbDir>.commits` (a sibling). */
  commitLogPath?: string;
  /** Database file name inside dbDir. Default `bank.db`. */
  dbFileName?: string;
  /** libhotbackup.so to preload; null or absent runs the writer without the shim. */
  shimPath?: string | null;
  /** Libraries to preload before the shim (e.g. libasan.so for a sanitizer build of it). */
  preloadBefore?: string[];
  /** HOTBACKUP_SOCKET for the shim; required when shimPath is given. */
  socketPath?: string;
  /** Start the writer with HOTBACKUP_TEST_HOOKS=1 (enables the test_* requests). */
  testHooks?: boolean;
  /** Number of accounts (default 200) and the PRNG seed (default 1). */
  accounts?: number;
  seed?: number;
  /** Cap on transfers per second; 0 or absent = as fast as it goes. */
  maxTps?: number;
  /**
   * Maintenance period M in transfers (default 500): memo clean-up + incremental_vacuum every M,
   * a new balance-snapshot table (DDL) every 2M, VACUUM every 6M, WAL checkpoint(TRUNCATE) every 4M.
   */
  maintenanceEvery?: number;
  /** PRAGMA synchronous; absent = SQLite's default for the mode. */
  synchronous?: 'off' | 'normal' | 'full' | 'extra';
  /** Extra environment for the writer (added to process.env). */
  env?: Record<string, string | undefined>;
  /** How long to wait for the writer's ready line and, with the shim, for its socket (default 30 s). */
  readyTimeoutMs?: number;
}

export interface BankWriterExit {
  code: number | null;
  signal: NodeJS.Signals | null;
  /** The txid of the last acknowledged transfer, from the writer's `stopped` line (null if none). */
  lastTxid: number | null;
}

export interface BankWriter {
  readonly child: ChildProcess;
  readonly pid: number;
  readonly dbDir: string;
  readonly dbPath: string;
  readonly commitLogPath: string;
  readonly socketPath: string | null;
  /** Number of transfers acknowledged so far (lines in the commit log). */
  acknowledged(): number;
  /** Resolves once at least n transfers are acknowledged; rejects if the writer exits first or after timeoutMs. */
  waitForAcknowledged(n: number, timeoutMs?: number): Promise<number>;
  /** SIGTERM, then waits for the exit; rejects (with the writer's stderr) unless it exits 0. */
  stop(timeoutMs?: number): Promise<BankWriterExit>;
  /** SIGKILL if still running (for cleanup paths). */
  kill(): void;
  /** The writer's stderr so far (last 64 KiB). */
  stderr(): string;
  /** True once the writer process has exited. */
  exited(): boolean;
}

/** One line of the commit log. */
export interface CommitRecord {
  txid: number;
  /** Unix epoch ms (fractional) taken before BEGIN. */
  startMs: number;
  /** Unix epoch ms (fractional) taken after COMMIT returned. */
  endMs: number;
}

export interface BankCheckOptions {
  /**
   * Width of the uncertainty around cutAtMs, in ms (default 2): a transfer counts as
   * acknowledged before the cut when endMs < cutAtMs - clockSlackMs, and as started after the
   * cut when startMs > cutAtMs + clockSlackMs. Covers the shim's cut_at (whole milliseconds,
   * rounded down) and the writer's timestamps (within 1 ms of the real-time clock).
   */
  clockSlackMs?: number;
}

export interface BankCheckResult {
  /** Every check below passed. */
  ok: boolean;
  /** Why not, one sentence each (empty when ok). */
  problems: string[];
  /** `PRAGMA integrity_check` output joined with '; ' ('ok' when fine), or the open error. */
  integrity: string;
  integrityOk: boolean;
  /** The bank invariant (balances, ledger, transfers agree). */
  invariantOk: boolean;
  invariantWhy: string | null;
  accounts: number;
  /** The balance-snapshot table the backup's meta names (null before the first one). */
  lastSnapshot: string | null;
  totalBalance: number;
  expectedTotal: number;
  /** Transfers in the backup, and the largest txid among them (0 if none). */
  txInBackup: number;
  maxTxidInBackup: number;
  /** The backup's txids are exactly 1..maxTxidInBackup (a prefix of the commit order). */
  isPrefix: boolean;
  /** Up to 20 txids absent from 1..maxTxidInBackup (holes that break the prefix). */
  prefixHoles: number[];
  /** Lines in the commit log; those acknowledged before the cut. */
  acknowledged: number;
  acknowledgedBeforeCut: number;
  /** Acknowledged before the cut but not in the backup (must be empty). */
  missingAcknowledged: number[];
  /** In the backup although they started after the cut (must be empty). */
  startedAfterCut: number[];
  /** True when startedAfterCut is non-empty. */
  hasTxStartedAfterCut: boolean;
  /** Transfers in the backup that were not (yet) acknowledged in the commit log. */
  unacknowledgedInBackup: number;
  /** The cut, and the slack used around it. */
  cutAtMs: number;
  clockSlackMs: number;
}

const here = fileURLToPath(import.meta.url);
const runningFromSource = here.endsWith('.ts');

/** How to run bank-writer: the compiled .js beside this file, or the .ts through tsx when running from src/. */
export function bankWriterCommand(): { command: string; args: string[] } {
  const dir = dirname(here);
  if (runningFromSource) {
    const tsx = import.meta.resolve('tsx');
    return { command: process.execPath, args: ['--import', tsx, join(dir, 'bank-writer.ts')] };
  }
  return { command: process.execPath, args: [join(dir, 'bank-writer.js')] };
}

/** Parses a commit log; a torn last line (no newline yet) is ignored. */
export function readCommitLog(commitLogPath: string): CommitRecord[] {
  let text: string;
  try {
    text = readFileSync(commitLogPath, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw e;
  }
  const out: CommitRecord[] = [];
  const lines = text.split('\n');
  lines.pop(); // the part after the last newline: empty or torn
  for (const [i, line] of lines.entries()) {
    const m = /^(\d+) (\d+(?:\.\d+)?) (\d+(?:\.\d+)?)$/.exec(line);
    if (!m) throw new Error(`${commitLogPath}:${i + 1}: not a commit record: ${JSON.stringify(line.slice(0, 80))}`);
    out.push({ txid: Number(m[1]), startMs: Number(m[2]), endMs: Number(m[3]) });
  }
  return out;
}

function countLines(path: string): number {
  let buf: Buffer;
  try {
    buf = readFileSync(path);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return 0;
    throw e;
  }
  let n = 0;
  for (let i = buf.indexOf(10); i >= 0; i = buf.indexOf(10, i + 1)) n++;
  return n;
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/**
 * Starts bank-writer (under the shim when shimPath is given) and resolves once the database
 * exists with its accounts and, with the shim, once the control socket answers a status request.
 */
export async function startBankWriter(opts: StartBankWriterOptions): Promise<BankWriter> {
  const dbDir = resolve(opts.dbDir);
  const dbPath = join(dbDir, opts.dbFileName ?? 'bank.db');
  const commitLogPath = resolve(opts.commitLogPath ?? `${dbDir}.commits`);
  if (commitLogPath === dbDir || commitLogPath.startsWith(dbDir + '/')) {
    throw new Error(`the commit log ${commitLogPath} must be outside the database directory ${dbDir}`);
  }
  if (opts.shimPath && !opts.socketPath) throw new Error('startBankWriter: socketPath is required with shimPath');
  if (opts.shimPath && !existsSync(opts.shimPath)) throw new Error(`startBankWriter: no shim at ${opts.shimPath}`);
  mkdirSync(dbDir, { recursive: true });
  mkdirSync(dirname(commitLogPath), { recursive: true });
  const readyTimeoutMs = opts.readyTimeoutMs ?? 30_000;

  const env: Record<string, string | undefined> = { ...process.env, ...opts.env };
  // Never let a shim preloaded into us leak into the writer by accident, and vice versa.
  delete env.LD_PRELOAD;
  delete env.HOTBACKUP_SERVED_PID;
  if (opts.shimPath) {
    env.LD_PRELOAD = [...(opts.preloadBefore ?? []), resolve(opts.shimPath)].join(':');
    env.HOTBACKUP_SOCKET = resolve(opts.socketPath!);
    env.HOTBACKUP_SERVE = 'node';
    if (opts.testHooks) env.HOTBACKUP_TEST_HOOKS = '1';
  }
  const { command, args } = bankWriterCommand();
  args.push('--db', dbPath, '--commit-log', commitLogPath, '--journal', opts.journal);
  if (opts.accounts !== undefined) args.push('--accounts', String(opts.accounts));
  if (opts.seed !== undefined) args.push('--seed', String(opts.seed));
  if (opts.maxTps !== undefined) args.push('--max-tps', String(opts.maxTps));
  if (opts.synchronous !== undefined) args.push('--synchronous', opts.synchronous);
  if (opts.maintenanceEvery !== undefined) args.push('--maintenance-every', String(opts.maintenanceEvery));

  const child = spawn(command, args, { cwd: dbDir, env, stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  let stdoutBuf = '';
  let ready = false;
  let lastTxid: number | null = null;
  let exitInfo: { code: number | null; signal: NodeJS.Signals | null } | null = null;
  const exitWaiters: Array<() => void> = [];
  const readyWaiters: Array<() => void> = [];

  child.stderr!.setEncoding('utf8');
  child.stderr!.on('data', (s: string) => {
    stderr = (stderr + s).slice(-65536);
  });
  child.stdout!.setEncoding('utf8');
  child.stdout!.on('data', (s: string) => {
    stdoutBuf += s;
    let nl: number;
    while ((nl = stdoutBuf.indexOf('\n')) >= 0) {
      const line = stdoutBuf.slice(0, nl);
      stdoutBuf = stdoutBuf.slice(nl + 1);
      let ev: { event?: string; last_txid?: number };
      try {
        ev = JSON.parse(line);
      } catch {
        continue;
      }
      if (ev.event === 'ready') {
        ready = true;
        readyWaiters.splice(0).forEach((f) => f());
      } else if (ev.event === 'stopped') {
        lastTxid = typeof ev.last_txid === 'number' ? ev.last_txid : null;
      }
    }
  });
  child.on('exit', (code, signal) => {
    exitInfo = { code, signal };
    exitWaiters.splice(0).forEach((f) => f());
    readyWaiters.splice(0).forEach((f) => f());
  });
  child.on('error', (e) => {
    stderr += `\nspawn error: ${e.message}`;
    exitInfo = exitInfo ?? { code: null, signal: null };
    exitWaiters.splice(0).forEach((f) => f());
    readyWaiters.splice(0).forEach((f) => f());
  });

  const describeExit = () =>
    `bank-writer exited (code ${exitInfo?.code}, signal ${exitInfo?.signal})${stderr ? `; stderr:\n${stderr.trim()}` : ''}`;
  const kill = () => {
    if (!exitInfo && child.pid !== undefined) child.kill('SIGKILL');
  };

  try {
    await new Promise<void>((res, rej) => {
      const timer = setTimeout(
        () => rej(new Error(`bank-writer not ready after ${readyTimeoutMs} ms; stderr:\n${stderr.trim()}`)),
        readyTimeoutMs,
      );
      readyWaiters.push(() => {
        clearTimeout(timer);
        if (ready) res();
        else rej(new Error(describeExit()));
      });
      if (ready) readyWaiters.splice(0).forEach((f) => f());
    });
    if (opts.shimPath) {
      const deadline = Date.now() + readyTimeoutMs;
      for (;;) {
        if (exitInfo) throw new Error(describeExit());
        try {
          const r = await rawRequest(resolve(opts.socketPath!), { op: 'status' }, 2000);
          if (r.ok) break;
          throw new Error(`the shim in bank-writer answered status with ${r.error.code}: ${r.error.message}`);
        } catch (e) {
          if (e instanceof Error && e.message.startsWith('the shim in bank-writer')) throw e;
          if (Date.now() > deadline) {
            throw new Error(`the shim's socket ${opts.socketPath} never answered: ${(e as Error).message}`);
          }
          await sleep(50);
        }
      }
    }
  } catch (e) {
    kill();
    throw e;
  }

  const waitExit = (timeoutMs: number) =>
    new Promise<boolean>((res) => {
      if (exitInfo) return res(true);
      const timer = setTimeout(() => res(false), timeoutMs);
      exitWaiters.push(() => {
        clearTimeout(timer);
        res(true);
      });
    });

  return {
    child,
    pid: child.pid!,
    dbDir,
    dbPath,
    commitLogPath,
    socketPath: opts.socketPath ? resolve(opts.socketPath) : null,
    acknowledged: () => countLines(commitLogPath),
    async waitForAcknowledged(n: number, timeoutMs = 120_000): Promise<number> {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const have = countLines(commitLogPath);
        if (have >= n) return have;
        if (exitInfo) throw new Error(`waiting for ${n} acknowledged transfers (have ${have}): ${describeExit()}`);
        if (Date.now() > deadline) throw new Error(`only ${have} of ${n} transfers acknowledged after ${timeoutMs} ms`);
        await sleep(20);
      }
    },
    async stop(timeoutMs = 30_000): Promise<BankWriterExit> {
      if (!exitInfo) child.kill('SIGTERM');
      if (!(await waitExit(timeoutMs))) {
        kill();
        await waitExit(5000);
        throw new Error(`bank-writer did not stop within ${timeoutMs} ms of SIGTERM (killed); stderr:\n${stderr.trim()}`);
      }
      const info = exitInfo!;
      if (info.code !== 0) throw new Error(describeExit());
      return { code: info.code, signal: info.signal, lastTxid };
    },
    kill,
    stderr: () => stderr,
    exited: () => exitInfo !== null,
  };
}

function sample(xs: number[], n = 20): number[] {
  return xs.slice(0, n);
}

/**
 * Opens the backup's database (SQLite runs its crash recovery on it: this modifies the files in
 * place, as a restore would) and checks it against the commit log and the cut.
 */
export function checkBankBackup(
  backupDbPath: string,
  commitLogPath: string,
  cutAtMs: number,
  opts: BankCheckOptions = {},
): BankCheckResult {
  const slack = opts.clockSlackMs ?? 2;
  const problems: string[] = [];
  const log = readCommitLog(commitLogPath);
  const r: BankCheckResult = {
    ok: false,
    problems,
    integrity: '',
    integrityOk: false,
    invariantOk: false,
    invariantWhy: null,
    accounts: 0,
    lastSnapshot: null,
    totalBalance: 0,
    expectedTotal: 0,
    txInBackup: 0,
    maxTxidInBackup: 0,
    isPrefix: false,
    prefixHoles: [],
    acknowledged: log.length,
    acknowledgedBeforeCut: 0,
    missingAcknowledged: [],
    startedAfterCut: [],
    hasTxStartedAfterCut: false,
    unacknowledgedInBackup: 0,
    cutAtMs,
    clockSlackMs: slack,
  };
  if (!Number.isFinite(cutAtMs)) {
    problems.push(`the cut time ${cutAtMs} is not a number`);
    return r;
  }
  // The log itself must be 1, 2, 3, ... (the writer acknowledges in commit order).
  for (let i = 0; i < log.length; i++) {
    if (log[i]!.txid !== log[0]!.txid + i) {
      problems.push(`the commit log is not consecutive at line ${i + 1} (txid ${log[i]!.txid})`);
      break;
    }
  }

  let db: SqliteDatabase;
  try {
    if (!existsSync(backupDbPath) || !statSync(backupDbPath).isFile()) throw new Error(`${backupDbPath} is not a file`);
    db = openSqlite(backupDbPath, { fileMustExist: true });
  } catch (e) {
    r.integrity = `cannot open: ${(e as Error).message}`;
    problems.push(`the backup database cannot be opened: ${(e as Error).message}`);
    return r;
  }
  try {
    try {
      const rows = db.pragma('integrity_check') as Array<{ integrity_check: string }>;
      r.integrity = rows.map((x) => x.integrity_check).join('; ');
      r.integrityOk = rows.length === 1 && rows[0]!.integrity_check === 'ok';
    } catch (e) {
      r.integrity = `integrity_check failed: ${(e as Error).message}`;
    }
    if (!r.integrityOk) problems.push(`PRAGMA integrity_check: ${r.integrity.slice(0, 500)}`);

    invariant(db, r);
    if (!r.invariantOk) problems.push(`bank invariant broken: ${r.invariantWhy}`);

    const txs = db
      .prepare<[], { txid: number; started_at: number }>('SELECT txid, started_at FROM transfers ORDER BY txid')
      .all();
    r.txInBackup = txs.length;
    r.maxTxidInBackup = txs.length ? txs[txs.length - 1]!.txid : 0;
    const inBackup = new Set<number>();
    for (const t of txs) inBackup.add(t.txid);
    const holes: number[] = [];
    for (let id = 1; id <= r.maxTxidInBackup && holes.length < 20; id++) if (!inBackup.has(id)) holes.push(id);
    r.prefixHoles = holes;
    r.isPrefix = holes.length === 0 && txs.every((t) => t.txid >= 1);
    if (!r.isPrefix) {
      problems.push(
        `the backup's transfers are not a prefix of the commit order: missing ${holes.join(', ')}${holes.length === 20 ? ', ...' : ''} below txid ${r.maxTxidInBackup}`,
      );
    }

    const ackedBefore = log.filter((c) => c.endMs < cutAtMs - slack);
    r.acknowledgedBeforeCut = ackedBefore.length;
    const missing = ackedBefore.filter((c) => !inBackup.has(c.txid)).map((c) => c.txid);
    r.missingAcknowledged = missing;
    if (missing.length) {
      problems.push(
        `${missing.length} transfer(s) acknowledged before the cut are missing from the backup: ${sample(missing).join(', ')}${missing.length > 20 ? ', ...' : ''}`,
      );
    }

    // Started after the cut: the database's own started_at (present for every transfer in the
    // backup, acknowledged or not) and the commit log's start time agree; use both.
    const after = new Set<number>();
    for (const t of txs) if (t.started_at > cutAtMs + slack) after.add(t.txid);
    const logged = new Set<number>();
    for (const c of log) {
      logged.add(c.txid);
      if (c.startMs > cutAtMs + slack && inBackup.has(c.txid)) after.add(c.txid);
    }
    r.startedAfterCut = [...after].sort((a, b) => a - b);
    r.hasTxStartedAfterCut = r.startedAfterCut.length > 0;
    if (r.hasTxStartedAfterCut) {
      problems.push(
        `${r.startedAfterCut.length} transfer(s) in the backup started after the cut: ${sample(r.startedAfterCut).join(', ')}`,
      );
    }
    r.unacknowledgedInBackup = txs.filter((t) => !logged.has(t.txid)).length;
  } catch (e) {
    problems.push(`checking the backup failed: ${(e as Error).message}`);
  } finally {
    db.close();
  }
  r.ok = problems.length === 0;
  return r;
}

function invariant(db: SqliteDatabase, r: BankCheckResult): void {
  const why = (s: string) => {
    r.invariantOk = false;
    r.invariantWhy = s;
  };
  const meta = new Map(
    db.prepare<[], { key: string; value: string }>('SELECT key, value FROM meta').all().map((x) => [x.key, x.value]),
  );
  const accounts = Number(meta.get('accounts'));
  const initial = Number(meta.get('initial_balance'));
  if (!Number.isSafeInteger(accounts) || !Number.isSafeInteger(initial)) {
    return why('meta lacks accounts/initial_balance');
  }
  const a = db
    .prepare<[], { n: number; total: number | null; lo: number | null; hi: number | null }>(
      'SELECT count(*) AS n, sum(balance) AS total, min(id) AS lo, max(id) AS hi FROM accounts',
    )
    .get()!;
  r.accounts = a.n;
  r.totalBalance = a.total ?? 0;
  r.expectedTotal = accounts * initial;
  if (a.n !== accounts || a.lo !== 1 || a.hi !== accounts) {
    return why(`expected accounts 1..${accounts}, found ${a.n} (ids ${a.lo}..${a.hi})`);
  }
  if (r.totalBalance !== r.expectedTotal) {
    return why(`sum(balance) = ${r.totalBalance}, expected ${r.expectedTotal}`);
  }
  const negative = db.prepare<[], { id: number }>('SELECT id FROM accounts WHERE balance < 0 LIMIT 1').get();
  if (negative) return why(`account ${negative.id} has a negative balance`);
  const off = db
    .prepare<[number], { id: number; balance: number; s: number }>(
      `SELECT a.id, a.balance, coalesce(l.s, 0) AS s
         FROM accounts a LEFT JOIN (SELECT account_id, sum(amount) AS s FROM ledger GROUP BY account_id) l
           ON l.account_id = a.id
        WHERE a.balance != ? + coalesce(l.s, 0) LIMIT 1`,
    )
    .get(initial);
  if (off) return why(`account ${off.id}: balance ${off.balance} != initial ${initial} + ledger ${off.s}`);
  const orphan = db
    .prepare<[], { txid: number }>('SELECT txid FROM ledger WHERE txid NOT IN (SELECT txid FROM transfers) LIMIT 1')
    .get();
  if (orphan) return why(`ledger rows for txid ${orphan.txid}, which has no transfer row`);
  const bad = db
    .prepare<[], { txid: number; n: number; neg: number | null; pos: number | null }>(
      `SELECT t.txid, count(l.id) AS n,
              sum(CASE WHEN l.account_id = t.from_id AND l.amount = -t.amount THEN 1 ELSE 0 END) AS neg,
              sum(CASE WHEN l.account_id = t.to_id AND l.amount = t.amount THEN 1 ELSE 0 END) AS pos
         FROM transfers t LEFT JOIN ledger l ON l.txid = t.txid
        GROUP BY t.txid
       HAVING n != 2 OR neg != 1 OR pos != 1
        LIMIT 1`,
    )
    .get();
  if (bad) return why(`transfer ${bad.txid} does not have exactly its debit and credit ledger rows (${bad.n} rows)`);
  // The latest balance snapshot (a table made by CREATE TABLE ... AS SELECT in one transaction).
  const snap = meta.get('last_snapshot');
  r.lastSnapshot = snap ?? null;
  if (snap !== undefined) {
    if (!/^snapshot_\d+$/.test(snap)) return why(`meta.last_snapshot is ${JSON.stringify(snap)}`);
    const exists = db.prepare("SELECT 1 FROM sqlite_schema WHERE type = 'table' AND name = ?").get(snap);
    if (!exists) return why(`the snapshot table ${snap} named in meta does not exist`);
    const s = db
      .prepare<[], { n: number; total: number | null }>(`SELECT count(*) AS n, sum(balance) AS total FROM ${snap}`)
      .get()!;
    if (s.n !== accounts || s.total !== r.expectedTotal) {
      return why(`snapshot ${snap}: ${s.n} accounts totalling ${s.total}, expected ${accounts} totalling ${r.expectedTotal}`);
    }
  }
  const stray = db
    .prepare<[string], { name: string }>(
      "SELECT name FROM sqlite_schema WHERE type = 'table' AND name LIKE 'snapshot\\_%' ESCAPE '\\' AND name != ? LIMIT 1",
    )
    .get(snap ?? '');
  if (stray) return why(`snapshot table ${stray.name} should have been dropped with the one that replaced it`);
  r.invariantOk = true;
  r.invariantWhy = null;
}

/** A short human-readable summary of a check (for test messages and the demo). */
export function formatBankCheck(r: BankCheckResult): string {
  const lines = [
    `integrity_check: ${r.integrity || '(not run)'}`,
    `invariant: ${r.invariantOk ? `ok (${r.accounts} accounts, total ${r.totalBalance}${r.lastSnapshot ? `, ${r.lastSnapshot} agrees` : ''})` : `BROKEN: ${r.invariantWhy}`}`,
    `transfers in backup: ${r.txInBackup} (txid 1..${r.maxTxidInBackup}${r.isPrefix ? ', a prefix of the commit order' : ', NOT a prefix'})`,
    `acknowledged before the cut: ${r.acknowledgedBeforeCut} of ${r.acknowledged} logged; missing from backup: ${r.missingAcknowledged.length}`,
    `started after the cut but present: ${r.startedAfterCut.length}`,
    `in backup but not yet acknowledged at the cut: ${r.unacknowledgedInBackup}`,
  ];
  if (!r.ok) lines.push(...r.problems.map((p) => `PROBLEM: ${p}`));
  return lines.join('\n');
}
