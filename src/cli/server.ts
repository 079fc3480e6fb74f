// Helpers shared by the commands that talk to a server: finding its socket, formatting status.
import { readdirSync, readFileSync, readlinkSync, rmdirSync } from 'node:fs';
import { dirname } from 'node:path';
import type { BackupRecord } from '../catalog.js';
import { request, TERMINAL_STATES } from '../client.js';
import type { BackupStatus } from '../client.js';
import { resolveSocket } from '../discovery.js';
import { shimPath } from '../lib-path.js';
import { formatBytes, formatDuration, formatRate } from '../units.js';
import { Context, EXIT, UserError } from './command.js';

/** The socket a server command talks to (README "Finding the server"); a UserError when none. */
export function serverSocket(ctx: Context, option: string | undefined): string {
  const r = resolveSocket(option, ctx.env, ctx.io.cwd);
  if (r.ok) return r.socket;
  const how = `Run the server with LD_PRELOAD=${shimPath()} (and HOTBACKUP_SOCKET=/path/to.sock), then pass --socket or set HOTBACKUP_SOCKET.`;
  const list = r.candidates.map((c) =>
    `  ${c.path}  ${c.live ? `pid ${c.pid} (${c.command ?? '?'}) running` : `stale: process ${c.pid ?? '?'} is not running`}`).join('\n');
  if (r.reason === 'ambiguous') {
    throw new UserError(`several hotbackup servers are running; choose one with --socket:\n${list}`, EXIT.USAGE, 'ambiguous_socket');
  }
  throw new UserError(
    `no hotbackup server found: no --socket, no HOTBACKUP_SOCKET, and no live socket in ${r.dir}/` +
      (r.candidates.length ? ` (found only:\n${list}\n)` : '') + `. ${how}`,
    EXIT.UNREACHABLE, 'no_server');
}

export function isoTime(ms: number | null | undefined): string {
  return ms == null ? '-' : new Date(ms).toISOString();
}

/** " (24.0%)": bytes copied of the total found at start. A finished backup is 100% even when
 *  files shrank while it ran (less to copy than was found). */
export function percentText(s: BackupStatus): string {
  if (s.state === 'done') return ' (100%)';
  return s.bytes_total > 0 ? ` (${Math.min(100, (100 * s.bytes_copied) / s.bytes_total).toFixed(1)}%)` : '';
}

/** One line of progress: "copying 12 MB of 50 MB (24.0%), 3/12 files, 5 MB/s, ETA 8s". */
export function progressLine(s: BackupStatus): string {
  const pct = percentText(s);
  return `${s.state} ${formatBytes(s.bytes_copied, 'si')} of ${formatBytes(s.bytes_total, 'si')}${pct}, ` +
    `${s.files_copied}/${s.files_total} files, ${formatBytes(Math.round(s.rate_bytes_per_sec), 'si')}/s, ` +
    `mirrored ${formatBytes(s.bytes_mirrored, 'si')}, ETA ${formatDuration(s.eta_seconds)}`;
}

/** The human form of a status. */
export function formatStatus(s: BackupStatus, socket: string): string {
  const rows: [string, string][] = [
    ['server', `pid ${s.pid} at ${socket}`],
    ['state', s.state + (s.error ? `: [${s.error.code}] ${s.error.message}${s.error.path ? ` (${s.error.path})` : ''}` : '')],
  ];
  if (s.state !== 'idle') {
    const pct = percentText(s);
    rows.push(
      ['dest', s.dest ?? '-'],
      ['sources', s.sources.join(', ') || '-'],
      ['copied', `${formatBytes(s.bytes_copied, 'si')} of ${formatBytes(s.bytes_total, 'si')}${pct}, ${s.files_copied} of ${s.files_total} files`],
      ['mirrored', `${formatBytes(s.bytes_mirrored, 'si')} (${s.bytes_mirrored} B) written by the server during the copy`],
      ['rate', `${formatBytes(Math.round(s.rate_bytes_per_sec), 'si')}/s`],
      ['throttle', formatRate(s.throttle_bytes_per_sec)],
      ['eta', formatDuration(s.eta_seconds)],
      ['started', isoTime(s.started_at)],
      ['cut', isoTime(s.cut_at) + (s.cut_stall_us != null ? ` (server stalled ${s.cut_stall_us} µs)` : '')],
      ['finished', isoTime(s.finished_at)],
      ['manifest', s.manifest ?? '-'],
    );
  }
  return rows.map(([k, v]) => `${k.padEnd(9)} ${v}`).join('\n');
}

/** The served process's working directory (the shim's default source), when readable. */
export function serverCwd(pid: number): string | null {
  try {
    return readlinkSync(`/proc/${pid}/cwd`);
  } catch {
    return null;
  }
}

/** uid and gid of a process, from /proc/<pid>/status. */
export function processOwner(pid: number): { uid: number; gid: number } | null {
  try {
    const st = readFileSync(`/proc/${pid}/status`, 'utf8');
    const uid = /^Uid:\s+(\d+)/m.exec(st)?.[1];
    const gid = /^Gid:\s+(\d+)/m.exec(st)?.[1];
    return uid && gid ? { uid: Number(uid), gid: Number(gid) } : null;
  } catch {
    return null;
  }
}

/**
 * After a failed or cancelled backup the shim empties DEST but keeps directories it did not
 * create; the CLI removes the empty directories it created for DEST (catalog created_path).
 * Only empty directories are removed. Returns true when DEST is gone.
 */
export function removeCreatedDest(entry: BackupRecord | undefined): boolean {
  if (!entry?.created_path) return false;
  const removeEmpty = (d: string): void => {
    let names: string[];
    try {
      names = readdirSync(d);
    } catch {
      return;
    }
    if (names.length) return;
    try {
      rmdirSync(d);
    } catch { /* not empty after all, or gone */ }
  };
  for (let d = entry.dest; ; d = dirname(d)) {
    removeEmpty(d);
    if (d === entry.created_path || d === dirname(d)) break;
  }
  try {
    readdirSync(entry.dest);
    return false;
  } catch {
    return true;
  }
}

/** Polls until the backup has ended and the shim has finished its clean-up (finished_at set). */
export async function waitSettled(socket: string, first?: BackupStatus, limitMs = 60_000): Promise<BackupStatus> {
  let s = first ?? (await request(socket, { op: 'status' }));
  for (const t0 = Date.now(); !(TERMINAL_STATES.has(s.state) && (s.state === 'idle' || s.finished_at != null)) && Date.now() - t0 < limitMs;) {
    await new Promise((r) => setTimeout(r, 50));
    s = await request(socket, { op: 'status' });
  }
  return s;
}
