// The restore test behind `hotbackup verify BACKUP --restore-test`: restores the backup into a
// scratch directory, starts a throwaway mariadbd on it (own socket, no networking; binlog writes
// go to the scratch copy, never to the backup), lets crash recovery run, runs CHECK TABLE on every
// table of every database, reports tables, rows and recovery time, stops the server and removes
// the scratch copy. Every step is in the undo journal, so a killed run leaves nothing behind.
import { mkdtempSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Journal } from '../journal.js';
import { restoreBackup } from '../restore.js';
import { binlogBasename, checkAllTables, findMariadb, MariadbStartError, MariaServer, type MariadbInstall } from './server.js';

export interface RestoreTestReport {
  ok: boolean;
  /** Why not ok: the server did not start, or CHECK TABLE messages. */
  problems: string[];
  tables: number;
  rows: number;
  /** From spawn until the server answered (crash recovery included). */
  recovery_ms: number;
  /** The error log of the throwaway server (for a report when it failed). */
  error_log: string;
}

export async function restoreTest(backup: string, opts: {
  journal: Journal;
  install?: MariadbInstall | null;
  scratchParent?: string;
  extraArgs?: string[];
  log?: (l: string) => void;
}): Promise<RestoreTestReport> {
  const install = opts.install ?? findMariadb();
  if (!install) throw new Error('mariadbd is not installed: the restore test needs it (apt-get install mariadb-server)');
  const j = opts.journal;
  const log = opts.log ?? (() => {});
  const scratch = await j.step('restore_test_scratch', { action: 'remove_path', args: { path: '' }, description: 'remove the scratch copy' },
    (h) => {
      const d = mkdtempSync(join(opts.scratchParent ?? tmpdir(), 'hotbackup-restore-test-'));
      h.setUndoArgs({ path: d });
      return d;
    });
  const data = join(scratch, 'data');
  await restoreBackup({ backup, target: data, journal: j, log });
  const binlog = binlogBasename(data, readdirSync(data));
  let srv: MariaServer;
  try {
    srv = await j.step('restore_test_server', { action: 'kill_process', args: {}, description: 'stop the restore-test mariadbd' },
      async (h) => {
        const s = await MariaServer.start({ install, datadir: data, runDir: join(scratch, 'run'), name: 'restore-test',
          binlog, serverId: binlog ? 1 : undefined, extraArgs: opts.extraArgs });
        h.setUndoArgs({ pid: s.pid, pid_start: null });
        return s;
      });
  } catch (e) {
    if (e instanceof MariadbStartError) {
      return { ok: false, problems: [`mariadbd did not start on the restored backup: ${e.message.split('\n')[0]}`], tables: 0, rows: 0,
        recovery_ms: 0, error_log: e.errorLog };
    }
    throw e;
  }
  try {
    log(`restore test: server up after ${srv.readyMs} ms (crash recovery included); CHECK TABLE on every table...`);
    let check;
    try {
      check = await checkAllTables(srv);
    } catch (e) {
      check = { tables: 0, rows: 0, problems: [`the checks failed: ${(e as Error).message}${srv.running ? '' : ' (the server died)'}`] };
    }
    const errorLog = srv.errorLog();
    if (srv.running) {
      try {
        await srv.shutdown();
      } catch (e) {
        check.problems.push((e as Error).message.split('\n')[0]);
      }
    } else {
      check.problems.push(`mariadbd died during the checks (${JSON.stringify(srv.exitStatus)})`);
    }
    return { ok: check.problems.length === 0, problems: check.problems, tables: check.tables, rows: check.rows,
      recovery_ms: srv.readyMs, error_log: errorLog };
  } finally {
    if (srv.running) await srv.kill();
  }
}
