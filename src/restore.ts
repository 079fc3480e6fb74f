// Restore: a complete backup directory → a database's data directory.
//
// 1. checkBackup(): the backup verifies exactly as `hotbackup verify` checks it (src/verify.ts).
// 2. The target must be absent or an empty directory.
// 3. In the undo journal (src/journal.ts), so a restore killed half way is rolled back by the
//    next hotbackup run: create the target (undo: remove it, or empty it if it existed), copy
//    every entry (or, with --move, rename it; undo: move it back), restore modes, chown to
//    --owner, fsync files and directories. The backup's own hotbackup_* files are left out.
// 4. Optionally (--recover) a throwaway mariadbd runs crash recovery on the target now and is
//    shut down cleanly; it also reads the replication coordinates (--print-replication).
import {
  chmodSync, closeSync, copyFileSync, existsSync, fsyncSync, lchownSync, lstatSync, mkdirSync, mkdtempSync, openSync,
  readdirSync, readFileSync, readlinkSync, renameSync, rmSync, symlinkSync,
} from 'node:fs';
import { open } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, relative, resolve, sep } from 'node:path';
import type { Journal } from './journal.js';
import {
  type Manifest, MANIFEST_NAME, type ManifestEntry, parseManifest, type ProblemKind, verifyBackup, type VerifyProblem,
} from './verify.js';
import { registerUndo } from './journal.js';
import {
  binlogBasename, findMariadb, MariaServer, type MariadbInstall,
} from './mariadb/server.js';

/** Why a backup cannot be restored; `code` is stable for scripts. */
export class BackupCheckError extends Error {
  constructor(readonly code: string, message: string, readonly path?: string) {
    super(message);
  }
}

// The verifier's problem kinds, most telling first, and the codes restore reports for them.
const CHECK_CODES: [ProblemKind, string][] = [
  ['incomplete', 'no_manifest'], ['manifest_checksum', 'manifest_crc'], ['manifest_invalid', 'bad_manifest'],
  ['missing', 'missing_entry'], ['type', 'wrong_type'], ['size', 'wrong_size'], ['checksum', 'wrong_checksum'],
  ['symlink_target', 'wrong_symlink'], ['mode', 'wrong_mode'], ['unreadable', 'unreadable'], ['unlisted', 'unlisted_entry'],
];

/**
 * The check restore runs before it touches anything: the whole verification of
 * `hotbackup verify` (manifest intact, every entry present with its type, mode, size and
 * CRC32C, nothing unlisted). Resolves to the manifest; throws BackupCheckError.
 */
export async function checkBackup(backupDir: string): Promise<Manifest> {
  const report = await verifyBackup(backupDir);
  if (report.status !== 'verified') {
    const ranked = CHECK_CODES.map(([kind, code]) => ({ code, p: report.problems.find((x) => x.kind === kind) }))
      .find((r) => r.p) ?? { code: report.problems[0]?.kind ?? 'unverified', p: report.problems[0] };
    const more = report.problems.length > 1 ? ` (and ${report.problems.length - 1} more problem(s): hotbackup verify lists them)` : '';
    throw new BackupCheckError(ranked.code, `${backupDir} does not verify: ${ranked.p?.message ?? report.status}${more}`,
      ranked.p?.path ? join(backupDir, ranked.p.path) : undefined);
  }
  const problems: VerifyProblem[] = [];
  const m = parseManifest(readFileSync(join(backupDir, MANIFEST_NAME)), problems);
  if (!m) throw new BackupCheckError('bad_manifest', problems[0]?.message ?? 'unreadable manifest');
  return m;
}

// ---- owner -------------------------------------------------------------------------------

/** `USER`, `UID` or `UID:GID` → ids (from /etc/passwd for names). */
export function resolveOwner(spec: string): { uid: number; gid: number; name: string } {
  const num = /^(\d+)(?::(\d+))?$/.exec(spec);
  let passwd = '';
  try {
    passwd = readFileSync('/etc/passwd', 'utf8');
  } catch { /* numeric only */ }
  const rows = passwd.split('\n').map((l) => l.split(':')).filter((f) => f.length >= 4);
  if (num) {
    const uid = Number(num[1]);
    const row = rows.find((f) => Number(f[2]) === uid);
    const gid = num[2] !== undefined ? Number(num[2]) : row ? Number(row[3]) : uid;
    return { uid, gid, name: row?.[0] ?? String(uid) };
  }
  const row = rows.find((f) => f[0] === spec);
  if (!row) throw new Error(`no such user: ${spec}`);
  return { uid: Number(row[2]), gid: Number(row[3]), name: spec };
}

// ---- undo actions --------------------------------------------------------------------------

/** Removes what a restore put into a target that existed (empty) before: its contents, not itself. */
registerUndo('restore_empty_dir', ({ path }: { path: string }) => {
  if (!existsSync(path)) return `${path} does not exist`;
  const names = readdirSync(path);
  for (const n of names) rmSync(join(path, n), { recursive: true, force: true });
  return `emptied ${path} (${names.length} entries removed)`;
});

/** Moves a file moved by `restore --move` back into the backup. */
registerUndo('restore_move_back', ({ from, to }: { from: string; to: string }) => {
  if (existsSync(to) || !lexists(from)) return `${to} is in place`;
  mkdirSync(dirname(to), { recursive: true });
  renameSync(from, to);
  return `moved ${from} back to ${to}`;
});

/** Renames the backup's manifest back (a --move hides it while the backup is being taken apart). */
registerUndo('restore_unhide_manifest', ({ hidden, path }: { hidden: string; path: string }) => {
  if (existsSync(path) || !existsSync(hidden)) return `${path} is in place`;
  renameSync(hidden, path);
  return `renamed ${hidden} back to ${path}`;
});

function lexists(p: string): boolean {
  try {
    lstatSync(p);
    return true;
  } catch {
    return false;
  }
}

// ---- restore --------------------------------------------------------------------------------

export interface RestoreOptions {
  backup: string;
  /** Where a one-source backup goes; for a backup of several sources, the directory that
   *  receives each source's subdirectory unless `map` sends it elsewhere. */
  target: string;
  /** Backup subdirectory name (the manifest's `sources[].dest`) → absolute target directory. */
  map?: Record<string, string>;
  move?: boolean;
  owner?: { uid: number; gid: number } | null;
  journal: Journal;
  log?: (line: string) => void;
}

export interface RestoreReport {
  backup: string;
  target: string;
  /** Every source directory of the backup and where it was restored. */
  places: { source: string; dest: string; target: string }[];
  moved: boolean;
  files: number;
  dirs: number;
  symlinks: number;
  bytes: number;
  cut_at: number;
  duration_ms: number;
}

/** fsyncs files a few at a time: each fsync waits for its file's writeback, and the disk serves
 *  several such waits at once far better than one after another. */
async function fsyncAll(paths: string[], parallel = 8): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < paths.length) {
      const fh = await open(paths[next++], 'r');
      try {
        await fh.sync();
      } finally {
        await fh.close();
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(parallel, paths.length) }, worker));
}

function fsyncPath(p: string): void {
  const fd = openSync(p, 'r');
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

export class TargetNotEmptyError extends Error {}

/** The top-most missing directory of p (what mkdir -p creates first), or null. */
function firstMissing(p: string): string | null {
  let top: string | null = null;
  for (let cur = p; !existsSync(cur); cur = dirname(cur)) {
    top = cur;
    if (dirname(cur) === cur) break;
  }
  return top;
}

/** One source directory of the backup and the directory it is restored into. */
interface Place {
  source: string;
  /** Its subdirectory in the backup ('' when the backup is that one source). */
  prefix: string;
  target: string;
}

/** Where each source directory of the backup goes (README: "restore"). */
export function restorePlaces(m: Manifest, target: string, map: Record<string, string> = {}): Place[] {
  const sources = m.sources?.length ? m.sources : [{ path: '', dest: '.' }];
  const known = new Set(sources.map((s) => s.dest));
  for (const name of Object.keys(map)) {
    if (!known.has(name)) {
      throw new TargetNotEmptyError(`--map ${name}=...: the backup has no source directory named ${name} ` +
        `(it has: ${[...known].join(', ')})`);
    }
  }
  const places = sources.map((s) => {
    const prefix = s.dest === '.' ? '' : s.dest;
    return { source: s.path, prefix, target: resolve(map[s.dest] ?? (prefix ? join(target, prefix) : target)) };
  });
  for (const a of places) {
    for (const b of places) {
      if (a !== b && (a.target === b.target || a.target.startsWith(b.target + sep))) {
        throw new TargetNotEmptyError(`two source directories would be restored into one place: ${a.target} and ${b.target}`);
      }
    }
  }
  return places;
}

/** Absent, or an empty directory: prepared in the journal (undo: remove or empty it again). */
async function prepareTarget(target: string, j: Journal): Promise<void> {
  if (existsSync(target)) {
    const st = lstatSync(target);
    if (!st.isDirectory()) throw new TargetNotEmptyError(`the target ${target} exists and is not a directory`);
    const names = readdirSync(target);
    if (names.length) {
      throw new TargetNotEmptyError(`the target ${target} is not empty (${names.length} entries, e.g. ${names[0]}); ` +
        'restore into a new or empty directory');
    }
    await j.step('prepare_target', { action: 'restore_empty_dir', args: { path: target }, description: `empty ${target} again` },
      () => undefined);
  } else {
    const top = firstMissing(target)!;
    await j.step('create_target', { action: 'remove_created_dir', args: { path: top }, description: `remove ${top}` },
      () => { mkdirSync(target, { recursive: true, mode: 0o700 }); });
  }
}

export async function restoreBackup(o: RestoreOptions): Promise<RestoreReport> {
  const t0 = Date.now();
  const backup = resolve(o.backup);
  const log = o.log ?? (() => {});
  const j = o.journal;
  const m = await checkBackup(backup);
  log(`backup ${backup}: verified (${m.entries.length} entries, cut at ${m.cut_at ? new Date(m.cut_at).toISOString() : 'unknown'})`);
  const places = restorePlaces(m, o.target, o.map);
  for (const p of places) {
    const rel = relative(backup, p.target);
    if (rel === '' || (!rel.startsWith('..') && !rel.startsWith(sep))) {
      throw new TargetNotEmptyError(`the target ${p.target} is inside the backup ${backup}`);
    }
  }
  for (const p of places) await prepareTarget(p.target, j);

  // Every entry with the place it belongs to and its path there ('' = the place's top).
  const located = [...m.entries]
    .sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0))
    .map((e) => {
      const p = places.find((x) => !x.prefix || e.path === x.prefix || e.path.startsWith(x.prefix + '/'));
      if (!p) throw new BackupCheckError('bad_path', `${e.path} is in none of the backup's source directories`, join(backup, e.path));
      const inner = p.prefix ? e.path.slice(p.prefix.length + 1) : e.path;
      return { e, place: p, dst: inner ? join(p.target, inner) : p.target };
    });

  const manifestPath = join(backup, MANIFEST_NAME);
  const hidden = join(backup, `${MANIFEST_NAME}.restoring`);
  if (o.move) {
    // While files leave the backup it must not look complete.
    await j.step('hide_manifest', { action: 'restore_unhide_manifest', args: { hidden, path: manifestPath },
      description: `rename ${hidden} back to ${manifestPath}` }, () => renameSync(manifestPath, hidden));
  }

  let files = 0;
  let dirs = 0;
  let symlinks = 0;
  let bytes = 0;
  // Directories first (parents sort before children), each created private until its mode is set.
  for (const { e, dst } of located) {
    if (e.type === 'dir') {
      mkdirSync(dst, { recursive: true, mode: 0o700 });
      dirs++;
    }
  }
  const written: string[] = []; // files copied or moved, fsynced together once all are written
  const copyOne = async (e: ManifestEntry, dst: string) => {
    const src = join(backup, e.path);
    if (e.type === 'symlink') {
      symlinkSync(e.target ?? readlinkSync(src), dst);
      symlinks++;
      return;
    }
    if (o.move) {
      await j.step('move_file', { action: 'restore_move_back', args: { from: dst, to: src }, description: `move ${dst} back to ${src}` },
        () => {
          try {
            renameSync(src, dst);
          } catch (err) {
            if ((err as NodeJS.ErrnoException).code === 'EXDEV') {
              throw new Error(`--move needs the backup and the target on one file system (${src} → ${dst}: EXDEV); restore without --move`);
            }
            throw err;
          }
        });
    } else {
      copyFileSync(src, dst);
    }
    chmodSync(dst, e.mode & 0o7777);
    if (o.owner) lchownSync(dst, o.owner.uid, o.owner.gid);
    written.push(dst);
    files++;
    bytes += e.size ?? 0;
  };
  for (const p of places) {
    const rest = located.filter((x) => x.place === p && x.e.type !== 'dir');
    if (o.move) {
      for (const x of rest) await copyOne(x.e, x.dst);
    } else {
      // One step per place for the whole copy: its undo empties the target (which held nothing before).
      await j.step('copy_files', { action: 'restore_empty_dir', args: { path: p.target }, description: `empty ${p.target}` },
        async () => { for (const x of rest) await copyOne(x.e, x.dst); });
    }
  }
  await fsyncAll(written);
  // Modes and owners of directories last (a read-only directory would refuse its children), then fsync.
  for (const { e, dst } of [...located].reverse()) {
    if (e.type === 'dir') {
      chmodSync(dst, e.mode & 0o7777);
      if (o.owner) lchownSync(dst, o.owner.uid, o.owner.gid);
      fsyncPath(dst);
    } else if (e.type === 'symlink' && o.owner) {
      lchownSync(dst, o.owner.uid, o.owner.gid);
    }
  }
  for (const p of places) {
    if (o.owner) lchownSync(p.target, o.owner.uid, o.owner.gid);
    fsyncPath(p.target);
    fsyncPath(dirname(p.target));
  }
  return {
    backup, target: places[0].target, places: places.map((p) => ({ source: p.source, dest: p.prefix || '.', target: p.target })),
    moved: !!o.move, files, dirs, symlinks, bytes, cut_at: m.cut_at ?? 0, duration_ms: Date.now() - t0,
  };
}

/** After a successful --move: the emptied backup keeps its hidden manifest renamed to say so. */
export function finishMove(backup: string): void {
  const hidden = join(resolve(backup), `${MANIFEST_NAME}.restoring`);
  if (existsSync(hidden)) renameSync(hidden, join(resolve(backup), 'hotbackup_moved_manifest.json'));
}

// ---- recovery and replication coordinates ---------------------------------------------------

export interface ReplicationInfo {
  /** The source's binlog coordinates at the cut: the last binlog file in the backup and the end of its last event. */
  binlog_file: string | null;
  binlog_pos: number | null;
  /** @@gtid_binlog_pos of the recovered server. */
  gtid_binlog_pos: string | null;
  change_master_gtid: string | null;
  change_master_file_pos: string | null;
}

export interface RecoverReport {
  recovery_ms: number;
  shutdown_ms: number;
  innodb_recovered: boolean;
  replication: ReplicationInfo | null;
  error_log: string;
}

/** Starts a throwaway mariadbd on `datadir` so crash recovery runs now, optionally reads the
 *  replication coordinates, and shuts it down cleanly. */
export async function recoverDatadir(datadir: string, opts: {
  install?: MariadbInstall | null;
  owner?: { uid: number; gid: number; name: string } | null;
  extraArgs?: string[];
  replication?: boolean;
  journal?: Journal;
}): Promise<RecoverReport> {
  const install = opts.install ?? findMariadb();
  if (!install) throw new Error('mariadbd is not installed: cannot run crash recovery (--recover)');
  const names = readdirSync(datadir);
  const binlog = binlogBasename(datadir, names);
  const binlogFiles = binlog
    ? readFileSync(join(datadir, `${binlog}.index`), 'utf8').split('\n').map((l) => l.trim()).filter(Boolean).map((l) => l.replace(/^.*\//, ''))
    : [];
  const runDir = mkdtempSync(join(tmpdir(), 'hotbackup-recover-'));
  const extra = [...(opts.extraArgs ?? [])];
  // Run as the owner of the files when we are root and an owner was given.
  if (opts.owner && process.getuid?.() === 0 && opts.owner.uid !== 0) {
    extra.push(`--user=${opts.owner.name}`);
    lchownSync(runDir, opts.owner.uid, opts.owner.gid);
  }
  const t0 = Date.now();
  let srv: MariaServer | undefined;
  try {
    const start = () => MariaServer.start({
      install, datadir, runDir, name: 'recover', binlog, serverId: binlog ? 1 : undefined,
      extraArgs: extra,
    });
    srv = opts.journal
      ? await opts.journal.step('recovery_server', { action: 'kill_process', args: {}, description: 'stop the recovery mariadbd' },
        async (h) => {
          const s = await start();
          h.setUndoArgs({ pid: s.pid, pid_start: null });
          return s;
        })
      : await start();
    const recoveryMs = Date.now() - t0;
    let replication: ReplicationInfo | null = null;
    if (opts.replication) replication = await readReplication(srv, binlogFiles);
    const errLog = srv.errorLog();
    const t1 = Date.now();
    await srv.shutdown();
    const shutdownMs = Date.now() - t1;
    return {
      recovery_ms: recoveryMs, shutdown_ms: shutdownMs,
      innodb_recovered: /Starting crash recovery|crash recovery/i.test(errLog),
      replication, error_log: errLog,
    };
  } finally {
    if (srv?.running) await srv.kill();
    rmSync(runDir, { recursive: true, force: true });
  }
}

async function readReplication(srv: MariaServer, binlogFiles: string[]): Promise<ReplicationInfo> {
  const [g] = await srv.query<{ p: string }>('SELECT @@gtid_binlog_pos AS p');
  const gtid = g?.p ?? null;
  let file: string | null = null;
  let pos: number | null = null;
  // The last binlog that came with the backup; its end (last complete event) is where the
  // source was at the cut. The recovered server rotated to a new file of its own at startup.
  for (const f of [...binlogFiles].reverse()) {
    try {
      const ev = await srv.query<{ End_log_pos: number }>(`SHOW BINLOG EVENTS IN '${f.replace(/'/g, "''")}'`);
      if (ev.length) {
        file = f;
        pos = Number(ev[ev.length - 1].End_log_pos);
        break;
      }
    } catch { /* unreadable: try the one before */ }
  }
  return {
    binlog_file: file,
    binlog_pos: pos,
    gtid_binlog_pos: gtid,
    change_master_gtid: gtid !== null
      ? `SET GLOBAL gtid_slave_pos = '${gtid}';\nCHANGE MASTER TO MASTER_HOST='<source host>', MASTER_PORT=3306, MASTER_USER='<repl user>', MASTER_PASSWORD='<password>', MASTER_USE_GTID=slave_pos;\nSTART SLAVE;`
      : null,
    change_master_file_pos: file && pos !== null
      ? `CHANGE MASTER TO MASTER_HOST='<source host>', MASTER_PORT=3306, MASTER_USER='<repl user>', MASTER_PASSWORD='<password>', MASTER_LOG_FILE='${file}', MASTER_LOG_POS=${pos};\nSTART SLAVE;`
      : null,
  };
}
