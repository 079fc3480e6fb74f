// MariaDB 10.11 on its default settings, binlog on, under the shim; a hot backup taken with the CLI
// while sysbench oltp_write_only, a bank-transfer workload, a DDL loop and an Aria writer run.
// The backup is restored with `hotbackup restore` and opened by a plain mariadbd (its own crash
// recovery, nothing else). It must: recover; pass CHECK TABLE on every table; hold the bank
// invariants (sum, and each balance against the ledger); hold every transfer acknowledged before
// the cut and none started after it; hold an Aria table whose rows form a prefix of the inserts.
// No workload client may see an error during the backup. The backup is throttled so it overlaps
// the load for seconds; nothing asserts a duration.
import assert from 'node:assert/strict';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import test from 'node:test';
import { request } from '../src/client.js';
import { checkAllTables, MariaServer, sleep } from '../src/mariadb/server.js';
import {
  ariaLoop, bankLoop, bankPrepare, checkBank, ddlLoop, freshDatadir, mariadbOrSkip, scratch, SHIM, sysbenchLoop,
  sysbenchPrepare, waitUntil,
} from './mariadb-helpers.js';
import { cli } from './cli-helpers.js';

const { install, skip } = mariadbOrSkip('test/mariadb-consistency.test.ts', { sysbench: true });

function dirBytes(d: string): number {
  let n = 0;
  for (const e of readdirSync(d, { withFileTypes: true })) {
    const p = join(d, e.name);
    if (e.isDirectory()) n += dirBytes(p);
    else if (e.isFile()) n += statSync(p).size;
  }
  return n;
}

const RUNS: { seed: number; slowSeconds: number; accounts: number; clients: number; serverArgs?: string[]; label?: string }[] = [
  { seed: 1, slowSeconds: 6, accounts: 50, clients: 2 },
  { seed: 2, slowSeconds: 3, accounts: 20, clients: 3 },
  { seed: 3, slowSeconds: 9, accounts: 100, clients: 2 },
  // Pages flushed all the time (small buffer pool, no dirty-page allowance): most page writes to
  // the tablespaces happen during the copy, so the backup depends on mirrored page writes, not
  // only on the redo log.
  { seed: 4, slowSeconds: 6, accounts: 50, clients: 2, label: 'small buffer pool, eager flushing',
    serverArgs: ['--innodb-buffer-pool-size=6M', '--innodb-max-dirty-pages-pct=0', '--innodb-max-dirty-pages-pct-lwm=0', '--innodb-io-capacity=2000'] },
];

for (const run of RUNS) {
  test(`MariaDB under load (seed ${run.seed}, ${run.slowSeconds} s throttled${run.label ? `, ${run.label}` : ''}): the restored backup recovers, checks and holds every commit before the cut`, {
    skip, timeout: 300_000,
  }, async (t) => {
    const sc = scratch(t, `hb-maria-cons-${run.seed}-`);
  const tmp = sc.dir;
    const data = join(tmp, 'data');
    const dest = join(tmp, 'backup');
    const target = join(tmp, 'restored');
    const catalog = join(tmp, 'catalog.db');
    const env: NodeJS.ProcessEnv = { ...process.env, HOTBACKUP_CATALOG: catalog };
    delete env.HOTBACKUP_SOCKET;
    freshDatadir(install!, data);

    const src = await MariaServer.start({ install: install!, datadir: data, runDir: join(tmp, 'run'), name: 'source', shim: SHIM, binlog: 'mysql-bin',
      extraArgs: run.serverArgs });
    sc.defer(() => src.kill());
    const [aio] = await src.query<{ a: number }>('SELECT @@innodb_use_native_aio AS a');
    assert.equal(Number(aio.a), 0, 'under the shim InnoDB must fall back to synchronous I/O (@@innodb_use_native_aio = 0)');
    assert.match(src.errorLog(), /falling back to innodb_use_native_aio=OFF/);

    await sysbenchPrepare(src, { tables: 4, tableSize: 2000 });
    await bankPrepare(src, run.accounts);
    const loads = {
      sysbench: sysbenchLoop(src, { tables: 4, tableSize: 2000, threads: 2, runSeconds: 2 }),
      bank: bankLoop(src, { clients: run.clients, accounts: run.accounts, seed: run.seed }),
      ddl: ddlLoop(src),
      aria: ariaLoop(src),
    };
    let stopped = false;
    const stopAll = async () => {
      if (stopped) return null;
      stopped = true;
      const r: Record<string, { count: number; errors: string[] }> = {};
      for (const [k, l] of Object.entries(loads)) r[k] = await l.stop();
      return r;
    };
    sc.defer(async () => { await stopAll(); });
    await waitUntil(() => loads.bank.count() >= 50 && loads.ddl.count() >= 1 && loads.aria.count() >= 20, 'the workloads to get going');

    const at0 = { bank: loads.bank.count(), ddl: loads.ddl.count(), aria: loads.aria.count(), sysbench: loads.sysbench.count() };
    const t0 = Date.now();
    const started = await cli(['start', dest, '--socket', src.hotbackupSocket!, '--throttle', '4MB/s', '--json'], env);
    assert.equal(started.code, 0, `hotbackup start failed: ${started.stderr}${started.stdout}`);
    // Slow copy for a while (the load overlaps it), then faster; a backup that ended already is fine.
    await waitUntil(async () => {
      const s = await request(src.hotbackupSocket!, { op: 'status' });
      if (s.state !== 'copying') return true;
      return Date.now() - t0 >= run.slowSeconds * 1000 && loads.bank.count() - at0.bank >= 100 && loads.ddl.count() - at0.ddl >= 2;
    }, 'load during the throttled copy', 240_000);
    const thr = await cli(['throttle', '60MB/s', '--socket', src.hotbackupSocket!], env);
    assert.ok(thr.code === 0 || thr.code === 5, `hotbackup throttle: ${thr.stderr}`);
    let st = await request(src.hotbackupSocket!, { op: 'status' });
    await waitUntil(async () => {
      st = await request(src.hotbackupSocket!, { op: 'status' });
      return st.state !== 'copying' && st.state !== 'finishing';
    }, 'the end of the backup', 240_000);
    const atEnd = { bank: loads.bank.count(), ddl: loads.ddl.count(), aria: loads.aria.count(), sysbench: loads.sysbench.count() };
    assert.equal(st.state, 'done', `backup ended ${st.state}: ${JSON.stringify(st.error)}`);
    assert.ok(st.cut_at && existsSync(join(dest, 'hotbackup_manifest.json')));
    // Transfers that start after the cut must exist, so that "none after the cut" is tested.
    await waitUntil(() => loads.bank.transfers().some((x) => x.startMs > st.cut_at! + 5) && loads.bank.count() >= atEnd.bank + 20, 'transfers after the cut');
    const results = (await stopAll())!;
    for (const [k, r] of Object.entries(results)) {
      assert.deepEqual(r.errors, [], `the ${k} workload saw errors while the backup ran`);
    }
    const cutAt = st.cut_at!;
    const bankLog = loads.bank.transfers();
    const ariaAcked = loads.aria.acked();
    const srcBytes = dirBytes(data);
    // The source keeps working and shuts down cleanly after the backup.
    const [ck] = await src.query<{ n: number }>('SELECT COUNT(*) AS n FROM bank.ledger');
    assert.ok(Number(ck.n) >= bankLog.length);
    await src.shutdown();

    // Restore with the CLI, then open it with a plain mariadbd: crash recovery only.
    const r0 = Date.now();
    const restored = await cli(['restore', dest, target, '--json'], env);
    assert.equal(restored.code, 0, `hotbackup restore failed: ${restored.stderr}`);
    const restoreMs = Date.now() - r0;
    assert.ok(!readdirSync(target).some((n) => n.startsWith('hotbackup_')), 'hotbackup_* files were restored');
    const dst = await MariaServer.start({ install: install!, datadir: target, runDir: join(tmp, 'run'), name: 'restored', binlog: 'mysql-bin' });
    sc.defer(() => dst.kill());
    const elog = dst.errorLog();
    assert.doesNotMatch(elog, /\[ERROR\]/, `the restored server logged errors:\n${elog}`);

    const check = await checkAllTables(dst);
    assert.deepEqual(check.problems, [], `CHECK TABLE failed on the restored server (backup cut at ${cutAt}, ` +
      `status ${JSON.stringify(st)}); restored server log:\n${dst.errorLog().split('\n').slice(-30).join('\n')}`);
    const bank = await checkBank(dst, run.accounts, bankLog, cutAt);
    assert.ok(bank.sumOk, 'bank: the sum of the balances changed');
    assert.deepEqual(bank.badAccounts, [], 'bank: balances disagree with the ledger');
    assert.deepEqual(bank.missingAcknowledged, [], 'bank: transfers acknowledged before the cut are missing');
    assert.deepEqual(bank.presentStartedAfterCut, [], 'bank: transfers started after the cut are present');
    assert.ok(bank.ackedBeforeCut > 0 && bank.startedAfterCut > 0, 'the test must have transfers on both sides of the cut');
    // Aria: one client inserted 1, 2, 3, ...: a point-in-time image holds a prefix.
    const aria = await dst.query<{ n: number; mx: number | null }>('SELECT COUNT(*) AS n, MAX(id) AS mx FROM aria.t');
    const n = Number(aria[0].n);
    assert.equal(Number(aria[0].mx ?? 0), n, `aria.t is not a prefix of the inserts: ${n} rows, max id ${aria[0].mx}`);
    const ariaBefore = ariaAcked.filter((a) => a.endMs + 2 < cutAt).length;
    // The DDL loop's kept tables, whatever state they were in at the cut, check above; list them here.
    const ddlTables = await dst.query<{ t: string }>("SELECT CONCAT(table_schema, '.', table_name) AS t FROM information_schema.tables WHERE table_schema LIKE 'ddl%'");
    await dst.shutdown();

    t.diagnostic(`data ${(srcBytes / 1e6).toFixed(1)} MB; backup ${(st.bytes_copied / 1e6).toFixed(1)} MB in ${st.files_copied} files, ` +
      `${((st.finished_at! - st.started_at!) / 1000).toFixed(1)} s, mirrored ${(st.bytes_mirrored / 1e6).toFixed(2)} MB, cut stall ${st.cut_stall_us} us`);
    t.diagnostic(`during the backup: ${atEnd.bank - at0.bank} transfers, ${atEnd.sysbench - at0.sysbench}+ sysbench trx (runs finished), ` +
      `${atEnd.ddl - at0.ddl} DDL rounds, ${atEnd.aria - at0.aria} Aria inserts`);
    t.diagnostic(`restore ${restoreMs} ms; recovery+start ${dst.readyMs} ms; ${check.tables} tables, ${check.rows} rows checked; ` +
      `bank: ${bank.ledgerRows} transfers in the backup, ${bank.ackedBeforeCut} acknowledged before the cut, ${bank.startedAfterCut} started after; ` +
      `aria ${n} rows (${ariaBefore} acknowledged before the cut); ddl tables ${ddlTables.map((x) => x.t).join(' ')}`);
    sc.passed();
  });
}
