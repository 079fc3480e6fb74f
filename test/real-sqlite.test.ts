// A real database under the shim: the SQLite bank workload (src/workloads/bank-writer.ts,
// better-sqlite3) in WAL and rollback-journal (DELETE) modes, backed up while it commits
// transfers. The backup must open with SQLite's own recovery, pass PRAGMA integrity_check and the
// bank invariant, hold exactly the transfers 1..K (a prefix of the commit order), every transfer
// acknowledged before the cut, and none that started after it.
//
// The checker itself is tested first, without the shim, on backups broken on purpose: each check
// must be able to fail.
import Database from 'better-sqlite3';
import assert from 'node:assert/strict';
import { cpSync, existsSync, openSync, readdirSync, writeSync, closeSync } from 'node:fs';
import { join } from 'node:path';
import test from 'node:test';
import {
  checkBankBackup,
  formatBankCheck,
  readCommitLog,
  startBankWriter,
  type BankWriter,
  type JournalMode,
} from '../src/workloads/bank.js';
import { makeTmp, preloadBefore, runBackup, shimOrSkip } from './real-helpers.js';

const shim = shimOrSkip('test/real-sqlite.test.ts');

const CASES: Array<{ journal: JournalMode; pause: boolean }> = [
  { journal: 'wal', pause: true },
  { journal: 'delete', pause: true },
  // Without pause points the throttle alone makes the copy overlap the commits.
  { journal: 'wal', pause: false },
  { journal: 'delete', pause: false },
];

for (const { journal, pause } of CASES) {
  const how = pause ? 'held at copy start and cut' : 'throttle only';
  test(`SQLite (${journal} journal) under the shim, ${how}: the hot backup is the database at the cut`, {
    skip: shim ? false : 'libhotbackup.so is not built',
    timeout: 300_000,
  }, async (t) => {
    const tmp = makeTmp(`hb-real-sqlite-${journal}-`);
    const dbDir = join(tmp.dir, 'db');
    const dest = join(tmp.dir, 'backup');
    const socket = join(tmp.dir, 'hb.sock');
    const commitLog = join(tmp.dir, 'commits.log');
    let w: BankWriter | null = null;
    let ok = false;
    // Rollback-journal commits fsync the journal, the directory and the database: fewer per second.
    // Maintenance (incremental vacuum, DDL, VACUUM, checkpoints) often enough to happen during the backup.
    const n =
      journal === 'wal'
        ? { initial: 1500, paused: 300, after: 200, maintenanceEvery: 250 }
        : { initial: 300, paused: 100, after: 50, maintenanceEvery: 25 };
    try {
      w = await startBankWriter({ dbDir, journal, commitLogPath: commitLog, shimPath: shim, socketPath: socket, testHooks: true, preloadBefore: preloadBefore(), seed: 7, accounts: 20_000, maxTps: 1000, maintenanceEvery: n.maintenanceEvery });
      const writer = w;
      await writer.waitForAcknowledged(n.initial);
      const run = await runBackup({
        socket,
        dest,
        sources: [dbDir],
        throttleBytesPerSec: 256 * 1024,
        // Hold the copier at copy start and before the cut until more transfers committed.
        whilePaused: pause
          ? async () => {
              await writer.waitForAcknowledged(writer.acknowledged() + n.paused);
            }
          : undefined,
      });
      const st = run.status;
      assert.equal(st.state, 'done', `backup ended ${st.state}: ${JSON.stringify(st.error)}`);
      assert.equal(typeof st.cut_at, 'number', 'status has no cut_at');
      assert.equal(st.pid, writer.pid, 'the socket is served by another process than the writer');
      assert.ok(st.manifest && existsSync(st.manifest), `no manifest (${st.manifest})`);
      // Transfers after the cut must exist, so that "none started after the cut" is tested.
      await writer.waitForAcknowledged(writer.acknowledged() + n.after);
      await writer.stop();

      const files = readdirSync(dest).sort();
      t.diagnostic(`backup files: ${files.join(' ')}`);
      assert.ok(!files.some((f) => f.endsWith('-shm')), `the backup holds a -shm file: ${files.join(' ')}`);

      const log = readCommitLog(commitLog);
      const slack = 2;
      const postCut = log.filter((c) => c.startMs > st.cut_at! + slack).length;
      assert.ok(postCut > 0, 'no transfer started after the cut (the test waited for some)');
      const r = checkBankBackup(join(dest, 'bank.db'), commitLog, st.cut_at!, { clockSlackMs: slack });
      t.diagnostic(
        `cut at ${st.cut_at}, cut stall ${st.cut_stall_us} us, bytes_copied ${st.bytes_copied}, ` +
          `bytes_mirrored ${st.bytes_mirrored}, pause points ${run.paused.join(',') || 'none'}`,
      );
      for (const line of formatBankCheck(r).split('\n')) t.diagnostic(line);
      assert.ok(r.ok, `the backup is not the database at the cut (kept in ${tmp.dir}):\n${formatBankCheck(r)}`);
      assert.equal(r.integrity, 'ok');
      assert.ok(r.invariantOk, String(r.invariantWhy));
      assert.ok(r.isPrefix);
      assert.deepEqual(r.missingAcknowledged, []);
      assert.deepEqual(r.startedAfterCut, []);
      assert.ok(r.acknowledgedBeforeCut >= n.initial, `only ${r.acknowledgedBeforeCut} transfers acknowledged before the cut`);
      assert.ok(r.maxTxidInBackup < log[log.length - 1]!.txid, 'the backup holds the last transfer ever written');
      if (run.paused.length) {
        const during = log.filter((c) => c.startMs >= st.started_at! && c.endMs < st.cut_at!).length;
        assert.ok(during >= 2 * n.paused, `only ${during} transfers committed during the backup`);
      }
      ok = true;
    } finally {
      w?.kill();
      if (ok) tmp.cleanup();
      else console.error(`real-sqlite: files kept in ${tmp.dir}`);
    }
  });
}

// ---- the checker can fail (no shim needed) ----

test('checkBankBackup: a cold copy passes, and each broken copy fails for its reason', { timeout: 120_000 }, async (t) => {
  const tmp = makeTmp('hb-bankcheck-');
  try {
    const w = await startBankWriter({ dbDir: join(tmp.dir, 'db'), journal: 'wal', commitLogPath: join(tmp.dir, 'commits.log') });
    try {
      await w.waitForAcknowledged(1100); // past the first balance snapshot (every 1000 transfers)
    } finally {
      await w.stop();
    }
    const cut = Date.now() + 10;
    const log = readCommitLog(w.commitLogPath);
    const copy = (name: string) => {
      const d = join(tmp.dir, name);
      cpSync(join(tmp.dir, 'db'), d, { recursive: true });
      return join(d, 'bank.db');
    };

    const good = checkBankBackup(copy('good'), w.commitLogPath, cut);
    assert.ok(good.ok, formatBankCheck(good));
    assert.equal(good.txInBackup, log.length);
    assert.equal(good.acknowledgedBeforeCut, log.length);

    // A cut before the last 50 transfers started: they are in the copy but "started after the cut".
    const early = log[log.length - 50]!.startMs - 5;
    const r1 = checkBankBackup(copy('early'), w.commitLogPath, early);
    assert.ok(!r1.ok);
    assert.ok(r1.hasTxStartedAfterCut && r1.startedAfterCut.length >= 50, formatBankCheck(r1));
    assert.ok(r1.integrityOk && r1.invariantOk && r1.isPrefix);

    // A transfer removed with its ledger rows and its balance changes undone: consistent, but a hole.
    const holePath = copy('hole');
    {
      const db = new Database(holePath);
      db.transaction(() => {
        const tx = db.prepare('SELECT from_id, to_id, amount FROM transfers WHERE txid = 100').get() as {
          from_id: number;
          to_id: number;
          amount: number;
        };
        db.prepare('UPDATE accounts SET balance = balance + ? WHERE id = ?').run(tx.amount, tx.from_id);
        db.prepare('UPDATE accounts SET balance = balance - ? WHERE id = ?').run(tx.amount, tx.to_id);
        db.prepare('DELETE FROM ledger WHERE txid = 100').run();
        db.prepare('DELETE FROM transfers WHERE txid = 100').run();
      })();
      db.close();
    }
    const r2 = checkBankBackup(holePath, w.commitLogPath, cut);
    assert.ok(!r2.ok);
    assert.ok(r2.invariantOk, formatBankCheck(r2));
    assert.equal(r2.isPrefix, false);
    assert.deepEqual(r2.prefixHoles, [100]);
    assert.deepEqual(r2.missingAcknowledged, [100]);

    // Lost acknowledged transfers at the end (a copy from before they committed): still a prefix.
    const tailPath = copy('tail');
    {
      const db = new Database(tailPath);
      db.transaction(() => {
        const max = log[log.length - 1]!.txid;
        for (let id = max; id > max - 10; id--) {
          const tx = db.prepare('SELECT from_id, to_id, amount FROM transfers WHERE txid = ?').get(id) as {
            from_id: number;
            to_id: number;
            amount: number;
          };
          db.prepare('UPDATE accounts SET balance = balance + ? WHERE id = ?').run(tx.amount, tx.from_id);
          db.prepare('UPDATE accounts SET balance = balance - ? WHERE id = ?').run(tx.amount, tx.to_id);
          db.prepare('DELETE FROM ledger WHERE txid = ?').run(id);
          db.prepare('DELETE FROM transfers WHERE txid = ?').run(id);
        }
      })();
      db.close();
    }
    const r3 = checkBankBackup(tailPath, w.commitLogPath, cut);
    assert.ok(!r3.ok && r3.isPrefix && r3.invariantOk, formatBankCheck(r3));
    assert.equal(r3.missingAcknowledged.length, 10);

    // Money created out of nothing: the invariant breaks.
    const moneyPath = copy('money');
    {
      const db = new Database(moneyPath);
      db.prepare('UPDATE accounts SET balance = balance + 1 WHERE id = 3').run();
      db.close();
    }
    const r4 = checkBankBackup(moneyPath, w.commitLogPath, cut);
    assert.ok(!r4.ok && !r4.invariantOk, formatBankCheck(r4));
    assert.match(r4.invariantWhy ?? '', /sum\(balance\)/);

    // A ledger row whose amount was changed along with the balance: totals hold, per-transfer check fails.
    const ledgerPath = copy('ledger');
    {
      const db = new Database(ledgerPath);
      db.transaction(() => {
        const l = db.prepare('SELECT id, account_id FROM ledger WHERE txid = 42 AND amount > 0').get() as {
          id: number;
          account_id: number;
        };
        db.prepare('UPDATE ledger SET amount = amount + 1 WHERE id = ?').run(l.id);
        db.prepare('UPDATE accounts SET balance = balance + 1 WHERE id = ?').run(l.account_id);
        db.prepare('UPDATE accounts SET balance = balance - 1 WHERE id = (SELECT min(id) FROM accounts WHERE id != ?)').run(l.account_id);
      })();
      db.close();
    }
    const r5 = checkBankBackup(ledgerPath, w.commitLogPath, cut);
    assert.ok(!r5.ok && !r5.invariantOk, formatBankCheck(r5));

    // The balance snapshot named in meta is gone (DDL lost), or an old one was not dropped.
    const noSnapPath = copy('nosnap');
    {
      const db = new Database(noSnapPath);
      const name = (db.prepare("SELECT value FROM meta WHERE key = 'last_snapshot'").get() as { value: string }).value;
      db.exec(`DROP TABLE ${name}`);
      db.close();
    }
    const r8 = checkBankBackup(noSnapPath, w.commitLogPath, cut);
    assert.ok(!r8.ok && !r8.invariantOk, formatBankCheck(r8));
    assert.match(r8.invariantWhy ?? '', /does not exist/);
    const strayPath = copy('stray');
    {
      const db = new Database(strayPath);
      db.exec('CREATE TABLE snapshot_7 AS SELECT id, balance FROM accounts');
      db.close();
    }
    const r9 = checkBankBackup(strayPath, w.commitLogPath, cut);
    assert.ok(!r9.ok && !r9.invariantOk, formatBankCheck(r9));
    assert.match(r9.invariantWhy ?? '', /snapshot_7/);

    // Torn pages: integrity_check (or the queries) must fail.
    const tornPath = copy('torn');
    {
      const fd = openSync(tornPath, 'r+');
      const junk = Buffer.alloc(4096 * 8, 0x5a);
      writeSync(fd, junk, 0, junk.length, 4096 * 3);
      closeSync(fd);
    }
    const r6 = checkBankBackup(tornPath, w.commitLogPath, cut);
    t.diagnostic(`torn copy: ${r6.problems.join(' | ').slice(0, 300)}`);
    assert.ok(!r6.ok && !r6.integrityOk, formatBankCheck(r6));

    // No database at all.
    const r7 = checkBankBackup(join(tmp.dir, 'nothing', 'bank.db'), w.commitLogPath, cut);
    assert.ok(!r7.ok && !r7.integrityOk);
  } finally {
    tmp.cleanup();
  }
});
