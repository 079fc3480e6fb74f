// hotbackup restore BACKUP TARGET [--move] [--owner USER] [--recover] [--print-replication]
//
// Checks the backup (manifest present, its CRC32C, every entry present with its size), refuses a
// non-empty target, copies (or moves) the files with their modes, chowns with --owner, leaves the
// hotbackup_* files out; every step goes through the undo journal, so a restore killed half way
// is rolled back by the next hotbackup command. --recover runs MariaDB's crash recovery on the
// target now (a throwaway mariadbd, shut down cleanly); --print-replication (implies --recover)
// prints the coordinates and CHANGE MASTER TO statements a replica seeded from it starts with.
import { resolve } from 'node:path';
import { Journal } from '../journal.js';
import {
  BackupCheckError, finishMove, recoverDatadir, type RecoverReport, resolveOwner, restoreBackup, TargetNotEmptyError,
} from '../restore.js';
import { formatBytes, formatDuration } from '../units.js';
import { defineCommand, EXIT, jsonOption, UserError } from './command.js';

export default defineCommand({
  examples: [
    ['hotbackup restore /backup/mon /var/lib/mysql-new --owner mysql --recover', 'copy, chown, run InnoDB recovery now'],
    ['hotbackup restore /backup/mon /var/lib/mysql-new --move', 'move the files out of the backup (same file system)'],
    ['hotbackup restore /backup/mon /srv/replica --print-replication', 'also print CHANGE MASTER TO for a new replica'],
    ['hotbackup restore /backup/mon /srv/db --map data=/srv/db/data --map redo=/srv/db/redo', 'a backup of several source directories, each to its place'],
  ],
  builder: (y) =>
    jsonOption(y)
      .positional('backup', { type: 'string', describe: 'a complete backup (holds hotbackup_manifest.json)', demandOption: true })
      .positional('target', { type: 'string', describe: 'the new data directory (absent or empty)', demandOption: true })
      .option('map', { type: 'string', array: true, requiresArg: true,
        describe: 'backup of several sources: restore source NAME (its subdirectory in the backup) into DIR, as NAME=DIR (repeatable); unmapped ones go to TARGET/NAME' })
      .option('move', { type: 'boolean', default: false, describe: 'move the files instead of copying them (the backup is used up)' })
      .option('owner', { type: 'string', requiresArg: true, describe: 'chown everything to USER (name, uid or uid:gid), e.g. mysql' })
      .option('recover', { type: 'boolean', default: false, describe: 'start a throwaway mariadbd on the target so crash recovery runs now' })
      .option('print-replication', { type: 'boolean', default: false, describe: 'print binlog coordinates, gtid_binlog_pos and CHANGE MASTER TO (implies --recover)' })
      .option('mariadbd-arg', { type: 'string', array: true, requiresArg: true, describe: 'extra option for the recovery mariadbd (repeatable), e.g. --mariadbd-arg=--innodb-page-size=32k' }),
  async run(args, ctx) {
    const say = (l: string) => { if (!args.json) ctx.log(l); };
    let owner = null;
    if (args.owner) {
      try {
        owner = resolveOwner(args.owner);
      } catch (e) {
        throw new UserError(`--owner: ${(e as Error).message}`);
      }
    }
    const map: Record<string, string> = {};
    for (const m of (args.map as string[] | undefined) ?? []) {
      const eq = m.indexOf('=');
      if (eq <= 0 || eq === m.length - 1) throw new UserError(`--map ${m}: expected NAME=DIR, e.g. --map redo=/srv/db/redo`);
      map[m.slice(0, eq)] = resolve(ctx.io.cwd, m.slice(eq + 1));
    }
    const recover = args.recover || args.printReplication;
    const catalog = ctx.catalog();
    const j = Journal.begin(catalog, 'restore', ctx.argv, { env: ctx.env, log: (l) => ctx.log(l) });
    let report;
    let rec: RecoverReport | null = null;
    try {
      report = await restoreBackup({ backup: args.backup!, target: resolve(ctx.io.cwd, args.target!), map, move: args.move, owner, journal: j, log: say });
      say(`restored ${report.files} files (${formatBytes(report.bytes)}), ${report.dirs} directories into ${report.target} ` +
        `in ${formatDuration(report.duration_ms / 1000)}${report.moved ? ' (moved)' : ''}`);
      if (recover) {
        say('running crash recovery on the target (throwaway mariadbd, no networking)...');
        rec = await recoverDatadir(report.target, {
          owner, replication: args.printReplication, journal: j, extraArgs: args.mariadbdArg as string[] | undefined,
        });
        say(`crash recovery done in ${formatDuration(rec.recovery_ms / 1000)}, clean shutdown in ${formatDuration(rec.shutdown_ms / 1000)}`);
      }
    } catch (e) {
      const rb = await j.rollback(e);
      for (const s of rb.steps) ctx.log(`  undo ${s.kind}: ${s.result}`);
      if (e instanceof BackupCheckError) throw new UserError(`cannot restore: ${e.message} [${e.code}]`, EXIT.BACKUP_FAILED, e.code);
      if (e instanceof TargetNotEmptyError) throw new UserError(e.message, EXIT.USAGE, 'target_not_empty');
      throw e;
    }
    j.commit();
    if (args.move) finishMove(args.backup!);
    const repl = rec?.replication ?? null;
    if (args.json) {
      ctx.outJson({ restore: report, recovery: rec ? { recovery_ms: rec.recovery_ms, shutdown_ms: rec.shutdown_ms } : null, replication: repl });
    } else if (repl) {
      ctx.out([
        `binlog file      ${repl.binlog_file ?? '-'}`,
        `binlog position  ${repl.binlog_pos ?? '-'}`,
        `gtid_binlog_pos  ${repl.gtid_binlog_pos ?? '-'}`,
        '',
        '-- on the new replica, GTID based:',
        repl.change_master_gtid ?? '-- (no GTID position)',
        '',
        '-- or file/position based:',
        repl.change_master_file_pos ?? '-- (no binlog in the backup)',
      ].join('\n'));
    } else {
      ctx.out(`restored ${report.target} from ${report.backup} (cut ${new Date(report.cut_at).toISOString()})`);
    }
    return EXIT.OK;
  },
});
