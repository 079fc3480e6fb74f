// hotbackup demo: the whole story in one command, with nothing but `npm install` done.
//
// In an undo journal whose steps are also the demo's clean-up:
//   workdir       a scratch directory                       undo: remove it
//   spawn_server  the bank writer (src/workloads/bank.ts), a Node process under the shim,
//                 writing transfers to SQLite continuously  undo: stop it
//   start_backup  a hot backup of its database directory    undo: cancel it if it runs
// then: progress until the backup is done, stop the writer, open the backup (SQLite crash
// recovery), PRAGMA integrity_check, the bank invariant, every transfer acknowledged before the
// cut present and none started after it (checkBankBackup), a short report; exit 0 only if all hold.
import { mkdtempSync, readdirSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type BackupStatus, request } from '../client.js';
import { Journal, processStartTime } from '../journal.js';
import { requireShimPath } from '../lib-path.js';
import { formatBytes, formatDuration, formatRate, parseRate } from '../units.js';
import { type BankWriter, checkBankBackup, formatBankCheck, startBankWriter } from '../workloads/bank.js';
import { defineCommand, EXIT, jsonOption, UserError } from './command.js';
import { watch } from './start.js';

export default defineCommand({
  examples: [
    ['hotbackup demo', 'the whole story in one command'],
    ['hotbackup demo --journal delete --throttle 1MiB/s', 'rollback-journal mode, a slower copy'],
  ],
  builder: (y) =>
    jsonOption(y)
      .option('journal', { choices: ['wal', 'delete'] as const, default: 'wal' as const, describe: 'SQLite journal mode of the busy database' })
      .option('throttle', { type: 'string', describe: 'copy rate (default: about 3 seconds for the database)', requiresArg: true })
      .option('warmup', { type: 'number', default: 3000, describe: 'transfers committed before the backup starts' })
      .option('keep', { type: 'boolean', default: false, describe: 'keep the scratch directory (database, backup, commit log)' }),
  async run(args, ctx) {
    const shim = (() => {
      try {
        return requireShimPath();
      } catch (e) {
        throw new UserError((e as Error).message, EXIT.INTERNAL, 'not_built');
      }
    })();
    const throttleOpt = args.throttle === undefined ? undefined : parseRate(args.throttle);
    const say = (l: string) => { if (!args.json) ctx.log(l); };
    const catalog = ctx.catalog();
    const j = Journal.begin(catalog, 'demo', ctx.argv, { env: ctx.env, log: (l) => ctx.log(l) });
    let writer: BankWriter | undefined;
    let workdir = '';
    try {
      workdir = await j.step('workdir', { action: 'remove_path', args: { path: '' }, description: 'remove the scratch directory' },
        (h) => {
          const d = mkdtempSync(join(tmpdir(), 'hotbackup-demo-'));
          h.setUndoArgs({ path: d });
          return d;
        });
      const dbDir = join(workdir, 'db');
      const dest = join(workdir, 'backup');
      const socket = join(workdir, 'demo.sock');
      say(`scratch directory ${workdir}${args.keep ? ' (kept)' : ''}`);

      writer = await j.step('spawn_server', { action: 'kill_process', args: {}, description: 'stop the bank writer' },
        async (h) => {
          const w = await startBankWriter({ dbDir, journal: args.journal, shimPath: shim, socketPath: socket });
          h.setUndoArgs({ pid: w.pid, pid_start: processStartTime(w.pid) });
          return w;
        });
      say(`bank writer pid ${writer.pid} runs under ${shim}, socket ${socket}; SQLite ${args.journal} mode`);
      await writer.waitForAcknowledged(args.warmup, 120_000);
      const dbBytes = readdirSync(dbDir).reduce((n, f) => n + statSync(join(dbDir, f)).size, 0);
      const throttle = throttleOpt ?? Math.max(64 * 1024, Math.round(dbBytes / 3));
      say(`${writer.acknowledged()} transfers committed, database ${formatBytes(dbBytes, 'si')}; backing up at ${formatRate(throttle)} while the writes go on`);

      await j.step('start_backup', { action: 'cancel_backup', args: { socket, dest }, description: `cancel the backup to ${dest} if it runs` },
        () => request(socket, { op: 'start', dest, sources: [dbDir], throttle_bytes_per_sec: throttle }));
      const ackAtStart = writer.acknowledged();
      const final: BackupStatus = await watch(args.json ? null : ctx.io.stderr, socket, 1000);
      const ackAtEnd = writer.acknowledged();
      const exit = await writer.stop();
      if (final.state !== 'done') {
        const e = final.error;
        throw new DemoFailure(`the backup ended ${final.state}${e ? `: [${e.code}] ${e.message}${e.path ? ` (${e.path})` : ''}` : ''}`, { status: final });
      }
      const check = checkBankBackup(join(dest, 'bank.db'), writer.commitLogPath, final.cut_at!);
      const report = {
        ok: check.ok,
        backup: {
          bytes: final.bytes_copied, files: final.files_copied, mirrored_bytes: final.bytes_mirrored,
          duration_ms: final.finished_at! - final.started_at!, cut_at: final.cut_at, cut_stall_us: final.cut_stall_us,
          throttle_bytes_per_sec: final.throttle_bytes_per_sec,
        },
        writes: { committed_during_backup: ackAtEnd - ackAtStart, committed_total: exit.lastTxid ?? ackAtEnd },
        check,
        workdir: args.keep ? workdir : null,
      };
      if (args.json) ctx.outJson(report);
      else {
        ctx.out([
          '',
          `hot backup: ${formatBytes(final.bytes_copied, 'si')} in ${final.files_copied} files, ${formatDuration(report.backup.duration_ms / 1000)}, ` +
            `${formatBytes(final.bytes_mirrored, 'si')} of the server's writes mirrored; server stalled ${final.cut_stall_us ?? '?'} µs at the cut`,
          `writes during the backup: ${report.writes.committed_during_backup} transfers committed while it copied`,
          formatBankCheck(check),
          check.ok ? 'RESULT: the backup is a consistent point-in-time image of the busy database'
            : 'RESULT: FAILED, the backup is not consistent (see PROBLEM lines)',
        ].join('\n'));
      }
      if (args.keep) j.commit();
      else await j.cleanup();
      return check.ok ? EXIT.OK : EXIT.BACKUP_FAILED;
    } catch (e) {
      const report = await j.rollback(e);
      for (const s of report.steps) ctx.log(`  clean-up ${s.kind}: ${s.result}`);
      if (e instanceof DemoFailure) {
        if (args.json) ctx.outJson({ ok: false, error: e.message, ...e.details });
        ctx.log(`hotbackup demo: FAILED: ${e.message}`);
        if (writer) ctx.log(`bank writer stderr:\n${writer.stderr().trim()}`);
        return EXIT.BACKUP_FAILED;
      }
      throw e;
    } finally {
      writer?.kill();
    }
  },
});

class DemoFailure extends Error {
  constructor(message: string, readonly details: Record<string, unknown>) {
    super(message);
  }
}
