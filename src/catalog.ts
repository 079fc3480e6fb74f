// The catalog: one SQLite database (better-sqlite3) holding the history of backups started
// through the CLI and the undo journal (src/journal.ts) of every state change the CLI makes.
//
// Location: --catalog PATH, else $HOTBACKUP_CATALOG, else
// ($XDG_STATE_HOME or ~/.local/state)/hotbackup/catalog.db. WAL mode, busy timeout 5 s, so
// several CLI processes can share it.
import { mkdirSync } from 'node:fs';
import { homedir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import type { BackupError, BackupStatus } from './client.js';
import { openSqlite, type SqliteDatabase } from './sqlite.js';

/** States of a catalog entry: the shim's states plus the CLI's own. */
export type CatalogState =
  | 'starting' //    recorded, start request not yet acknowledged
  | 'copying'
  | 'finishing'
  | 'done'
  | 'failed'
  | 'cancelled'
  | 'rolled_back'; // the CLI undid the start (error or a killed CLI, see journal.ts)

export interface BackupRecord {
  id: number;
  socket: string;
  server_pid: number | null;
  sources: string[];
  dest: string;
  state: CatalogState;
  throttle_bytes_per_sec: number;
  created_at: number;
  started_at: number | null;
  cut_at: number | null;
  finished_at: number | null;
  bytes_total: number | null;
  bytes_copied: number | null;
  bytes_mirrored: number | null;
  files_total: number | null;
  files_copied: number | null;
  error: BackupError | null;
  manifest: string | null;
  journal_id: number | null;
  /** The topmost directory the CLI created for DEST (null if DEST existed). */
  created_path: string | null;
  updated_at: number;
}

export const ACTIVE_STATES: ReadonlySet<CatalogState> = new Set(['starting', 'copying', 'finishing']);

/** The default catalog path for an environment (see the header comment). */
export function defaultCatalogPath(env: NodeJS.ProcessEnv = process.env): string {
  if (env.HOTBACKUP_CATALOG) return resolve(env.HOTBACKUP_CATALOG);
  const state = env.XDG_STATE_HOME && env.XDG_STATE_HOME.startsWith('/')
    ? env.XDG_STATE_HOME
    : join(env.HOME || homedir(), '.local', 'state');
  return join(state, 'hotbackup', 'catalog.db');
}

const SCHEMA = `
CREATE TABLE IF NOT EXISTS backups (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  socket TEXT NOT NULL,
  server_pid INTEGER,
  sources TEXT NOT NULL DEFAULT '[]',
  dest TEXT NOT NULL,
  state TEXT NOT NULL,
  throttle_bytes_per_sec INTEGER NOT NULL DEFAULT 0,
  created_at INTEGER NOT NULL,
  started_at INTEGER, cut_at INTEGER, finished_at INTEGER,
  bytes_total INTEGER, bytes_copied INTEGER, bytes_mirrored INTEGER,
  files_total INTEGER, files_copied INTEGER,
  error TEXT, manifest TEXT,
  journal_id INTEGER,
  created_path TEXT,
  updated_at INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS journals (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  command TEXT NOT NULL,
  argv TEXT NOT NULL,
  pid INTEGER NOT NULL,
  pid_start TEXT,
  state TEXT NOT NULL,
  created_at INTEGER NOT NULL,
  finished_at INTEGER,
  error TEXT
);
CREATE TABLE IF NOT EXISTS journal_steps (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  journal_id INTEGER NOT NULL REFERENCES journals(id),
  seq INTEGER NOT NULL,
  kind TEXT NOT NULL,
  description TEXT NOT NULL,
  undo_action TEXT NOT NULL,
  undo_args TEXT NOT NULL,
  state TEXT NOT NULL,
  created_at INTEGER NOT NULL,
  done_at INTEGER,
  undone_at INTEGER,
  undo_result TEXT,
  UNIQUE (journal_id, seq)
);
CREATE INDEX IF NOT EXISTS journals_state ON journals(state);
`;

interface BackupRow extends Omit<BackupRecord, 'sources' | 'error'> { sources: string; error: string | null }

function toRecord(row: BackupRow): BackupRecord {
  return { ...row, sources: JSON.parse(row.sources), error: row.error ? JSON.parse(row.error) : null };
}

export class Catalog {
  readonly db: SqliteDatabase;

  constructor(public readonly path: string) {
    if (path !== ':memory:') mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
    this.db = openSqlite(path);
    this.db.pragma('journal_mode = WAL');
    this.db.pragma('busy_timeout = 5000');
    this.db.pragma('foreign_keys = ON');
    this.db.exec(SCHEMA);
    const cols = (this.db.prepare('PRAGMA table_info(backups)').all() as { name: string }[]).map((c) => c.name);
    if (!cols.includes('created_path')) this.db.exec('ALTER TABLE backups ADD COLUMN created_path TEXT');
  }

  close(): void {
    if (this.db.open) this.db.close();
  }

  /** Records a backup about to be started; returns its id. */
  addBackup(b: { socket: string; server_pid: number | null; sources: string[]; dest: string;
    throttle_bytes_per_sec: number; journal_id?: number | null }): number {
    const now = Date.now();
    const r = this.db.prepare(
      `INSERT INTO backups (socket, server_pid, sources, dest, state, throttle_bytes_per_sec, created_at, journal_id, updated_at)
       VALUES (?, ?, ?, ?, 'starting', ?, ?, ?, ?)`,
    ).run(b.socket, b.server_pid, JSON.stringify(b.sources), b.dest, b.throttle_bytes_per_sec, now, b.journal_id ?? null, now);
    return Number(r.lastInsertRowid);
  }

  setCreatedPath(id: number, path: string): void {
    this.db.prepare('UPDATE backups SET created_path = ?, updated_at = ? WHERE id = ?').run(path, Date.now(), id);
  }

  getBackup(id: number): BackupRecord | undefined {
    const row = this.db.prepare('SELECT * FROM backups WHERE id = ?').get(id) as BackupRow | undefined;
    return row && toRecord(row);
  }

  listBackups(): BackupRecord[] {
    return (this.db.prepare('SELECT * FROM backups ORDER BY id').all() as BackupRow[]).map(toRecord);
  }

  /** Copies the figures of a shim status into an entry. */
  updateFromStatus(id: number, s: BackupStatus, state: CatalogState = s.state as CatalogState): void {
    this.db.prepare(
      `UPDATE backups SET state = ?, server_pid = COALESCE(?, server_pid), sources = ?, started_at = ?, cut_at = ?,
         finished_at = ?, bytes_total = ?, bytes_copied = ?, bytes_mirrored = ?, files_total = ?, files_copied = ?,
         throttle_bytes_per_sec = ?, error = ?, manifest = ?, updated_at = ? WHERE id = ?`,
    ).run(state, s.pid ?? null, JSON.stringify(s.sources ?? []), s.started_at, s.cut_at, s.finished_at,
      s.bytes_total, s.bytes_copied, s.bytes_mirrored, s.files_total, s.files_copied, s.throttle_bytes_per_sec,
      s.error ? JSON.stringify(s.error) : null, s.manifest, Date.now(), id);
  }

  setState(id: number, state: CatalogState, error?: BackupError | null, extra?: { manifest?: string | null; finished_at?: number | null }): void {
    this.db.prepare(
      `UPDATE backups SET state = ?, error = COALESCE(?, error), manifest = COALESCE(?, manifest),
         finished_at = COALESCE(?, finished_at), updated_at = ? WHERE id = ?`,
    ).run(state, error ? JSON.stringify(error) : null, extra?.manifest ?? null, extra?.finished_at ?? null, Date.now(), id);
  }

  /** The entry that describes the backup a server reports (same server pid, dest and start time), if any. */
  findForStatus(socket: string, s: BackupStatus): BackupRecord | undefined {
    if (!s.dest) return undefined;
    const rows = this.db.prepare(
      `SELECT * FROM backups WHERE dest = ? AND (server_pid = ? OR socket = ?) ORDER BY id DESC`,
    ).all(s.dest, s.pid, socket) as BackupRow[];
    const match = rows.find((r) => r.started_at === s.started_at) ?? rows.find((r) => r.state === 'starting' || r.started_at == null);
    return match && toRecord(match);
  }
}

export function openCatalog(path?: string, env: NodeJS.ProcessEnv = process.env): Catalog {
  return new Catalog(path ? resolve(path) : defaultCatalogPath(env));
}
