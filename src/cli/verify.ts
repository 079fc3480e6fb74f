// hotbackup verify DEST [--json] [--pages]: checks a backup against its manifest (src/verify.ts).
// Exit 0 only when everything verifies; 1 when anything does not, or when the backup is
// incomplete (no manifest); 2 when DEST is not a directory.
import { statSync } from 'node:fs';
import { resolve } from 'node:path';
import type { SingleBar } from 'cli-progress';
import { AddonLoadError } from '../addon.js';
import { Journal } from '../journal.js';
import type { RestoreTestReport } from '../mariadb/restore-test.js';
import { formatBytes, formatDuration } from '../units.js';
import { verifyBackup, type VerifyProblem, type VerifyReport } from '../verify.js';
import { defineCommand, EXIT, jsonOption, UserError } from './command.js';
import { isoTime } from './server.js';

/** The human form of a report. */
export function formatReport(r: VerifyReport): string {
  const c = r.checked;
  const rate = r.duration_ms >= 100 ? `, ${formatBytes(r.bytes_per_sec)}/s` : '';
  const what = `${c.files} files (${formatBytes(c.bytes)}), ${c.dirs} directories, ${c.symlinks} symlinks`;
  const pages = c.innodb
    ? `; ${c.innodb.pages} InnoDB pages in ${c.innodb.tablespaces} tablespaces` +
      (c.innodb.skipped_pages ? ` (${c.innodb.skipped_pages} page_compressed/encrypted pages not checkable here)` : '')
    : '';
  if (r.status === 'incomplete') return `INCOMPLETE ${r.dest}\n  ${r.problems[0].message}`;
  const head = r.status === 'verified'
    ? `verified ${r.dest}: ${what}${pages} match the manifest (cut ${isoTime(r.manifest?.cut_at)}) in ${formatDuration(r.duration_ms / 1000)}${rate}`
    : `FAILED ${r.dest}: ${r.problems.length} problem${r.problems.length === 1 ? '' : 's'} (checked ${what}${pages})`;
  return [head, ...r.problems.map(problemLine)].join('\n');
}

function problemLine(p: VerifyProblem): string {
  return `  ${p.kind.padEnd(17)} ${p.message}`;
}

export default defineCommand({
  examples: [
    ['hotbackup verify /backup/2026-11-21', 'manifest intact, every file present with its size and checksum, nothing extra'],
    ['hotbackup verify /backup/2026-11-21 --pages', 'also check every page of every InnoDB tablespace'],
    ['hotbackup verify /backup/x --json', 'the report as one JSON document (status, problems, counts)'],
    ['hotbackup verify /backup/x --restore-test', 'also start a throwaway mariadbd on a scratch copy and CHECK TABLE everything'],
  ],
  builder: (y) =>
    jsonOption(y
      .positional('dest', { type: 'string', demandOption: true, describe: 'the backup directory' })
      .option('pages', { type: 'boolean', default: false, describe: 'check every page of InnoDB tablespaces (*.ibd, ibdata*, undo*)' })
      .option('threads', { type: 'number', describe: 'reader threads (default: the number of CPUs, at least 4)', requiresArg: true })
      .option('restore-test', { type: 'boolean', default: false,
        describe: 'MariaDB: restore into a scratch copy, let crash recovery run on a throwaway server, CHECK TABLE every table' })),
  async run(args, ctx) {
    if (!args.dest) throw new UserError('DEST is empty: give the backup directory to verify');
    const dest = resolve(ctx.io.cwd, args.dest);
    let st;
    try {
      st = statSync(dest);
    } catch {
      throw new UserError(`${dest} does not exist`, EXIT.USAGE, 'dest_missing');
    }
    if (!st.isDirectory()) throw new UserError(`${dest} is not a directory: give the backup's directory`, EXIT.USAGE, 'dest_missing');
    if (args.threads !== undefined && !(Number.isInteger(args.threads) && args.threads >= 1 && args.threads <= 256)) {
      throw new UserError('--threads must be an integer from 1 to 256', EXIT.USAGE);
    }

    const stderr = ctx.io.stderr;
    // Loaded only for a terminal: every millisecond of start-up counts against a warm verify.
    const cliProgress = stderr.isTTY && !args.json ? (await import('cli-progress')).default : null;
    let bar: SingleBar | undefined;
    const report = await (async () => {
      try {
        return await verifyBackup(dest, {
          pages: args.pages,
          threads: args.threads,
          onProgress: cliProgress
            ? (p) => {
              if (!bar) {
                bar = new cliProgress.SingleBar({
                  stream: stderr as NodeJS.WritableStream,
                  format: 'verify [{bar}] {percentage}% | {done} of {total_h} | {files}/{files_total} files | ETA {eta_formatted}',
                  hideCursor: true,
                  clearOnComplete: true,
                }, cliProgress.Presets.shades_classic);
                bar.start(Math.max(1, p.bytesTotal), 0, { done: '0 B', total_h: formatBytes(p.bytesTotal), files: 0, files_total: p.filesTotal });
              }
              bar.update(Math.min(p.bytes, Math.max(1, p.bytesTotal)), {
                done: formatBytes(p.bytes), total_h: formatBytes(p.bytesTotal), files: p.files, files_total: p.filesTotal,
              });
            }
            : undefined,
        });
      } catch (e) {
        if (e instanceof AddonLoadError) throw new UserError(e.message, EXIT.INTERNAL, e.code);
        throw e;
      } finally {
        bar?.stop();
      }
    })();

    // The restore test only makes sense on a backup whose files verified.
    let restore: RestoreTestReport | null = null;
    if (args.restoreTest && report.status === 'verified') {
      const j = Journal.begin(ctx.catalog(), 'verify', ctx.argv, { env: ctx.env, log: (l) => ctx.log(l) });
      try {
        const { restoreTest } = await import('../mariadb/restore-test.js');
        restore = await restoreTest(dest, { journal: j, log: (l) => ctx.log(l) });
      } catch (e) {
        await j.rollback(e);
        throw new UserError(`restore test: ${(e as Error).message}`, EXIT.INTERNAL, 'restore_test');
      }
      await j.cleanup();  // the scratch copy and the throwaway server are gone either way
    }
    const ok = report.status === 'verified' && (!args.restoreTest || restore?.ok === true);

    if (args.json) ctx.outJson(args.restoreTest ? { ...report, restore_test: restore } : report);
    else if (report.status === 'verified') {
      ctx.out(formatReport(report));
      if (restore) {
        ctx.out(restore.ok
          ? `restore test: mariadbd recovered the backup in ${formatDuration(restore.recovery_ms / 1000)}; CHECK TABLE ok on ${restore.tables} tables (${restore.rows} rows)`
          : ['restore test FAILED:', ...restore.problems.map((p) => `  ${p}`)].join('\n'));
      }
    }
    else {
      ctx.out(formatReport(report));
      ctx.log(report.status === 'incomplete'
        ? `hotbackup: ${dest} is an incomplete backup: not verified`
        : `hotbackup: ${dest} did not verify: ${report.problems.length} problem${report.problems.length === 1 ? '' : 's'}`);
    }
    return ok ? EXIT.OK : EXIT.BACKUP_FAILED;
  },
});
