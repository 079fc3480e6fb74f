// hotbackup list [--json]: the history of backups started through the CLI, reconciled first.
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { type BackupRecord, type Catalog, ACTIVE_STATES } from '../catalog.js';
import { request } from '../client.js';
import { getJournal } from '../journal.js';
import { formatBytes } from '../units.js';
import { defineCommand, EXIT, jsonOption } from './command.js';
import { isoTime, removeCreatedDest } from './server.js';

export const MANIFEST = 'hotbackup_manifest.json';

/**
 * Brings entries still marked starting/copying/finishing up to date: from the server's status
 * when it still reports that backup, else from DEST (a manifest means done), else `failed` with
 * error code `lost`. Entries whose start is still in progress (open journal) are left alone.
 */
export async function reconcile(catalog: Catalog): Promise<void> {
  for (const b of catalog.listBackups()) {
    if (!ACTIVE_STATES.has(b.state)) continue;
    if (b.journal_id != null && getJournal(catalog, b.journal_id)?.state === 'open') continue;
    try {
      const s = await request(b.socket, { op: 'status' }, 3000);
      if (s.dest === b.dest && s.state !== 'idle' && (b.started_at == null || s.started_at === b.started_at)) {
        catalog.updateFromStatus(b.id, s);
        if ((s.state === 'failed' || s.state === 'cancelled') && s.finished_at != null) removeCreatedDest(catalog.getBackup(b.id));
        continue;
      }
    } catch { /* the server is gone: judge by DEST */ }
    const manifest = join(b.dest, MANIFEST);
    if (existsSync(manifest)) {
      catalog.setState(b.id, 'done', null, { manifest });
    } else {
      catalog.setState(b.id, 'failed', { code: 'lost', message: 'the server no longer reports this backup and DEST has no manifest', path: b.dest });
    }
  }
}

function row(b: BackupRecord): string[] {
  return [String(b.id), b.state, isoTime(b.started_at ?? b.created_at), b.bytes_copied == null ? '-' : formatBytes(b.bytes_copied, 'si'),
    b.files_copied == null ? '-' : String(b.files_copied), b.dest + (b.error ? `  [${b.error.code}] ${b.error.message}` : '')];
}

export default defineCommand({
  examples: [['hotbackup list', 'id, state, start time, size, files, destination'], ['hotbackup list --json', '{"backups": [...]}']],
  builder: (y) => jsonOption(y),
  async run(args, ctx) {
    const catalog = ctx.catalog();
    await reconcile(catalog);
    const backups = catalog.listBackups();
    if (args.json) {
      ctx.outJson({ catalog: catalog.path, backups });
      return EXIT.OK;
    }
    if (!backups.length) {
      ctx.out(`no backups in ${catalog.path}`);
      return EXIT.OK;
    }
    const rows = [['ID', 'STATE', 'STARTED', 'SIZE', 'FILES', 'DEST'], ...backups.map(row)];
    const widths = rows[0].map((_, i) => Math.max(...rows.map((r) => r[i].length)));
    ctx.out(rows.map((r) => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]))).join('  ')).join('\n'));
    return EXIT.OK;
  },
});
