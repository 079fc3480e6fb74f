// Verifies a backup against its hotbackup_manifest.json (docs/manifest.md): the manifest is intact
// (its manifest_crc32c), every entry it lists is there with its type, mode, size and CRC32C (and
// symlink target), nothing else is there besides the hotbackup_* files at the top, and, with
// `pages`, every page of every InnoDB tablespace verifies. A backup without a manifest is
// incomplete and is never verified. File reading, checksums and page checks run in the native
// addon on a thread pool (src/addon.ts); this module compares and reports.
import type { Dirent } from 'node:fs';
import { lstat, readdir, readFile, readlink } from 'node:fs/promises';
import { basename, isAbsolute, join, posix } from 'node:path';
import { type Addon, loadAddon } from './addon.js';

export const MANIFEST_NAME = 'hotbackup_manifest.json';
export const MANIFEST_FORMAT = 'hotbackup-manifest-1';
/** What manifest_crc32c covers: every byte before this text (docs/manifest.md). */
export const MANIFEST_CRC_MARKER = ',"manifest_crc32c":"';

export type EntryType = 'file' | 'dir' | 'symlink';

export interface ManifestEntry {
  path: string;
  type: EntryType;
  mode: number;
  size?: number;
  crc32c?: string;
  target?: string;
}

export interface Manifest {
  format: string;
  pid?: number;
  sources?: { path: string; dest: string }[];
  started_at?: number;
  cut_at?: number;
  finished_at?: number;
  cut_stall_us?: number;
  bytes_copied?: number;
  bytes_mirrored?: number;
  files?: number;
  entries: ManifestEntry[];
  manifest_crc32c: string;
}

export type ProblemKind =
  | 'incomplete' // no manifest: the backup never finished
  | 'manifest_checksum' // manifest_crc32c missing or does not match the manifest's bytes
  | 'manifest_invalid' // not JSON, wrong format, malformed entries
  | 'missing' // listed, not there
  | 'type' // there, but a different kind of entry
  | 'mode' // permission bits differ
  | 'size' // file size differs
  | 'checksum' // file CRC32C differs
  | 'symlink_target' // symlink points elsewhere
  | 'unlisted' // there, not listed
  | 'unreadable' // could not be read (or changed while read)
  | 'page' // an InnoDB page does not verify
  | 'tablespace'; // an InnoDB file cannot be checked page by page (bad header, partial page)

export interface VerifyProblem {
  kind: ProblemKind;
  /** Relative to DEST ('/'-separated); absent for whole-backup problems. */
  path?: string;
  /** InnoDB page number and its byte offset in the file. */
  page?: number;
  offset?: number;
  expected?: string | number;
  actual?: string | number;
  message: string;
}

export type VerifyStatus = 'verified' | 'failed' | 'incomplete';

export interface VerifyReport {
  dest: string;
  status: VerifyStatus;
  manifest: {
    path: string;
    intact: boolean;
    format: string | null;
    cut_at: number | null;
    finished_at: number | null;
    entries: number;
  } | null;
  checked: {
    files: number;
    dirs: number;
    symlinks: number;
    bytes: number;
    /** Present with `pages`. */
    innodb?: { tablespaces: number; pages: number; zero_pages: number; skipped_pages: number; bad_pages: number };
  };
  problems: VerifyProblem[];
  duration_ms: number;
  bytes_per_sec: number;
}

export interface VerifyProgress {
  bytes: number;
  bytesTotal: number;
  files: number;
  filesTotal: number;
}

export interface VerifyOptions {
  /** Check every page of InnoDB tablespaces (*.ibd, ibdata*, undo*). */
  pages?: boolean;
  /** Reader threads (default: the addon's, one per CPU and at least 4). */
  threads?: number;
  /** Passed to the addon (tests use small segments to exercise CRC combining). */
  segmentBytes?: number;
  onProgress?: (p: VerifyProgress) => void;
  /** The addon to use (default: this package's). */
  addon?: Addon;
}

/** InnoDB tablespace files: *.ibd, the system tablespace ibdata*, undo tablespaces undo001... */
export function isInnodbFile(relPath: string): { innodb: boolean; system: boolean } {
  const name = basename(relPath);
  if (/^ibdata\d+$/.test(name)) return { innodb: true, system: true };
  if (/\.ibd$/.test(name) || /^undo\d{3,}$/.test(name)) return { innodb: true, system: false };
  return { innodb: false, system: false };
}

export function hex32(n: number): string {
  return (n >>> 0).toString(16).padStart(8, '0');
}

function octal(mode: number): string {
  return '0' + (mode & 0o7777).toString(8).padStart(3, '0');
}

function typeOf(st: { isFile(): boolean; isDirectory(): boolean; isSymbolicLink(): boolean }): string {
  return st.isFile() ? 'file' : st.isDirectory() ? 'dir' : st.isSymbolicLink() ? 'symlink' : 'special file';
}

/** A manifest entry path is safe: relative, normalized, no '..', no empty segments. */
function safeRelative(p: string): boolean {
  return typeof p === 'string' && p.length > 0 && !isAbsolute(p) && posix.normalize(p) === p &&
    !p.split('/').some((s) => s === '..' || s === '.' || s === '');
}

/** Checks the manifest's own checksum; returns the problem, or null when intact. */
export function checkManifestBytes(bytes: Buffer, addon: Addon): VerifyProblem | null {
  const at = bytes.lastIndexOf(MANIFEST_CRC_MARKER);
  if (at < 0) {
    return { kind: 'manifest_checksum', path: MANIFEST_NAME, message: `${MANIFEST_NAME} has no manifest_crc32c: it is damaged or not a hotbackup manifest` };
  }
  const stored = bytes.subarray(at + MANIFEST_CRC_MARKER.length, at + MANIFEST_CRC_MARKER.length + 8).toString('latin1');
  const computed = hex32(addon.crc32c(bytes.subarray(0, at)));
  if (stored.toLowerCase() !== computed) {
    return {
      kind: 'manifest_checksum', path: MANIFEST_NAME, expected: stored, actual: computed,
      message: `${MANIFEST_NAME} was modified or damaged: its manifest_crc32c is ${stored}, its bytes give ${computed}`,
    };
  }
  return null;
}

/** Parses and validates a manifest's structure; problems go to `out`. Null when unusable. */
export function parseManifest(bytes: Buffer, out: VerifyProblem[]): Manifest | null {
  let doc: unknown;
  try {
    doc = JSON.parse(bytes.toString('utf8'));
  } catch (e) {
    out.push({ kind: 'manifest_invalid', path: MANIFEST_NAME, message: `${MANIFEST_NAME} is not valid JSON (${(e as Error).message}); nothing can be verified against it` });
    return null;
  }
  const m = doc as Partial<Manifest>;
  if (!m || typeof m !== 'object' || Array.isArray(m)) {
    out.push({ kind: 'manifest_invalid', path: MANIFEST_NAME, message: `${MANIFEST_NAME} is not a JSON object` });
    return null;
  }
  if (m.format !== MANIFEST_FORMAT) {
    out.push({ kind: 'manifest_invalid', path: MANIFEST_NAME, expected: MANIFEST_FORMAT, actual: String(m.format),
      message: `${MANIFEST_NAME} has format ${JSON.stringify(m.format)}, expected "${MANIFEST_FORMAT}"` });
    return null;
  }
  if (!Array.isArray(m.entries)) {
    out.push({ kind: 'manifest_invalid', path: MANIFEST_NAME, message: `${MANIFEST_NAME} has no entries list` });
    return null;
  }
  const good: ManifestEntry[] = [];
  const seen = new Set<string>();
  m.entries.forEach((e: ManifestEntry, i: number) => {
    const bad = (why: string) => out.push({ kind: 'manifest_invalid', path: MANIFEST_NAME, message: `${MANIFEST_NAME}: entry ${i} ${why}` });
    if (!e || typeof e !== 'object') return bad('is not an object');
    if (!safeRelative(e.path)) return bad(`has an unusable path ${JSON.stringify(e.path)} (must be relative, normalized, without ..)`);
    if (seen.has(e.path)) return bad(`repeats the path ${e.path}`);
    if (!['file', 'dir', 'symlink'].includes(e.type)) return bad(`(${e.path}) has an unknown type ${JSON.stringify(e.type)}`);
    if (!Number.isInteger(e.mode)) return bad(`(${e.path}) has no numeric mode`);
    if (e.type === 'file' && (!Number.isSafeInteger(e.size) || (e.size as number) < 0 || typeof e.crc32c !== 'string' || !/^[0-9a-f]{8}$/i.test(e.crc32c))) {
      return bad(`(${e.path}) is a file without a valid size and crc32c`);
    }
    if (e.type === 'symlink' && typeof e.target !== 'string') return bad(`(${e.path}) is a symlink without a target`);
    // The shim never writes a world-writable entry; one in a manifest was put there by hand.
    if (e.mode < 0 || e.mode > 0o7777 || (e.type !== 'symlink' && e.mode & 0o002)) {
      return bad(`(${e.path}) has the mode ${e.mode.toString(8)}, which no backup has (world-writable or out of range)`);
    }
    seen.add(e.path);
    good.push(e);
  });
  // Every entry's parent is a directory the manifest lists: an entry under a symlink (or a file)
  // would make restore write wherever that symlink points, outside its target.
  // Parents sort before their children, so a parent is decided before anything under it.
  const types = new Map(good.map((e) => [e.path, e.type]));
  const accepted = new Set<string>();
  for (const e of [...good].sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0))) {
    const slash = e.path.lastIndexOf('/');
    const parent = slash < 0 ? '' : e.path.slice(0, slash);
    if (!parent || (types.get(parent) === 'dir' && accepted.has(parent))) {
      accepted.add(e.path);
      continue;
    }
    const t = types.get(parent);
    out.push({ kind: 'manifest_invalid', path: MANIFEST_NAME,
      message: `${MANIFEST_NAME}: entry ${e.path} lies under ${parent}, which the manifest ` +
        `${!t ? 'does not list' : t !== 'dir' ? `lists as a ${t}` : 'lists under a parent that is not a listed directory'}; ` +
        'every parent must be a listed directory' });
  }
  return { ...(m as Manifest), entries: good.filter((e) => accepted.has(e.path)) };
}

interface Found {
  type: string;
  /** Null for a listed regular file: its mode comes from the scan, which opens it anyway. */
  mode: number | null;
}

/** Walks DEST (never following symlinks); skips hotbackup_* at the top. Unlisted directories are
 *  reported as one entry and not descended into. A listed regular file costs no system call here
 *  (the directory entry gives its type, the scan its mode); everything else is lstat'ed, one
 *  directory's entries at once, taken in name order so problems come out in a stable order. */
async function walk(dest: string, listed: Map<string, ManifestEntry>, found: Map<string, Found>, problems: VerifyProblem[]): Promise<void> {
  const visit = async (rel: string): Promise<void> => {
    let dirents: Dirent[];
    try {
      dirents = await readdir(rel ? join(dest, rel) : dest, { withFileTypes: true });
    } catch (e) {
      problems.push({ kind: 'unreadable', path: rel || '.', message: `${rel || '.'}: cannot list the directory (${(e as NodeJS.ErrnoException).code})` });
      return;
    }
    const entries = dirents
      .filter((d) => rel || !d.name.startsWith('hotbackup_'))
      .map((d) => ({ path: rel ? `${rel}/${d.name}` : d.name, dirent: d }))
      .sort((a, b) => (a.path < b.path ? -1 : 1));
    const isListedFile = (r: string, d: Dirent) => d.isFile() && listed.get(r)?.type === 'file';
    const stats = await Promise.all(entries.map(({ path: r, dirent: d }) =>
      isListedFile(r, d) ? null : lstat(join(dest, r)).catch((e: NodeJS.ErrnoException) => e)));
    for (const [i, { path: r }] of entries.entries()) {
      const st = stats[i];
      if (st === null) {
        found.set(r, { type: 'file', mode: null });
        continue;
      }
      if (st instanceof Error) {
        problems.push({ kind: 'unreadable', path: r, message: `${r}: cannot stat (${(st as NodeJS.ErrnoException).code})` });
        continue;
      }
      const type = typeOf(st);
      found.set(r, { type, mode: st.mode & 0o7777 });
      const entry = listed.get(r);
      if (!entry) {
        let extra = '';
        if (st.isDirectory()) {
          let n = 0;
          const count = async (dir: string) => {
            for (const x of await readdir(dir, { withFileTypes: true }).catch(() => [])) {
              n++;
              if (x.isDirectory()) await count(join(dir, x.name));
            }
          };
          await count(join(dest, r));
          if (n) extra = ` with ${n} entr${n === 1 ? 'y' : 'ies'} under it`;
        }
        problems.push({ kind: 'unlisted', path: r, actual: type,
          message: `${r}: ${type}${st.isFile() ? ` of ${st.size} bytes` : ''}${extra} is in the backup but not in the manifest` });
        continue;
      }
      if (st.isDirectory() && entry.type === 'dir') await visit(r);
    }
  };
  await visit('');
}

/** Verifies the backup in `dest`. Never throws for problems of the backup; throws only when the
 *  addon cannot be loaded. */
export async function verifyBackup(dest: string, opts: VerifyOptions = {}): Promise<VerifyReport> {
  const t0 = performance.now();
  const problems: VerifyProblem[] = [];
  const checked: VerifyReport['checked'] = { files: 0, dirs: 0, symlinks: 0, bytes: 0 };
  const report = (status: VerifyStatus, manifest: VerifyReport['manifest']): VerifyReport => {
    const ms = performance.now() - t0;
    return { dest, status, manifest, checked, problems, duration_ms: Math.round(ms), bytes_per_sec: ms > 0 ? Math.round(checked.bytes / (ms / 1000)) : 0 };
  };

  const manifestPath = join(dest, MANIFEST_NAME);
  let bytes: Buffer;
  try {
    bytes = await readFile(manifestPath);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    problems.push(code === 'ENOENT'
      ? { kind: 'incomplete', message: `${dest} has no ${MANIFEST_NAME}: the backup is incomplete (it failed, was cancelled, or has not finished) and cannot be verified` }
      : { kind: 'unreadable', path: MANIFEST_NAME, message: `${MANIFEST_NAME}: cannot be read (${code})` });
    return report(code === 'ENOENT' ? 'incomplete' : 'failed', null);
  }

  const addon = opts.addon ?? loadAddon();
  const crcProblem = checkManifestBytes(bytes, addon);
  if (crcProblem) problems.push(crcProblem);
  const manifest = parseManifest(bytes, problems);
  const summary = {
    path: manifestPath,
    intact: !crcProblem && manifest !== null,
    format: manifest?.format ?? null,
    cut_at: manifest?.cut_at ?? null,
    finished_at: manifest?.finished_at ?? null,
    entries: manifest?.entries.length ?? 0,
  };
  if (!manifest) return report('failed', summary);

  // Reading the files is the long part: it starts now, on the addon's threads, for every file
  // the manifest lists, while this thread walks the backup for what is missing, extra or
  // different. A listed file that the walk finds missing or of another type is reported from the
  // walk, and whatever the scan said of it is ignored.
  const listedFiles = manifest.entries.filter((e) => e.type === 'file');
  const bytesTotal = listedFiles.reduce((sum, e) => sum + e.size!, 0);
  let scanDone = false;
  const onProgress = opts.onProgress
    ? (b: number, f: number) => {
      if (!scanDone) opts.onProgress!({ bytes: b, bytesTotal, files: f, filesTotal: listedFiles.length });
    }
    : undefined;
  const scan = listedFiles.length
    ? addon.scanFiles(listedFiles.map((e) => {
      const { innodb, system } = isInnodbFile(e.path);
      return { path: join(dest, e.path), pages: Boolean(opts.pages && innodb), system };
    }), { threads: opts.threads, segmentBytes: opts.segmentBytes }, onProgress)
    : Promise.resolve([]);
  // Settle the scan's promise whatever the walk does, so a walk failure cannot leave it unhandled.
  const scanned = scan.then((r) => ({ results: r }), (e: unknown) => ({ error: e }));

  const listed = new Map(manifest.entries.map((e) => [e.path, e]));
  const found = new Map<string, Found>();
  await walk(dest, listed, found, problems);

  // Listed entries: presence, type, mode, symlink targets; the files whose scan results count.
  const toRead = new Set<ManifestEntry>();
  const missingDirs: string[] = [];
  const underMissing = (p: string) => missingDirs.find((d) => p.startsWith(d + '/'));
  const checkMode = (e: ManifestEntry, mode: number) => {
    if ((e.mode & 0o7777) !== mode) {
      problems.push({ kind: 'mode', path: e.path, expected: octal(e.mode), actual: octal(mode),
        message: `${e.path}: mode ${octal(mode)}, the manifest says ${octal(e.mode)}` });
    }
  };
  for (const e of [...manifest.entries].sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0))) {
    const f = found.get(e.path);
    if (!f) {
      const parentMissing = underMissing(e.path);
      if (parentMissing) continue; // folded into the directory's problem below
      if (e.type === 'dir') missingDirs.push(e.path);
      problems.push({ kind: 'missing', path: e.path, expected: e.type,
        message: `${e.path}: ${e.type === 'file' ? `file of ${e.size} bytes` : e.type} listed in the manifest is missing from the backup` });
      continue;
    }
    if (f.type !== e.type) {
      problems.push({ kind: 'type', path: e.path, expected: e.type, actual: f.type,
        message: `${e.path}: the manifest lists a ${e.type}, the backup has a ${f.type}` });
      continue;
    }
    if (e.type !== 'symlink' && f.mode !== null) checkMode(e, f.mode);
    if (e.type === 'dir') checked.dirs++;
    else if (e.type === 'symlink') {
      checked.symlinks++;
      const target = await readlink(join(dest, e.path)).catch(() => null);
      if (target !== e.target) {
        problems.push({ kind: 'symlink_target', path: e.path, expected: e.target, actual: target ?? '(unreadable)',
          message: `${e.path}: symlink to ${JSON.stringify(target)}, the manifest says ${JSON.stringify(e.target)}` });
      }
    } else {
      toRead.add(e);
    }
  }
  for (const d of missingDirs) {
    const n = manifest.entries.filter((x) => x.path.startsWith(d + '/')).length;
    if (n) {
      const p = problems.find((x) => x.kind === 'missing' && x.path === d)!;
      p.message += ` (with the ${n} entr${n === 1 ? 'y' : 'ies'} listed under it)`;
    }
  }

  const outcome = await scanned;
  scanDone = true;
  if ('error' in outcome) throw outcome.error;
  opts.onProgress?.({ bytes: bytesTotal, bytesTotal, files: listedFiles.length, filesTotal: listedFiles.length });

  const innodb = { tablespaces: 0, pages: 0, zero_pages: 0, skipped_pages: 0, bad_pages: 0 };
  outcome.results.forEach((r, i) => {
    const e = listedFiles[i];
    if (!toRead.has(e)) return;
    if (r.error) {
      problems.push({ kind: 'unreadable', path: e.path,
        message: r.error.code === 'ESTALE'
          ? `${e.path}: ${r.error.message}; is something writing into the backup?`
          : `${e.path}: cannot be read: ${r.error.message} [${r.error.code}]` });
      return;
    }
    if (found.get(e.path)!.mode === null) checkMode(e, r.mode);
    checked.files++;
    checked.bytes += r.size;
    if (r.size !== e.size) {
      problems.push({ kind: 'size', path: e.path, expected: e.size, actual: r.size,
        message: `${e.path}: ${r.size} bytes, the manifest says ${e.size}${r.size < e.size! ? ' (truncated)' : ' (grew)'}` });
    } else if (hex32(r.crc32c) !== e.crc32c!.toLowerCase()) {
      problems.push({ kind: 'checksum', path: e.path, expected: e.crc32c!.toLowerCase(), actual: hex32(r.crc32c),
        message: `${e.path}: CRC32C ${hex32(r.crc32c)}, the manifest says ${e.crc32c!.toLowerCase()}: the file's contents changed` });
    }
    const p = r.pages;
    if (!p) return;
    innodb.tablespaces++;
    if (p.error) {
      problems.push({ kind: 'tablespace', path: e.path, page: 0, offset: 0, message: `${e.path}: ${p.error}` });
      return;
    }
    innodb.pages += p.pages;
    innodb.zero_pages += p.zeroPages;
    innodb.skipped_pages += p.skippedPages;
    innodb.bad_pages += p.badCount;
    for (const b of p.badPages) {
      problems.push({ kind: 'page', path: e.path, page: b.page, offset: b.offset,
        message: `${e.path}: page ${b.page} (offset ${b.offset}, ${p.format} ${p.physicalPageSize}-byte pages) is corrupted: ${b.reason}` });
    }
    if (p.badCount > p.badPages.length) {
      problems.push({ kind: 'page', path: e.path,
        message: `${e.path}: ${p.badCount - p.badPages.length} more corrupted pages not listed (${p.badCount} in all)` });
    }
    if (p.trailingBytes) {
      const at = r.size - p.trailingBytes;
      problems.push({ kind: 'tablespace', path: e.path, page: Math.floor(r.size / p.physicalPageSize), offset: at,
        message: `${e.path}: ends with a partial page: ${p.trailingBytes} bytes at offset ${at} after the last full ${p.physicalPageSize}-byte page` });
    }
  });
  if (opts.pages) checked.innodb = innodb;
  return report(problems.length ? 'failed' : 'verified', summary);
}
