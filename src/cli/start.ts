// hotbackup start DEST [--source DIR]... [--throttle RATE] [--wait] [--json]
//
// Validates in TypeScript first (the shim validates again), then, in an undo journal:
//   record        the catalog entry           undo: mark it rolled_back
//   create_dest   mkdir DEST (if missing)     undo: remove the directories it created
//   start_backup  the start request           undo: cancel the backup if it still runs
// and commits: from then on the backup belongs to the server, which finishes it on its own.
// With --wait it then shows progress until the backup ends; exit 0 only when it is `done`.
import { chownSync, existsSync, mkdirSync, readdirSync, realpathSync, statSync } from 'node:fs';
import { basename, dirname, isAbsolute, join, relative, resolve, sep } from 'node:path';
import type { SingleBar } from 'cli-progress';
import { type BackupStatus, request, waitForEnd } from '../client.js';
import { withJournal } from '../journal.js';
import { formatBytes, formatDuration, formatRate, parseRate } from '../units.js';
import { defineCommand, EXIT, type Io, jsonOption, socketOption, UserError } from './command.js';
import { isoTime, processOwner, progressLine, removeCreatedDest, serverCwd, serverSocket, waitSettled } from './server.js';

/** The real path of `p`, or of its nearest existing ancestor joined with the missing rest. */
export function realPathLoose(p: string): string {
  const missing: string[] = [];
  let cur = p;
  for (;;) {
    try {
      return join(realpathSync(cur), ...missing.reverse());
    } catch {
      const parent = dirname(cur);
      if (parent === cur) return p;
      missing.push(basename(cur));
      cur = parent;
    }
  }
}

/** a is b or inside b. */
export function isWithin(a: string, b: string): boolean {
  const r = relative(b, a);
  return r === '' || (!r.startsWith('..' + sep) && r !== '..' && !isAbsolute(r));
}

/** The topmost directory of `p` that does not exist yet (what mkdir -p would create first), or null. */
function firstMissing(p: string): string | null {
  let top: string | null = null;
  let cur = p;
  while (!existsSync(cur)) {
    top = cur;
    const parent = dirname(cur);
    if (parent === cur) break;
    cur = parent;
  }
  return top;
}

export interface StartPlan {
  dest: string;
  /** As given (resolved); empty = the server's working directory (the shim's default). */
  sources: string[];
  throttle: number;
}

/** Checks DEST and the sources the way the shim will, with messages that say what to do. */
export function validateStart(plan: StartPlan, defaultSource: string | null): void {
  const { dest } = plan;
  const sources = plan.sources.length ? plan.sources : defaultSource ? [defaultSource] : [];
  for (const src of plan.sources) {
    let st;
    try {
      st = statSync(src);
    } catch {
      throw new UserError(`source ${src} does not exist`, EXIT.USAGE, 'source_missing');
    }
    if (!st.isDirectory()) throw new UserError(`source ${src} is not a directory`, EXIT.USAGE, 'source_missing');
  }
  if (existsSync(dest)) {
    const st = statSync(dest);
    if (!st.isDirectory()) throw new UserError(`destination ${dest} exists and is not a directory`, EXIT.USAGE, 'dest_not_empty');
    const entries = readdirSync(dest);
    if (entries.length) {
      throw new UserError(`destination ${dest} is not empty (${entries.length} entries, e.g. ${entries[0]}): ` +
        'give a new or empty directory', EXIT.USAGE, 'dest_not_empty');
    }
  }
  const realDest = realPathLoose(dest);
  for (const src of sources) {
    const realSrc = realPathLoose(src);
    if (isWithin(realDest, realSrc)) {
      throw new UserError(`destination ${dest} is inside the source ${src}: the backup would copy itself; ` +
        'choose a destination outside every source', EXIT.USAGE, 'dest_in_source');
    }
    if (isWithin(realSrc, realDest)) {
      throw new UserError(`source ${src} is inside the destination ${dest}`, EXIT.USAGE, 'source_in_dest');
    }
  }
}

export default defineCommand({
  examples: [
    ['hotbackup start /backup/2026-11-21', 'back up the server\'s working directory (its datadir)'],
    ['hotbackup start /backup/x --source /var/lib/mysql --throttle 50MB/s --wait', 'one source, at most 50 MB/s, wait for the end'],
    ['hotbackup start /backup/x --json', 'print {id, socket, status} as JSON'],
  ],
  server: true,
  builder: (y) =>
    jsonOption(socketOption(y
      .positional('dest', { type: 'string', demandOption: true, describe: 'new or empty directory for the backup (relative paths are resolved against the current directory)' })
      .option('source', { type: 'string', array: true, describe: 'directory to back up (repeatable; default: the server\'s working directory)' })
      .option('throttle', { type: 'string', describe: 'copy rate limit, e.g. 20MB/s, 512KiB/s, off', requiresArg: true })
      .option('wait', { type: 'boolean', default: false, describe: 'show progress and wait for the end; exit 0 only if the backup is done' })
      .option('interval', { type: 'number', default: 1000, hidden: true, describe: 'milliseconds between plain progress lines' }))),
  async run(args, ctx) {
    if (!args.dest) throw new UserError('DEST is empty: give the directory to write the backup into');
    const throttle = args.throttle === undefined ? 0 : parseRate(args.throttle);
    const plan: StartPlan = {
      dest: resolve(ctx.io.cwd, args.dest),
      sources: (args.source ?? []).map((s) => {
        if (!s) throw new UserError('--source is empty');
        return resolve(ctx.io.cwd, s);
      }),
      throttle,
    };
    if (!isAbsolute(args.dest)) ctx.log(`destination: ${plan.dest}`);
    const socket = serverSocket(ctx, args.socket);
    const before = await request(socket, { op: 'status' });
    if (before.state === 'copying' || before.state === 'finishing') {
      throw new UserError(`a backup is already running on this server (to ${before.dest}); ` +
        'watch it with `hotbackup status --watch` or stop it with `hotbackup cancel`', EXIT.CONFLICT, 'busy');
    }
    validateStart(plan, serverCwd(before.pid));
    const catalog = ctx.catalog();
    let id = 0;
    const started = await withJournal(catalog, 'start', ctx.argv, { env: ctx.env, log: (l) => ctx.log(l) }, async (j) => {
      id = await j.step('record',
        { action: 'mark_backup_rolled_back', args: { journal_id: j.id }, description: 'mark the catalog entry rolled back' },
        () => catalog.addBackup({ socket, server_pid: before.pid, sources: plan.sources, dest: plan.dest,
          throttle_bytes_per_sec: throttle, journal_id: j.id }));
      const top = firstMissing(plan.dest);
      if (top) {
        await j.step('create_dest',
          { action: 'remove_created_dir', args: { path: top }, description: `remove ${top}` },
          () => {
            catalog.setCreatedPath(id, top);
            mkdirSync(plan.dest, { recursive: true, mode: 0o700 });
            // A root CLI creating DEST for a server running as another user (mysql) hands it over.
            const owner = processOwner(before.pid);
            if (process.getuid?.() === 0 && owner && owner.uid !== 0) {
              for (let d = plan.dest; isWithin(d, top); d = dirname(d)) {
                chownSync(d, owner.uid, owner.gid);
                if (d === top) break;
              }
            }
          });
      }
      return j.step('start_backup',
        { action: 'cancel_backup', args: { socket, dest: plan.dest }, description: `cancel the backup to ${plan.dest} if it runs` },
        async () => {
          const s = await request(socket, {
            op: 'start', dest: plan.dest, throttle_bytes_per_sec: throttle,
            ...(plan.sources.length ? { sources: plan.sources } : {}),
          });
          catalog.updateFromStatus(id, s, s.state === 'idle' ? 'starting' : s.state);
          return s;
        });
    });
    if (!args.wait) {
      if (args.json) ctx.outJson({ id, socket, status: started });
      else {
        ctx.out(`started backup #${id} of ${started.sources.join(', ') || '(server cwd)'} into ${started.dest}` +
          ` (throttle ${formatRate(started.throttle_bytes_per_sec)})`);
        ctx.log('follow it with `hotbackup status --watch`; change the rate with `hotbackup throttle RATE`');
      }
      return EXIT.OK;
    }
    let final = await watch(ctx.io.stderr, socket, args.interval);
    if (final.state !== 'done') {
      final = await waitSettled(socket, final);
      removeCreatedDest(catalog.getBackup(id));
    }
    catalog.updateFromStatus(id, final);
    if (args.json) ctx.outJson({ id, socket, status: final });
    else ctx.out(summary(id, final));
    if (final.state !== 'done') {
      const e = final.error;
      ctx.log(`backup #${id} ${final.state}${e ? `: [${e.code}] ${e.message}${e.path ? ` (${e.path})` : ''}` : ''}`);
      return EXIT.BACKUP_FAILED;
    }
    return EXIT.OK;
  },
});

/** Waits for the end: a progress bar on a terminal, a line every `interval` ms otherwise, on
 *  `stderr` (null: silent). */
export async function watch(stderr: Io['stderr'] | null, socket: string, interval: number): Promise<BackupStatus> {
  const tty = Boolean(stderr?.isTTY);
  const cliProgress = tty ? (await import('cli-progress')).default : null;
  let bar: SingleBar | undefined;
  let lastLine = 0;
  let lastState = '';
  try {
    return await waitForEnd(socket, (s) => {
      if (!stderr) return;
      if (cliProgress) {
        if (!bar) {
          bar = new cliProgress.SingleBar({
            stream: stderr as NodeJS.WritableStream,
            format: '{phase} [{bar}] {percentage}% | {copied} of {totalh} | {rate}/s | ETA {etah} | {files} files',
            hideCursor: true,
            clearOnComplete: false,
          }, cliProgress.Presets.shades_classic);
          bar.start(Math.max(1, s.bytes_total), 0, payload(s));
        }
        const total = Math.max(1, s.bytes_total, s.bytes_copied);
        bar.setTotal(total);
        bar.update(s.state === 'done' ? total : s.bytes_copied, payload(s));
      } else {
        const now = Date.now();
        if (now - lastLine >= interval || s.state !== lastState) {
          stderr.write(progressLine(s) + '\n');
          lastLine = now;
          lastState = s.state;
        }
      }
    });
  } finally {
    bar?.stop();
  }
}

function payload(s: BackupStatus): Record<string, string> {
  return {
    phase: s.state.padEnd(9), copied: formatBytes(s.bytes_copied, 'si'), totalh: formatBytes(s.bytes_total, 'si'),
    rate: formatBytes(Math.round(s.rate_bytes_per_sec), 'si'), etah: formatDuration(s.eta_seconds),
    files: `${s.files_copied}/${s.files_total}`,
  };
}

export function summary(id: number, s: BackupStatus): string {
  const dur = s.started_at && s.finished_at ? formatDuration((s.finished_at - s.started_at) / 1000) : '-';
  const lines = [
    `backup #${id} ${s.state}: ${s.dest}`,
    `  size      ${formatBytes(s.bytes_copied, 'si')} (${s.bytes_copied} B) in ${s.files_copied} files (${s.files_total} found at start)`,
    `  mirrored  ${formatBytes(s.bytes_mirrored, 'si')} (${s.bytes_mirrored} B) of the server's writes during the copy`,
    `  duration  ${dur}, started ${isoTime(s.started_at)}`,
    `  cut       ${isoTime(s.cut_at)}${s.cut_stall_us != null ? ` (server stalled ${s.cut_stall_us} µs)` : ''}`,
  ];
  if (s.manifest) lines.push(`  manifest  ${s.manifest}`);
  if (s.error) lines.push(`  error     [${s.error.code}] ${s.error.message}${s.error.path ? ` (${s.error.path})` : ''}`);
  return lines.join('\n');
}
