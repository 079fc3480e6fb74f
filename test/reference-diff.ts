// Compares a sealed backup with the byte-exact reference the shim copied at the cut
// (HOTBACKUP_TEST_REFERENCE, native/shim/src/reference.h): every directory, file, symlink and
// mode, and every byte. A difference names the file, the byte ranges, and what each side holds
// there (for InnoDB files also the page number and each side's page LSN), so a torn page is
// seen where it happened instead of when InnoDB trips over it.
import { closeSync, lstatSync, openSync, readdirSync, readlinkSync, readSync } from 'node:fs';
import { join } from 'node:path';

export interface RangeDiff {
  start: number;
  end: number;
  backup: string;
  reference: string;
}

export interface EntryDiff {
  path: string;
  problem: 'missing in backup' | 'only in backup' | 'type' | 'mode' | 'size' | 'content' | 'target';
  detail: string;
  ranges?: RangeDiff[];
}

export interface TreeComparison {
  files: number;
  bytes: number;
  diffs: EntryDiff[];
}

const CHUNK = 1 << 20;
const INNODB_PAGE = 16384;
const isInnodb = (p: string) => /\.ibd$|(^|\/)ibdata\d+$|(^|\/)undo\d+$/.test(p);

function kind(mode: number): string {
  const t = mode & 0o170000;
  return t === 0o040000 ? 'dir' : t === 0o100000 ? 'file' : t === 0o120000 ? 'symlink' : 'other';
}

function hex(b: Buffer): string {
  return b.toString('hex').replace(/(..)/g, '$1 ').trim();
}

/** What one side holds at a differing range: the first bytes, and for InnoDB pages the page and its LSN. */
function describe(path: string, fd: number, start: number, end: number, size: number): string {
  const n = Math.max(0, Math.min(16, end - start, size - start));
  const b = Buffer.alloc(n);
  if (n) readSync(fd, b, 0, n, start);
  let s = n ? hex(b) : '(past its end)';
  if (isInnodb(path)) {
    const page = Math.floor(start / INNODB_PAGE);
    const head = Buffer.alloc(24);
    const got = readSync(fd, head, 0, 24, page * INNODB_PAGE);
    s += got === 24 ? ` | page ${page}: FIL_PAGE_LSN ${head.readBigUInt64BE(16)}` : ` | page ${page}: not in the file`;
  }
  return s;
}

function compareFile(rel: string, a: string, b: string, maxRanges: number): { diff: EntryDiff | null; bytes: number } {
  const fa = openSync(a, 'r');
  const fb = openSync(b, 'r');
  try {
    const sa = lstatSync(a).size;
    const sb = lstatSync(b).size;
    const ba = Buffer.alloc(CHUNK);
    const bb = Buffer.alloc(CHUNK);
    const ranges: { start: number; end: number }[] = [];
    let count = 0;
    const max = Math.max(sa, sb);
    for (let off = 0; off < max; off += CHUNK) {
      const na = off < sa ? readSync(fa, ba, 0, Math.min(CHUNK, sa - off), off) : 0;
      const nb = off < sb ? readSync(fb, bb, 0, Math.min(CHUNK, sb - off), off) : 0;
      const n = Math.max(na, nb);
      if (na === nb && ba.subarray(0, na).equals(bb.subarray(0, nb))) continue;
      for (let i = 0; i < n; i++) {
        const differ = i >= na || i >= nb || ba[i] !== bb[i];
        if (!differ) continue;
        count++;
        const at = off + i;
        const last = ranges[ranges.length - 1];
        // Differences closer than 64 bytes are one range: a torn page shows as a few, not thousands.
        if (last && at - last.end < 64) last.end = at + 1;
        else ranges.push({ start: at, end: at + 1 });
      }
    }
    if (!ranges.length) return { diff: null, bytes: max };
    const shown = ranges.slice(0, maxRanges).map((r) => ({
      ...r,
      backup: describe(rel, fa, r.start, r.end, sa),
      reference: describe(rel, fb, r.start, r.end, sb),
    }));
    const sizes = sa === sb ? `size ${sa}` : `backup ${sa} bytes, reference ${sb} bytes`;
    return {
      diff: { path: rel, problem: sa === sb ? 'content' : 'size', ranges: shown,
        detail: `${count} bytes differ in ${ranges.length} ranges (${sizes})${ranges.length > maxRanges ? `; first ${maxRanges} shown` : ''}` },
      bytes: max,
    };
  } finally {
    closeSync(fa);
    closeSync(fb);
  }
}

/** Compares `backup` with `reference`; the backup's own top-level `hotbackup_*` files are not part of the image. */
export function compareWithReference(backup: string, reference: string, o: { maxRanges?: number } = {}): TreeComparison {
  const out: TreeComparison = { files: 0, bytes: 0, diffs: [] };
  const walk = (rel: string) => {
    const top = rel === '';
    const names = new Set<string>();
    for (const n of readdirSync(join(backup, rel))) if (!(top && n.startsWith('hotbackup_'))) names.add(n);
    for (const n of readdirSync(join(reference, rel))) names.add(n);
    for (const name of [...names].sort()) {
      const r = rel ? `${rel}/${name}` : name;
      const a = join(backup, r);
      const b = join(reference, r);
      let sa, sb;
      try { sa = lstatSync(a); } catch { /* missing */ }
      try { sb = lstatSync(b); } catch { /* missing */ }
      if (!sa) { out.diffs.push({ path: r, problem: 'missing in backup', detail: `reference has a ${kind(sb!.mode)}` }); continue; }
      if (!sb) { out.diffs.push({ path: r, problem: 'only in backup', detail: `backup has a ${kind(sa.mode)}` }); continue; }
      if (kind(sa.mode) !== kind(sb.mode)) {
        out.diffs.push({ path: r, problem: 'type', detail: `backup has a ${kind(sa.mode)}, reference a ${kind(sb.mode)}` });
        continue;
      }
      // The backup drops world-write (docs/shim.md); the reference keeps the source's mode.
      if ((sa.mode & 0o7777) !== (sb.mode & 0o7775)) {
        out.diffs.push({ path: r, problem: 'mode', detail: `backup ${(sa.mode & 0o7777).toString(8)}, reference ${(sb.mode & 0o7777).toString(8)}` });
      }
      if (sa.isDirectory()) walk(r);
      else if (sa.isSymbolicLink()) {
        const ta = readlinkSync(a);
        const tb = readlinkSync(b);
        if (ta !== tb) out.diffs.push({ path: r, problem: 'target', detail: `backup -> ${ta}, reference -> ${tb}` });
      } else if (sa.isFile()) {
        out.files++;
        const { diff, bytes } = compareFile(r, a, b, o.maxRanges ?? 8);
        out.bytes += bytes;
        if (diff) out.diffs.push(diff);
      }
    }
  };
  walk('');
  return out;
}

/** A readable report of the differences, for assertion messages and the stress runner's log. */
export function formatComparison(c: TreeComparison): string {
  if (!c.diffs.length) return `identical: ${c.files} files, ${c.bytes} bytes`;
  const lines = [`${c.diffs.length} entries differ (of ${c.files} files, ${c.bytes} bytes compared):`];
  for (const d of c.diffs) {
    lines.push(`  ${d.path}: ${d.problem}: ${d.detail}`);
    for (const r of d.ranges ?? []) {
      lines.push(`    [${r.start}, ${r.end}) backup: ${r.backup}`);
      lines.push(`    ${' '.repeat(String(`[${r.start}, ${r.end})`).length)} reference: ${r.reference}`);
    }
  }
  return lines.join('\n');
}
