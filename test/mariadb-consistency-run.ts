// One consistency run of MariaDB under the shim, shared by test/mariadb-consistency.test.ts and
// the stress runner (scripts/stress-consistency.ts): MariaDB 10.11 with the binlog on, under
// sysbench oltp_write_only, bank transfers, a DDL churn loop, a model-checked DDL/DML sequence and
// an Aria writer, optionally beside a disk-heavy process; a hot backup taken with the CLI while
// the shim also copies a byte-exact reference of the datadir at the cut (test hook).
//
// What a run proves, in order: the backup equals the reference byte for byte (the image is one
// instant); the restored server recovers without errors and passes CHECK TABLE; the bank holds
// (sum, balances against the ledger, every transfer acknowledged before the cut present, none
// started after it); Aria holds a prefix of its inserts; the schema (databases, tables, columns,
// engines, row counts) is the DDL model after some statement k between the last acknowledged
// and the last started before the cut. Every failed check is a problem in the result; nothing
// here retries.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { request } from '../src/client.js';
import { checkAllTables, type MariadbInstall, MariaServer } from '../src/mariadb/server.js';
import { cli } from './cli-helpers.js';
import { checkDdlPrefix, ddlSchemaLoop, readSchema } from './ddl-schema.js';
import {
  ariaLoop, bankLoop, bankPrepare, checkBank, ddlLoop, freshDatadir, SHIM, sysbenchLoop, sysbenchPrepare, waitUntil,
} from './mariadb-helpers.js';
import { compareWithReference, formatComparison } from './reference-diff.js';

export interface ServerConfig {
  name: string;
  args: string[];
}

/** MariaDB's defaults; and pages flushed all the time (small buffer pool, no dirty-page
 *  allowance), so that most page writes to the tablespaces happen during the copy and the
 *  backup depends on mirrored page writes, not only on the redo log. */
export const CONFIGS: Record<string, ServerConfig> = {
  default: { name: 'default settings', args: [] },
  eager: {
    name: 'small buffer pool, eager flushing',
    args: ['--innodb-buffer-pool-size=6M', '--innodb-max-dirty-pages-pct=0', '--innodb-max-dirty-pages-pct-lwm=0',
      '--innodb-io-capacity=2000'],
  },
};

export interface RunOptions {
  install: MariadbInstall;
  /** An empty scratch directory: data, backup, reference, restored, run (logs) go under it. */
  dir: string;
  seed: number;
  config: ServerConfig;
  /** Seconds the copy runs throttled at 4 MB/s (the load overlaps it), before 60 MB/s. */
  slowSeconds: number;
  accounts: number;
  clients: number;
  /** A second disk-heavy process on the same file system for the whole run. */
  contention: boolean;
  log?: (line: string) => void;
}

export interface RunResult {
  /** Every check that failed; empty when the run passed. */
  problems: string[];
  /** What the run did and measured, one line each. */
  diagnostics: string[];
  cutAt: number;
  bytesMirrored: number;
  bytesCompared: number;
}

/** MariaDB's own crash recovery after a SIGKILL during ALTER of an Aria table logs this for the
 *  temporary table it was building (seen without the shim in test/ddl-schema.ts's kill runs; the
 *  schema and rows recovered correctly): a cut at that moment is the same state, not a defect. */
const ARIA_ALTER_LEFTOVER = /\[ERROR\] mariadbd: File '[^']*#sql-alter-[^']*\.MA[DI]' not found/;

function dirBytes(d: string): number {
  let n = 0;
  for (const e of readdirSync(d, { withFileTypes: true })) {
    const p = join(d, e.name);
    if (e.isDirectory()) n += dirBytes(p);
    else if (e.isFile()) n += statSync(p).size;
  }
  return n;
}

/** A process that writes, fsyncs and reads back 64 MiB files in a loop on the file system of `dir`,
 *  so the copier, the server's page flushes and its redo writes queue behind other I/O, as on a busy host. */
function diskHog(dir: string): { stop(): Promise<void> } {
  mkdirSync(dir, { recursive: true });
  const f = join(dir, 'hog');
  const child = spawn('bash', ['-c',
    `while :; do dd if=/dev/zero of='${f}' bs=1M count=64 conv=fsync status=none; ` +
    `dd if='${f}' of=/dev/null bs=1M iflag=direct status=none; done`], { stdio: 'ignore', detached: true });
  return {
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      const gone = new Promise((r) => child.on('exit', r));
      try { process.kill(-child.pid!, 'SIGKILL'); } catch { /* gone */ }
      await gone;
    },
  };
}

export async function consistencyRun(o: RunOptions): Promise<RunResult> {
  const say = o.log ?? (() => {});
  const problems: string[] = [];
  const diagnostics: string[] = [];
  const data = join(o.dir, 'data');
  const dest = join(o.dir, 'backup');
  const reference = join(o.dir, 'reference');
  const target = join(o.dir, 'restored');
  const env: NodeJS.ProcessEnv = { ...process.env, HOTBACKUP_CATALOG: join(o.dir, 'catalog.db') };
  delete env.HOTBACKUP_SOCKET;
  const cleanups: (() => Promise<unknown>)[] = [];
  try {
    const hog = o.contention ? diskHog(join(o.dir, 'contention')) : null;
    if (hog) cleanups.push(() => hog.stop());
    freshDatadir(o.install, data);
    const src = await MariaServer.start({
      install: o.install, datadir: data, runDir: join(o.dir, 'run'), name: 'source', shim: SHIM, binlog: 'mysql-bin',
      extraArgs: o.config.args, testHooks: true, env: { ...process.env, HOTBACKUP_TEST_REFERENCE: reference },
    });
    cleanups.push(() => src.kill());
    const [aio] = await src.query<{ a: number }>('SELECT @@innodb_use_native_aio AS a');
    assert.equal(Number(aio.a), 0, 'under the shim InnoDB must fall back to synchronous I/O (@@innodb_use_native_aio = 0)');

    await sysbenchPrepare(src, { tables: 4, tableSize: 2000 });
    await bankPrepare(src, o.accounts);
    const ddlModel = ddlSchemaLoop(src, { prefix: 'dsm' });
    const loads = {
      sysbench: sysbenchLoop(src, { tables: 4, tableSize: 2000, threads: 2, runSeconds: 2 }),
      bank: bankLoop(src, { clients: o.clients, accounts: o.accounts, seed: o.seed }),
      ddl: ddlLoop(src),
      ddlModel,
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
    cleanups.push(() => stopAll());
    await waitUntil(() => loads.bank.count() >= 50 && loads.ddl.count() >= 1 && loads.aria.count() >= 20 &&
      ddlModel.count() >= 5, 'the workloads to get going');

    const at0 = { bank: loads.bank.count(), ddl: ddlModel.count() };
    const t0 = Date.now();
    say(`backup started (${o.config.name}, seed ${o.seed}${o.contention ? ', disk contention' : ''})`);
    const started = await cli(['start', dest, '--socket', src.hotbackupSocket!, '--throttle', '4MB/s', '--json'], env);
    assert.equal(started.code, 0, `hotbackup start failed: ${started.stderr}${started.stdout}`);
    await waitUntil(async () => {
      const s = await request(src.hotbackupSocket!, { op: 'status' });
      if (s.state !== 'copying') return true;
      return Date.now() - t0 >= o.slowSeconds * 1000 && loads.bank.count() - at0.bank >= 100 && ddlModel.count() - at0.ddl >= 10;
    }, 'load during the throttled copy', 240_000);
    const thr = await cli(['throttle', '60MB/s', '--socket', src.hotbackupSocket!], env);
    assert.ok(thr.code === 0 || thr.code === 5, `hotbackup throttle: ${thr.stderr}`);
    let st = await request(src.hotbackupSocket!, { op: 'status' });
    await waitUntil(async () => {
      st = await request(src.hotbackupSocket!, { op: 'status' });
      return st.state !== 'copying' && st.state !== 'finishing';
    }, 'the end of the backup', 240_000);
    assert.equal(st.state, 'done', `backup ended ${st.state}: ${JSON.stringify(st.error)}`);
    assert.ok(st.cut_at && existsSync(join(dest, 'hotbackup_manifest.json')));
    const cutAt = st.cut_at;
    const atEnd = { bank: loads.bank.count() };
    // Transfers that start after the cut must exist, so that "none after the cut" is tested.
    await waitUntil(() => loads.bank.transfers().some((x) => x.startMs > cutAt + 5) && loads.bank.count() >= atEnd.bank + 20,
      'transfers after the cut');
    const results = (await stopAll())!;
    for (const [k, r] of Object.entries(results)) {
      if (r.errors.length) problems.push(`the ${k} workload saw errors while the backup ran: ${r.errors.slice(0, 5).join(' | ')}`);
    }
    const srcBytes = dirBytes(data);
    await src.shutdown();
    if (hog) await hog.stop();

    // 1. The image: byte for byte the reference the shim copied at the cut.
    const cmp = compareWithReference(dest, reference);
    if (cmp.diffs.length) problems.push(`the backup differs from the reference copied at the cut: ${formatComparison(cmp)}`);
    diagnostics.push(`reference: ${formatComparison(cmp).split('\n')[0]}`);

    // 2. Restore with the CLI, then a plain mariadbd: crash recovery only.
    const restored = await cli(['restore', dest, target, '--json'], env);
    assert.equal(restored.code, 0, `hotbackup restore failed: ${restored.stderr}`);
    const dst = await MariaServer.start({ install: o.install, datadir: target, runDir: join(o.dir, 'run'), name: 'restored', binlog: 'mysql-bin' });
    cleanups.push(() => dst.kill());
    const errors = dst.errorLog().split('\n').filter((l) => /\[ERROR\]/.test(l) && !ARIA_ALTER_LEFTOVER.test(l));
    if (errors.length) problems.push(`the restored server logged errors: ${errors.slice(0, 10).join(' | ')}`);
    const check = await checkAllTables(dst);
    if (check.problems.length) problems.push(`CHECK TABLE failed: ${check.problems.join(' | ')}`);
    const bankLog = loads.bank.transfers();
    const bank = await checkBank(dst, o.accounts, bankLog, cutAt);
    if (!bank.sumOk) problems.push('bank: the sum of the balances changed');
    if (bank.badAccounts.length) problems.push(`bank: balances disagree with the ledger: ${bank.badAccounts.join('; ')}`);
    if (bank.missingAcknowledged.length) problems.push(`bank: transfers acknowledged before the cut are missing: ${bank.missingAcknowledged.slice(0, 10)}`);
    if (bank.presentStartedAfterCut.length) problems.push(`bank: transfers started after the cut are present: ${bank.presentStartedAfterCut.slice(0, 10)}`);
    if (!(bank.ackedBeforeCut > 0 && bank.startedAfterCut > 0)) problems.push('bank: the run needs transfers on both sides of the cut');
    const aria = await dst.query<{ n: number; mx: number | null }>('SELECT COUNT(*) AS n, MAX(id) AS mx FROM aria.t');
    const ariaRows = Number(aria[0].n);
    if (Number(aria[0].mx ?? 0) !== ariaRows) problems.push(`aria.t is not a prefix of the inserts: ${ariaRows} rows, max id ${aria[0].mx}`);
    const ariaAcked = loads.aria.acked().filter((a) => a.endMs + 2 < cutAt).length;
    if (ariaRows < ariaAcked) problems.push(`aria.t lost inserts acknowledged before the cut: ${ariaRows} rows, ${ariaAcked} acknowledged`);
    const schema = await readSchema(dst, 'dsm');
    const ddl = checkDdlPrefix(schema, ddlModel.log(), cutAt);
    if (!ddl.ok) problems.push(`the schema is not the DDL model after any statement in [${ddl.candidates}] (closest k=${ddl.k}): ${ddl.diff.join('; ')}`);
    await dst.shutdown();

    diagnostics.push(`data ${(srcBytes / 1e6).toFixed(1)} MB; backup ${(st.bytes_copied / 1e6).toFixed(1)} MB in ${st.files_copied} files, ` +
      `${((st.finished_at! - st.started_at!) / 1000).toFixed(1)} s, mirrored ${(st.bytes_mirrored / 1e6).toFixed(2)} MB, ` +
      `cut stall (reference copy included) ${st.cut_stall_us} us`);
    diagnostics.push(`recovery+start ${dst.readyMs} ms; ${check.tables} tables, ${check.rows} rows checked; bank ${bank.ledgerRows} ` +
      `transfers (${bank.ackedBeforeCut} acknowledged before the cut, ${bank.startedAfterCut} started after); aria ${ariaRows} rows ` +
      `(${ariaAcked} acknowledged before the cut); DDL model: k=${ddl.k} in [${ddl.candidates}] of ${ddlModel.log().length} statements` +
      `${ddl.partialDropDatabase ? ` (DROP DATABASE ${ddl.partialDropDatabase} in flight, partly done)` : ''}`);
    return { problems, diagnostics, cutAt, bytesMirrored: st.bytes_mirrored, bytesCompared: cmp.bytes };
  } finally {
    for (const fn of cleanups.reverse()) await fn().catch((e) => say(`clean-up: ${(e as Error).message}`));
  }
}
