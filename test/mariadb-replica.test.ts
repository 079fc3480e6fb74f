// Replica seeding: a hot backup of a busy source (binlog, GTID) is restored with
// `hotbackup restore --print-replication`, started as a replica of the still-running source from
// the reported GTID position, catches up while the source keeps writing, and ends with the same
// CHECKSUM TABLE as the source on every table of the workload, with no replication error.
import assert from 'node:assert/strict';
import { createServer } from 'node:net';
import { join } from 'node:path';
import test from 'node:test';
import { request } from '../src/client.js';
import { MariaServer, sleep } from '../src/mariadb/server.js';
import {
  bankLoop, bankPrepare, freshDatadir, mariadbOrSkip, scratch, SHIM, sysbenchLoop, sysbenchPrepare, waitUntil,
} from './mariadb-helpers.js';
import { cli } from './cli-helpers.js';

const { install, skip } = mariadbOrSkip('test/mariadb-replica.test.ts', { sysbench: true });

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.on('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

test('replica seeded from a hot backup catches up from the reported GTID position; CHECKSUM TABLE equals the source', { skip, timeout: 400_000 }, async (t) => {
  const sc = scratch(t, 'hb-maria-replica-');
  const tmp = sc.dir;
  const env: NodeJS.ProcessEnv = { ...process.env, HOTBACKUP_CATALOG: join(tmp, 'catalog.db') };
  delete env.HOTBACKUP_SOCKET;
  const data = join(tmp, 'source-data');
  freshDatadir(install!, data);
  const port = await freePort();
  const src = await MariaServer.start({ install: install!, datadir: data, runDir: join(tmp, 'run'), name: 'source', shim: SHIM,
    binlog: 'mysql-bin', serverId: 1, port });
  sc.defer(() => src.kill());
  await src.query("CREATE USER repl@'127.0.0.1' IDENTIFIED BY 'repl-pw'");
  await src.query("GRANT REPLICATION SLAVE ON *.* TO repl@'127.0.0.1'");
  await sysbenchPrepare(src, { tables: 2, tableSize: 2000 });
  await bankPrepare(src, 40);
  const sb = sysbenchLoop(src, { tables: 2, tableSize: 2000, threads: 2, runSeconds: 2 });
  const bank = bankLoop(src, { clients: 2, accounts: 40, seed: 11 });
  let stopped = false;
  const stopLoads = async () => {
    if (stopped) return [];
    stopped = true;
    return [await sb.stop(), await bank.stop()];
  };
  sc.defer(stopLoads);
  await waitUntil(() => bank.count() >= 50, 'the bank workload to get going');

  const dest = join(tmp, 'backup');
  const t0 = Date.now();
  const st = await cli(['start', dest, '--socket', src.hotbackupSocket!, '--throttle', '6MB/s'], env);
  assert.equal(st.code, 0, st.stderr);
  await waitUntil(async () => {
    const s = await request(src.hotbackupSocket!, { op: 'status' });
    return s.state !== 'copying' || Date.now() - t0 > 4000;
  }, 'load during the copy');
  await cli(['throttle', 'off', '--socket', src.hotbackupSocket!], env);
  let status = await request(src.hotbackupSocket!, { op: 'status' });
  await waitUntil(async () => {
    status = await request(src.hotbackupSocket!, { op: 'status' });
    return status.state !== 'copying' && status.state !== 'finishing';
  }, 'the end of the backup');
  assert.equal(status.state, 'done', JSON.stringify(status.error));

  // The source keeps writing while the backup is restored and the replica starts.
  const target = join(tmp, 'replica-data');
  const r0 = Date.now();
  const rs = await cli(['restore', dest, target, '--print-replication', '--json'], env);
  assert.equal(rs.code, 0, rs.stderr);
  const restoreMs = Date.now() - r0;
  const repl = JSON.parse(rs.stdout).replication as { gtid_binlog_pos: string; binlog_file: string; binlog_pos: number };
  assert.match(repl.gtid_binlog_pos, /^0-1-\d+$/, `gtid_binlog_pos ${repl.gtid_binlog_pos}`);

  const replica = await MariaServer.start({ install: install!, datadir: target, runDir: join(tmp, 'run'), name: 'replica',
    binlog: 'mysql-bin', serverId: 2 });
  sc.defer(() => replica.kill());
  const c0 = Date.now();
  const rc = await replica.connect();
  sc.defer(() => rc.end());
  await rc.query(`SET GLOBAL gtid_slave_pos = '${repl.gtid_binlog_pos}'`);
  await rc.query(`CHANGE MASTER TO MASTER_HOST='127.0.0.1', MASTER_PORT=${port}, MASTER_USER='repl', MASTER_PASSWORD='repl-pw',
    MASTER_USE_GTID=slave_pos, MASTER_CONNECT_RETRY=1`);
  await rc.query('START SLAVE');
  // Let it replicate while the source is still busy, then stop the load and wait for catch-up.
  const bankAtStart = bank.count();
  await waitUntil(() => bank.count() >= bankAtStart + 200, 'more transfers on the source while the replica runs');
  const results = await stopLoads();
  for (const r of results) assert.deepEqual(r.errors, [], 'a workload on the source saw errors');
  const [sg] = await src.query<{ p: string }>('SELECT @@gtid_binlog_pos AS p');
  let slave: Record<string, unknown> = {};
  await waitUntil(async () => {
    const [row] = (await rc.query('SHOW SLAVE STATUS'))[0] as Record<string, unknown>[];
    slave = row ?? {};
    if (Number(slave.Last_SQL_Errno) || Number(slave.Last_IO_Errno)) return true;
    const [[g]] = (await rc.query('SELECT @@gtid_slave_pos AS p')) as unknown as [{ p: string }[]];
    return g.p === sg.p;
  }, 'the replica to catch up', 240_000);
  const catchUpMs = Date.now() - c0;
  assert.equal(Number(slave.Last_IO_Errno), 0, `replication I/O error: ${slave.Last_IO_Error}`);
  assert.equal(Number(slave.Last_SQL_Errno), 0, `replication SQL error: ${slave.Last_SQL_Error}`);
  assert.equal(slave.Slave_SQL_Running, 'Yes');

  const tables = ['bank.accounts', 'bank.ledger', 'sbtest.sbtest1', 'sbtest.sbtest2'];
  const sum = async (s: MariaServer) => Object.fromEntries(
    (await s.query<{ Table: string; Checksum: number }>(`CHECKSUM TABLE ${tables.join(', ')}`)).map((r) => [r.Table, String(r.Checksum)]));
  const a = await sum(src);
  const b = await sum(replica);
  assert.deepEqual(b, a, 'the replica\'s CHECKSUM TABLE differs from the source\'s');
  t.diagnostic(`backup ${(status.bytes_copied / 1e6).toFixed(1)} MB in ${((status.finished_at! - status.started_at!) / 1000).toFixed(1)} s; ` +
    `restore+recovery ${restoreMs} ms; seeded at ${repl.gtid_binlog_pos} (${repl.binlog_file}:${repl.binlog_pos}); ` +
    `replica caught up to ${sg.p} in ${catchUpMs} ms; checksums ${JSON.stringify(a)}`);
  await rc.query('STOP SLAVE');
  await replica.shutdown();
  await src.shutdown();
  await sleep(0);
  sc.passed();
});
